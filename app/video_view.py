"""What the Video tab shows, drawn from a user's `VideoState`: the frame panel with masks and prompts, the status
line, the per-object timeline, the object list and the tracking progress note.

Pure functions of the state (no Gradio events, no locks): the tab calls them with the user's lock held.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .media import color_of, draw_overlay
from .sessions import VideoState


def status_text(video: VideoState) -> str:
    """One line: the video's size and the active object's colour and next step (HTML)."""
    session = video.session
    if session is None:
        return "No video yet."
    colour = (
        color_of(video.object_ids.index(video.active_obj)).as_hex() if video.active_obj in video.object_ids else "#888"
    )
    hint = (
        "now click the box's opposite corner"
        if video.box_corner is not None
        else "click it on any frame (Box: two corner clicks), then Track"
    )
    return (
        f"{session.num_frames} frames, {session.video_width}x{session.video_height}. "
        f'<span style="color:{colour}">■</span> Object {video.active_obj}: {hint}.'
    )


def frame_overlay(video: VideoState, frame_idx: int, logits: torch.Tensor | None = None) -> np.ndarray:
    """Frame `frame_idx` (HxWx3 uint8 RGB) with every object's mask (from `logits`, Nx1xHxW logits or bool in the
    session's object order, or the session's newest masks) and its prompts on that frame, each in its object's
    colour."""
    session = video.session
    if session is None:
        raise RuntimeError("frame_overlay needs an open video session; upload a video first.")
    frame = session.frames.rgb(frame_idx)
    order = video.object_ids
    masks: list[np.ndarray | None] = [None] * len(order)
    points: list[list[tuple[float, float, int]]] = [[] for _ in order]
    boxes: list[list[float] | None] = [None] * len(order)
    found = session.frame_masks(frame_idx) if logits is None else {}
    for row, obj_id in enumerate(session.obj_ids):
        if obj_id not in order:
            continue
        i = order.index(obj_id)
        masks[i] = (logits[row, 0] > 0).cpu().numpy() if logits is not None else found.get(obj_id)
        prompt = session.prompt(frame_idx, obj_id)
        if prompt is not None:
            points[i] = [
                (x, y, int(label)) for (x, y), label in zip(prompt.points.tolist(), prompt.labels.tolist(), strict=True)
            ]
            boxes[i] = None if prompt.box is None else prompt.box.tolist()
    corner = video.box_corner
    mark = None
    if corner is not None and corner[0] == frame_idx and video.active_obj in order:
        mark = (float(corner[1]), float(corner[2]), order.index(video.active_obj))
    return draw_overlay(frame, masks, points, boxes, corner=mark)


@dataclass(frozen=True)
class TimelineRow:
    """One bar of a timeline: its label, its colour (an index for `media.color_of`), the frames it covers (sorted,
    0-based) and the frames marked on it (prompts)."""

    label: str
    colour: int
    frames: tuple[int, ...]
    marks: tuple[int, ...] = ()


def timeline_bars(rows: Sequence[TimelineRow], frames: int, frame: int) -> str:
    """Per row, a bar over a video of `frames` frames: its stretches filled in its colour, its marks, and frame
    `frame` as a line (HTML; labels are escaped)."""
    frames, bars = max(1, frames), []
    cursor = f'<span class="tl-cursor" style="left:{100 * (frame + 0.5) / frames:.2f}%"></span>'
    for row in rows:
        colour, pieces = color_of(row.colour).as_hex(), []
        for start, stop in runs(row.frames):
            left, width = 100 * start / frames, 100 * (stop - start + 1) / frames
            pieces.append(
                f'<span class="tl-run" style="left:{left:.2f}%;width:{width:.2f}%;background:{colour}"></span>'
            )
        for t in row.marks:
            pieces.append(
                f'<span class="tl-prompt" style="left:{100 * (t + 0.5) / frames:.2f}%;border-color:{colour}" '
                f'title="prompt on frame {t}"></span>'
            )
        bars.append(
            f'<div class="tl-row"><span class="tl-name" style="color:{colour}">■ {html.escape(row.label)}</span>'
            f'<span class="tl-bar">{"".join(pieces)}{cursor}</span></div>'
        )
    return f'<div class="timeline" data-frame="{frame}">{"".join(bars)}</div>'


def timeline_html(video: VideoState, frame: int) -> str:
    """The Video tab's timeline: per object, its tracked stretches and its prompted frames (HTML)."""
    session = video.session
    if session is None:
        return ""
    known = {obj.obj_id: obj for obj in session.objects}
    rows = []
    for i, obj_id in enumerate(video.object_ids):
        obj = known.get(obj_id)
        tracked, prompted = (tuple(obj.tracked_frames), tuple(obj.prompted_frames)) if obj else ((), ())
        rows.append(TimelineRow(str(obj_id), i, tracked, prompted))
    return timeline_bars(rows, session.num_frames, frame)


def object_choices(video: VideoState) -> list[tuple[str, str]]:
    """(label, value) per object for the object list: which frames it is prompted on and how far it is tracked."""
    known = {obj.obj_id: obj for obj in video.session.objects} if video.session is not None else {}
    choices = []
    for obj_id in video.object_ids:
        obj = known.get(obj_id)
        if obj is None:
            detail = "no prompt yet"
        else:
            frames_list = ", ".join(map(str, obj.prompted_frames))
            detail = f"prompts on frame{'s' * (len(obj.prompted_frames) != 1)} {frames_list}"
            if obj.tracked_frames:
                detail += f"; tracked {len(obj.tracked_frames)} frames"
        name = video.class_names.get(obj_id)
        choices.append((f"Object {obj_id}{f' · {name}' if name else ''} — {detail}", str(obj_id)))
    return choices


def runs(frames: tuple[int, ...]) -> list[tuple[int, int]]:
    """Sorted frame numbers -> (first, last) of each run of consecutive frames."""
    found: list[tuple[int, int]] = []
    for t in frames:
        if found and t == found[-1][1] + 1:
            found[-1] = (found[-1][0], t)
        else:
            found.append((t, t))
    return found
