"""Where a person should look first in a dataset's videos: its tracks' concerns, the frames they show on, and the
order `Dataset.videos_needing_a_look` returns.

Two concerns of a track (besides its instances' own, `annotate.review`), each shown on one frame:

- TRACK_ENDS_EARLY: the track's last frame is before the video's last frame, and its mask there stays away from the
  picture's border (no pixel within `LookThresholds.border_margin` of a side: a share of the width at the left and
  right, of the height at the top and bottom; at least the outermost column or row). An object that leaves the
  picture touches the border on its way out; one that vanishes in the middle was lost by the tracker, or goes on
  under another id (an id switch). Shown on the track's last frame. A track that *starts* late away from the border
  is not a concern: an object that appears in the middle of the picture usually comes out from behind another or is
  first detected at a later keyframe, and an id switch already shows as the track before it ending early.
- CLASS_SWITCH: the track's class on a frame differs from its class on the last frame before it that holds it.
  Shown on each frame where the class changes.

A frame's entry in `Dataset.needs_a_look` names its tracks' concerns among its reasons (`annotate.review.REASONS`).

A video's entry (the order is part of the API, tested): NO_DETECTIONS when no frame holds a tracked instance (one
with a track id); else its frames' reasons, each once, in the order of `REASONS` (a frame with no instances is not a
concern of its video: objects come and go). Its quality is its worst frame's (1.0 when nothing is tracked); it is
reviewed when every frame is. Videos are ordered as items are (`annotate.review.look_order`): not fully reviewed
first; among them, videos with no tracks, then videos with a concern, then the rest; lowest quality first within
each group, then dataset order; reviewed videos last, in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from .dataset_items import Annotation, Video
from .review import (
    CLASS_SWITCH,
    NO_DETECTIONS,
    REASONS,
    TRACK_ENDS_EARLY,
    LookEntry,
    LookThresholds,
    look_entry,
)
from .track_edits import Frames


@dataclass(frozen=True)
class TrackConcern:
    """One concern of one track: its id, the reason (TRACK_ENDS_EARLY or CLASS_SWITCH) and the frame it shows on
    (0-based among the video's frames)."""

    track: int
    reason: str
    frame: int


@dataclass(frozen=True)
class VideoLookEntry(LookEntry):
    """A video in the review order: its key (`Video.key`), reasons, quality and reviewed flag as the module's
    docstring says, and its tracks' concerns (by frame, then track)."""

    concerns: tuple[TrackConcern, ...] = ()


def touches_border(mask: np.ndarray, margin: float) -> bool:
    """Whether an HxW bool mask has a pixel within `margin` (a share of the side: of the width for columns, of the
    height for rows; at least one pixel) of the picture's edge; False for an empty mask."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return False
    height, width = mask.shape
    band_x, band_y = max(margin * width, 1.0), max(margin * height, 1.0)
    gaps = (xs.min(), width - 1 - xs.max()), (ys.min(), height - 1 - ys.max())  # pixels between mask and edge
    return bool(min(gaps[0]) < band_x or min(gaps[1]) < band_y)


def track_concerns(frames: Frames, border_margin: float = LookThresholds.border_margin) -> tuple[TrackConcern, ...]:
    """The concerns of the tracks on a video's `frames` (each a tuple of `Annotation`, in frame order), as the
    module's docstring says, sorted by frame, then track, then the order of `REASONS`. Decodes the masks of each
    track's last frame only."""
    concerns = []
    last: dict[int, tuple[int, Annotation]] = {}  # track -> (frame, instance) where it was last seen
    for index, frame in enumerate(frames):
        for annotation in frame:
            track = annotation.track_id
            if track is None:
                continue
            if track in last and last[track][1].class_id != annotation.class_id:
                concerns.append(TrackConcern(track, CLASS_SWITCH, index))
            last[track] = (index, annotation)
    for track, (index, annotation) in last.items():
        if index < len(frames) - 1 and not touches_border(annotation.mask, border_margin):
            concerns.append(TrackConcern(track, TRACK_ENDS_EARLY, index))
    return tuple(sorted(concerns, key=lambda c: (c.frame, c.track, REASONS.index(c.reason))))


def video_look(
    key: str,
    frame_keys: Sequence[str],
    frames: Frames,
    reviewed: Sequence[bool],
    thresholds: LookThresholds | None = None,
) -> tuple[VideoLookEntry, list[LookEntry]]:
    """(the video's entry, its frames' entries in frame order) of a video `key` whose frames `frame_keys` hold
    `frames` (their instances) and are `reviewed` or not (`thresholds`: `LookThresholds()` by default). Decodes every
    mask."""
    thresholds = thresholds or LookThresholds()
    if not len(frame_keys) == len(frames) == len(reviewed):
        raise ValueError(f"Give one instance tuple and one reviewed flag per frame key, got {len(frame_keys)} keys, "
                         f"{len(frames)} frames and {len(reviewed)} flags.")  # fmt: skip
    concerns = track_concerns(frames, thresholds.border_margin)
    flags: dict[int, list[str]] = {}
    for concern in concerns:
        flags.setdefault(concern.frame, []).append(concern.reason)
    entries = [look_entry(k, instances, done, thresholds, flags.get(i, ()))
               for i, (k, instances, done) in enumerate(zip(frame_keys, frames, reviewed, strict=True))]  # fmt: skip
    if any(a.track_id is not None for instances in frames for a in instances):
        found = {reason for entry in entries for reason in entry.reasons}
        reasons = tuple(r for r in REASONS if r in found)
    else:
        reasons = (NO_DETECTIONS,)
    quality = min((entry.quality for entry in entries), default=1.0)
    return VideoLookEntry(key, reasons, quality, bool(reviewed) and all(reviewed), concerns), entries


def videos_look(
    videos: Iterable[Video],
    instances: Callable[[str], tuple[Annotation, ...]],
    is_reviewed: Callable[[str], bool],
    thresholds: LookThresholds | None = None,
) -> tuple[list[VideoLookEntry], dict[str, LookEntry]]:
    """(each video's entry, in the order given; every frame's entry by item key) of `videos`, their frames'
    instances and review flags read through `instances` and `is_reviewed` (a `Dataset`'s)."""
    entries: list[VideoLookEntry] = []
    frames: dict[str, LookEntry] = {}
    for video in videos:
        keys = video.frame_keys
        entry, frame_entries = video_look(video.key, keys, [instances(k) for k in keys],
                                          [is_reviewed(k) for k in keys], thresholds)  # fmt: skip
        entries.append(entry)
        frames.update((e.key, e) for e in frame_entries)
    return entries, frames
