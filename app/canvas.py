"""The editor surface the Image and Review tabs share: an `ImageState` drawn as the click canvas's picture and its
candidates, and the drag-a-box canvas shown in its place in the Box (drag) mode.

Boxes by dragging happen on gradio_image_annotation's annotator (`box_annotator`), which shows the same picture as the
click canvas (preview pixels); a dragged box comes back as the annotator's value and `dragged_box` reads it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gradio as gr
import numpy as np
from gradio_image_annotation import image_annotator

from .media import draw_overlay, preview_scale, to_preview
from .prompts import BOX
from .sessions import ImageState, ReviewState

Xyxy = tuple[float, float, float, float]


def box_annotator(elem_id: str) -> Any:
    """The drag-a-box canvas, hidden until the Box (drag) mode: one box at a time, no upload, no box editing (a new
    drag is a new box), no keyboard shortcuts of its own (the tabs' keys act on the editor)."""
    return image_annotator(
        label="Drag a box", single_box=False, disable_edit_boxes=True, sources=[], visible=False,
        show_clear_button=False, show_download_button=False, show_remove_button=False,
        enable_keyboard_shortcuts=False, box_min_size=4, elem_id=elem_id, elem_classes=["box-canvas"],
        show_label=False,
    )  # fmt: skip


def overlay_of(state: ImageState, slots: Sequence[int] | None = None) -> np.ndarray:
    """The state's preview (HxWx3 uint8 RGB) with every object's mask, clicks and box, and a box's first corner;
    each object in the colour of its slot (`media.color_of`; by default its place in the list)."""
    if state.preview is None:
        raise RuntimeError("The overlay needs an image: open one first.")
    slots = list(range(len(state.objects))) if slots is None else list(slots)
    masks: list[np.ndarray | None] = [None] * (max(slots, default=-1) + 1)
    points: list[list[tuple[float, float, int]]] = [[] for _ in masks]
    boxes: list[list[float] | None] = [None] * len(masks)
    for slot, obj in zip(slots, state.objects, strict=True):
        masks[slot], points[slot], boxes[slot] = obj.mask, obj.points, obj.box
    corner = None if state.box_corner is None else (state.box_corner[0], state.box_corner[1], slots[state.active])
    return draw_overlay(state.preview, masks, points, boxes, scale=state.scale, corner=corner)


def candidate_gallery(state: ImageState, side: int, slots: Sequence[int] | None = None) -> list[tuple[np.ndarray, str]]:
    """The active object's candidates when one click left a choice: [(picture at most `side` pixels a side, its
    score, ✓ on the chosen one)], in the object's colour (its slot, as `overlay_of`); [] otherwise."""
    chosen = state.objects[state.active] if state.objects else None
    if state.image is None or chosen is None or chosen.candidates is None or len(chosen.candidates) < 2:
        return []
    height, width = state.image.shape[:2]
    small = preview_scale(height, width, max_side=side)
    base = to_preview(state.image, small)
    gallery = []
    for i, candidate in enumerate(chosen.candidates):
        slot = state.active if slots is None else slots[state.active]
        masks: list[np.ndarray | None] = [None] * slot + [candidate]  # drawn in the object's colour
        mark = " ✓" if i == chosen.choice else ""
        gallery.append((draw_overlay(base, masks, scale=small), f"{i + 1}: score {chosen.scores[i]:.2f}{mark}"))
    return gallery


def box_canvas_value(state: ImageState, overlay: Any) -> Any:
    """The box canvas's value after an action: the picture with no box drawn in the drag mode (the dragged box is
    now the object's, drawn in the picture), no change in the other modes (the canvas is hidden) or when the
    picture is not sent again (`overlay` is `gr.skip()`)."""
    if state.mode != BOX or isinstance(overlay, dict):  # gr.skip() is a dict
        return gr.skip()
    return {"image": overlay, "boxes": []} if overlay is not None else None


def mode_canvases(state: ImageState) -> tuple[Any, Any]:
    """(click canvas, box canvas) updates after a mode change: the box canvas, showing the picture, in the drag
    mode; the click canvas in the others. The user's objects and prompts are the state's: nothing is lost."""
    drag = state.mode == BOX
    value = {"image": overlay_of(state), "boxes": []} if drag and state.preview is not None else None
    return gr.update(visible=not drag), gr.update(visible=drag, value=value)


def dragged_box(value: dict[str, Any] | None) -> Xyxy | None:
    """The box just dragged, xyxy preview pixels, from the box canvas's value; None when it holds none (the
    canvas reports a change for our own redraws too)."""
    boxes = (value or {}).get("boxes") or []
    if not boxes:
        return None
    box = boxes[-1]
    return float(box["xmin"]), float(box["ymin"]), float(box["xmax"]), float(box["ymax"])


def colour_slots(state: ReviewState) -> list[int]:
    """Each editor object's colour (an index for `media.color_of`), in object order. On a video's frame a track's
    instance has its track's colour, the same on every frame and in the timeline (its place among the video's
    tracks), so an id switch shows as a change of colour; other objects follow. On an image: the object's place."""
    image = state.image
    if state.video is None:
        return list(range(len(image.objects)))
    slots, extra = [], len(state.video_tracks)
    for obj in image.objects:
        if obj in state.originals and state.tracks[state.originals.index(obj)] in state.video_tracks:
            slots.append(state.video_tracks.index(state.tracks[state.originals.index(obj)]))
        else:
            slots.append(extra)
            extra += 1
    return slots
