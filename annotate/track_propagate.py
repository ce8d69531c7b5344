"""Re-propagating one corrected track with SAM 2 over a range of a video's frames, the other tracks untouched.

A person redraws a track's mask on one frame; SAM 2 (our `VideoPredictor`, in a session of the range's frames only
and this one object) carries the correction forward and/or backward. `propagate_track` returns the new masks;
`replace_track` puts them into a video's frames (pure, as `annotate.track_edits`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeAlias, cast

import numpy as np

from sam2_model import VideoPredictor

from .dataset_items import Annotation
from .track_edits import Frames

# Re-propagation run elsewhere (the app's GPU task, which may be another process): (the span's frames, HxWx3 uint8
# RGB in video order; the corrected frame's index among them; its HxW bool mask) -> {index among them: HxW bool}.
FramePropagator: TypeAlias = Callable[[list[np.ndarray], int, np.ndarray], dict[int, np.ndarray]]


def frame_range(num_frames: int, frame: int, forward: int | None, backward: int | None) -> range:
    """The frames a correction on `frame` re-propagates to: `forward` frames after it (None: to the last frame),
    `backward` before it (None: to the first), clipped to the video. ValueError for a frame not in the video or a
    negative count."""
    if not 0 <= frame < num_frames:
        raise ValueError(f"Frame {frame} is not a frame of this video: give 0 to {num_frames - 1}.")
    if (forward is not None and forward < 0) or (backward is not None and backward < 0):
        raise ValueError(f"forward and backward count frames (>= 0, None: to the end), got {forward}, {backward}.")
    first = 0 if backward is None else max(0, frame - backward)
    last = num_frames - 1 if forward is None else min(num_frames - 1, frame + forward)
    return range(first, last + 1)


def propagate_track(
    predictor: VideoPredictor | FramePropagator,
    images: Callable[[int], np.ndarray],
    span: range,
    frame: int,
    mask: np.ndarray,
) -> dict[int, np.ndarray]:
    """SAM 2 masks of one object over `span` (video frame indices) from its `mask` (HxW bool) on `frame`:
    {frame index: HxW bool} for every frame of `span` (`frame` itself: `mask`). `images(i)`: frame i, HxWx3 uint8
    RGB. Only the span's frames are decoded; the object is tracked forward to the span's end, then backward to its
    start (Meta's order for a correction), each direction from the corrected frame. A `FramePropagator` instead of
    a predictor is given the span's frames and does this elsewhere."""
    frames = [images(i) for i in span]
    if not isinstance(predictor, VideoPredictor):
        found = predictor(frames, frame - span.start, np.asarray(mask, bool))
        return {span.start + index: found_mask for index, found_mask in found.items()}
    session = predictor.init_state(frames)
    try:
        start = frame - span.start
        predictor.add_new_mask(session, start, 1, mask)
        masks: dict[int, np.ndarray] = {frame: np.asarray(mask, bool)}
        for reverse, count in ((False, span.stop - 1 - frame), (True, frame - span.start)):
            if count:
                for index, _, _ in predictor.propagate_in_video(session, start, count, reverse=reverse):
                    if index != start:  # the tracker keeps each frame's masks on the host: no second transfer
                        masks[span.start + index] = cast(np.ndarray, session.mask(index, 1))
        return masks
    finally:
        predictor.close_state(session)


def replace_track(
    frames: Frames, track: int, masks: dict[int, np.ndarray], class_id: int, class_name: str
) -> list[tuple[Annotation, ...]]:
    """`frames` with `track`'s instance on each frame of `masks` replaced by that mask (in its place; appended where
    the track was not; removed where the mask is empty), keeping its score; other instances and frames as they are."""
    result: list[tuple[Annotation, ...]] = []
    for index, frame in enumerate(frames):
        if index not in masks:
            result.append(frame)
            continue
        old = next((a for a in frame if a.track_id == track), None)
        new = None
        if masks[index].any():
            score = old.score if old is not None else None
            new = Annotation.from_mask(masks[index], class_id, class_name, score, track)
        instances: Sequence[Annotation | None] = [new if a is old else a for a in frame] if old is not None else [
            *frame, new]  # fmt: skip
        result.append(tuple(a for a in instances if a is not None))
    return result
