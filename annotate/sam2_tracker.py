"""`Sam2FrameTracker`: the `FrameTracker` of `video_tracks` on our SAM 2 video engine and a streamed video.

One session tracks every live object forward; an object that appears is also tracked backwards in a short-lived
second session on the same stream (its own memory: the main session's must not see the past after the future). The
stream keeps a window of decoded frames, the main session forgets final frames, so memory stays flat in the video's
length. SAM 2's predicted IoU of each mask it returns is kept beside it, for the frame's writer (`sam2_iou`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from typing import Any, cast

import numpy as np

from sam2_model import VideoPredictor
from sam2_model.rle import masks_to_rles

from .video_stream import VideoStream
from .video_tracks import RLE


class Sam2FrameTracker:
    """SAM 2 tracking of a `VideoStream`'s frames; track ids are the session's object ids. Close it when done."""

    def __init__(self, predictor: VideoPredictor, stream: VideoStream) -> None:
        self.predictor = predictor
        self.stream = stream
        self.session = predictor.init_state(stream)
        # frame -> track id -> (the mask's RLE counts, SAM 2's predicted IoU of it): the newest mask returned
        self._ious: dict[int, dict[int, tuple[Any, float]]] = {}

    @property
    def num_frames(self) -> int:
        return self.stream.num_frames

    def segment(self, frame: int, boxes: np.ndarray) -> list[RLE]:
        logits = self.predictor.segment_boxes(self.session, frame, boxes)
        return masks_to_rles((logits[:, 0] > 0).cpu().numpy())

    def prompt(self, frame: int, track_id: int, box: np.ndarray) -> RLE:
        self.predictor.add_new_points_or_box(self.session, frame, track_id, box=np.asarray(box, np.float32))
        return self._kept(frame, self.session.frame_rles(frame), self.session.frame_ious(frame))[track_id]

    def remove(self, track_id: int) -> None:
        self.predictor.remove_object(self.session, track_id)

    def forward(self, start: int, stop: int) -> Iterator[tuple[int, dict[int, RLE]]]:
        if not self.session.obj_ids:
            return
        for frame, _, _ in self.predictor.propagate_in_video(self.session, start, max_frame_num_to_track=stop - start):
            yield frame, self._kept(frame, self.session.frame_rles(frame), self.session.frame_ious(frame))

    def backward(self, frame: int, boxes: dict[int, np.ndarray], stop: int) -> Iterator[tuple[int, dict[int, RLE]]]:
        # the same stream (closing the session leaves it open) and the frames' image features the main session has
        session = self.predictor.init_state(self.stream, features_from=self.session)
        try:
            for track_id, box in boxes.items():
                self.predictor.add_new_points_or_box(session, frame, track_id, box=np.asarray(box, np.float32))
            order = self.predictor.propagate_in_video(session, frame, max_frame_num_to_track=frame - stop, reverse=True)
            for t, _, _ in order:
                if t != frame:
                    yield t, self._kept(t, session.frame_rles(t), session.frame_ious(t))
        finally:
            self.predictor.close_state(session)

    def forget(self, before: int) -> None:
        self.predictor.forget_frames(self.session, before)
        for frame in [frame for frame in self._ious if frame < before]:
            del self._ious[frame]

    def close(self) -> None:
        self.predictor.close_state(self.session)

    def sam2_iou(self, frame: int, track_id: int, rle: RLE) -> float | None:
        """SAM 2's predicted IoU of `rle`, a mask this tracker returned for `track_id` on `frame` (the newest one
        there, which is what `TrackAssociator` keeps); None for another mask, or a frame already forgotten."""
        kept = self._ious.get(frame, {}).get(track_id)
        return kept[1] if kept is not None and kept[0] == rle["counts"] else None

    def _kept(self, frame: int, rles: Mapping[Hashable, RLE], ious: Mapping[Hashable, float]) -> dict[int, RLE]:
        """A frame's masks by track id (our sessions use int object ids), their predicted IoUs kept beside them."""
        masks = {int(cast(int, obj_id)): rle for obj_id, rle in rles.items()}
        kept = self._ious.setdefault(frame, {})
        for track_id, rle in masks.items():
            kept[track_id] = (rle["counts"], ious[track_id])
        return masks
