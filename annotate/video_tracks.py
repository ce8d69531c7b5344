"""Continuous track ids on a video: a detector on keyframes, a tracker in between, one `Track` per object.

`TrackAssociator` is the bookkeeping, with no model in it (`FrameTracker` is what it drives; `Sam2FrameTracker` in
`sam2_tracker.py` is SAM 2's, tests script their own):

    for each keyframe k (every `keyframe_interval`-th frame, and the last):
        track every live object forward to k
        detect on k (with `max_tracks`, only its `max_tracks` most confident detections: no more can be tracked);
        segment each detection as a new object would be (its box alone, no memory)
        match detections to live tracks by mask IoU on k (greedy, highest first, >= match_iou)
            matched     -> the track's class votes and scores grow (re-prompted with the box if it drifted)
            unmatched   -> a new track (unless it overlaps a live track or another new one): prompted by its box
                           on k and tracked backwards to the previous keyframe, so it starts where it appeared;
                           once `max_tracks` have started, not tracked (counted in `untracked`)
            no match    -> the track missed k; after `end_after` misses in a row with an empty mask it ends
        frames up to the previous keyframe are final: emitted in order, their masks dropped from the tracker

Masks travel as COCO compressed RLEs ({"size": [h, w], "counts": str}); IoUs are pycocotools' on RLEs, without
decoding a pixel.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol, cast

import numpy as np
import supervision as sv
from pycocotools import mask as mask_utils

from sam2_model.rle import mask_to_rle, rle_area, rle_for_pycocotools

from .settings import VideoSettings

RLE = dict[str, Any]


class FrameTracker(Protocol):
    """What `TrackAssociator` needs of a video tracker. Frames are indices of the frames in use; masks are RLEs."""

    @property
    def num_frames(self) -> int: ...

    def segment(self, frame: int, boxes: np.ndarray) -> list[RLE]:
        """Each Nx4 xyxy box's mask on `frame` as a new object prompted by it alone would get; changes nothing."""
        ...

    def prompt(self, frame: int, track_id: int, box: np.ndarray) -> RLE:
        """Prompt object `track_id` (new or not) with an xyxy box on `frame`; return its mask there."""
        ...

    def remove(self, track_id: int) -> None:
        """Stop tracking `track_id`."""
        ...

    def forward(self, start: int, stop: int) -> Iterator[tuple[int, dict[int, RLE]]]:
        """Track every object over frames start..stop (inclusive): (frame, {track id: mask}) per frame."""
        ...

    def backward(self, frame: int, boxes: dict[int, np.ndarray], stop: int) -> Iterator[tuple[int, dict[int, RLE]]]:
        """Objects prompted by `boxes` on `frame` alone, tracked backwards over frames frame-1 down to stop."""
        ...

    def forget(self, before: int) -> None:
        """Drop what is kept of frames before `before` (they are final)."""
        ...


@dataclass
class Track:
    """One object of a video, as the outputs state it.

    id: its track id (1, 2, ...; never reused); votes: detections matched to it, by class id; scores: their
    confidences; first_frame, last_frame: the first and last frame (index of the frames in use) with a non-empty
    mask, None before any; frames: how many frames have its mask; started: the keyframe that found it; ended: the
    keyframe where it ended, None while it lives; missed: keyframes in a row without a matching detection.
    """

    id: int
    started: int
    votes: Counter[int] = field(default_factory=Counter)
    scores: list[float] = field(default_factory=list)
    first_frame: int | None = None
    last_frame: int | None = None
    frames: int = 0
    ended: int | None = None
    missed: int = 0

    @property
    def class_id(self) -> int:
        """The majority class of its detections (ties: the class that reached that count first)."""
        return self.votes.most_common(1)[0][0]

    @property
    def score(self) -> float:
        """The mean confidence of its detections (1.0 when the detector gave none)."""
        return float(np.mean(self.scores)) if self.scores else 1.0

    def vote(self, class_id: int, score: float | None) -> None:
        self.votes[int(class_id)] += 1
        if score is not None:
            self.scores.append(float(score))

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "class_id": self.class_id,
            "score": round(self.score, 5),
            "detections": sum(self.votes.values()),
            "first_frame": self.first_frame,
            "last_frame": self.last_frame,
            "frames": self.frames,
            "started": self.started,
            "ended": self.ended,
        }


def keyframes(num_frames: int, interval: int) -> list[int]:
    """The frames the detector runs on: every `interval`-th from 0, and the last."""
    if num_frames < 1:
        return []
    return sorted(set(range(0, num_frames, interval)) | {num_frames - 1})


def rle_iou(a: list[RLE], b: list[RLE]) -> np.ndarray:
    """len(a) x len(b) mask IoU of two lists of compressed RLEs (pycocotools, no decoding)."""
    if not a or not b:
        return np.zeros((len(a), len(b)))
    ious = mask_utils.iou([rle_for_pycocotools(r) for r in a], [rle_for_pycocotools(r) for r in b], [0] * len(b))
    return np.asarray(ious, float)


class TrackAssociator:
    """Runs a `FrameTracker` and a detector over a video and gives each object one continuous track id.

    `run(detect)` yields every frame, in order, once final: (frame, {track id: non-empty RLE}); `tracks` then holds
    every track that was started (`Track.frames` 0 for one whose mask was never found), `untracked` the detections
    left out for `settings.max_tracks`: past the `max_tracks` most confident of their keyframe, or new objects once
    `max_tracks` tracks had started (an object counts once per keyframe it is found on). With the cap, SAM 2's work
    is bounded by it: at most `max_tracks` boxes segmented per keyframe, objects tracked per frame, and objects
    tracked backwards.
    """

    def __init__(self, tracker: FrameTracker, settings: VideoSettings) -> None:
        self.tracker = tracker
        self.settings = settings
        self.tracks: dict[int, Track] = {}
        self._pending: dict[int, dict[int, RLE]] = {}  # masks of frames not final yet
        self._emitted = -1  # the last frame emitted
        self.untracked = 0

    @property
    def live(self) -> list[Track]:
        return [t for t in self.tracks.values() if t.ended is None]

    def run(self, detect: Callable[[int], sv.Detections]) -> Iterator[tuple[int, dict[int, RLE]]]:
        """Track the whole video. detect(frame) -> that frame's `sv.Detections` (xyxy pixels, class_id, confidence)."""
        previous: int | None = None
        for key in keyframes(self.tracker.num_frames, self.settings.keyframe_interval):
            if previous is not None and self.live:
                for frame, masks in self.tracker.forward(previous + 1, key):
                    self._keep(frame, masks)
            self._associate(key, detect(key), previous)
            if previous is not None:
                yield from self._emit(previous)
                self.tracker.forget(previous + 1)
            previous = key
        yield from self._emit(self.tracker.num_frames - 1)

    def _keep(self, frame: int, masks: dict[int, RLE]) -> None:
        self._pending.setdefault(frame, {}).update(masks)

    def _associate(self, key: int, detections: sv.Detections, previous: int | None) -> None:
        detections = self._strongest(detections)
        live = self.live
        tracked = self._pending.get(key, {})
        live_masks = [tracked.get(t.id) for t in live]  # None: lost on this frame
        n = len(detections)
        det_masks = self.tracker.segment(key, detections.xyxy.astype(np.float32)) if n else []
        iou = np.zeros((n, len(live)))  # detections x live tracks
        if n and live:
            iou = rle_iou(det_masks, [_empty(det_masks[0]["size"]) if m is None else m for m in live_masks])
        match_iou = self.settings.match_iou
        matched_dets: set[int] = set()
        matched_tracks: set[int] = set()
        for d, t in sorted(np.ndindex(iou.shape), key=lambda dt: -iou[dt]):
            if iou[d, t] < match_iou:
                break
            if d in matched_dets or t in matched_tracks:
                continue
            matched_dets.add(d)
            matched_tracks.add(t)
            track = live[t]
            track.vote(_class_of(detections, d), _score_of(detections, d))
            track.missed = 0
            reprompt = self.settings.reprompt_iou
            if reprompt is not None and iou[d, t] < reprompt:
                self._keep(key, {track.id: self.tracker.prompt(key, track.id, detections.xyxy[d])})

        started: dict[int, np.ndarray] = {}
        started_masks: list[RLE] = []
        for d in range(n):
            if d in matched_dets or (iou.shape[1] and iou[d].max() >= match_iou):
                continue  # a live track's, or a second detection of one
            if started_masks and rle_iou([det_masks[d]], started_masks).max() >= match_iou:
                continue  # the same new object detected twice (two classes, say)
            if self.settings.max_tracks is not None and len(self.tracks) >= self.settings.max_tracks:
                self.untracked += 1
                continue
            track = Track(id=len(self.tracks) + 1, started=key)
            track.vote(_class_of(detections, d), _score_of(detections, d))
            self.tracks[track.id] = track
            box = detections.xyxy[d]
            self._keep(key, {track.id: self.tracker.prompt(key, track.id, box)})
            started[track.id] = box
            started_masks.append(det_masks[d])

        for t, track in enumerate(live):
            if t in matched_tracks:
                continue
            track.missed += 1
            mask = live_masks[t]
            if track.missed >= self.settings.end_after and (mask is None or rle_area(mask) == 0):
                track.ended = key
                self.tracker.remove(track.id)

        if started and previous is not None:  # where did the new objects really appear?
            for frame, masks in self.tracker.backward(key, started, stop=previous):
                self._keep(frame, masks)

    def _strongest(self, detections: sv.Detections) -> sv.Detections:
        """The `max_tracks` most confident detections (all without the cap), in the detector's order; the others
        are counted in `untracked`."""
        cap = self.settings.max_tracks
        if cap is None or len(detections) <= cap:
            return detections
        scores = detections.confidence if detections.confidence is not None else -np.arange(len(detections))
        kept = np.sort(np.argsort(-np.asarray(scores, float), kind="stable")[:cap])
        self.untracked += len(detections) - cap
        return cast(sv.Detections, detections[kept])  # an index array selects Detections

    def _emit(self, upto: int) -> Iterator[tuple[int, dict[int, RLE]]]:
        """Frames after the last emitted one up to `upto`, with their non-empty masks."""
        for frame in range(self._emitted + 1, upto + 1):
            masks = {i: rle for i, rle in sorted(self._pending.pop(frame, {}).items()) if rle_area(rle) > 0}
            for track_id in masks:
                track = self.tracks[track_id]
                track.first_frame = frame if track.first_frame is None else track.first_frame
                track.last_frame = frame
                track.frames += 1
            self._emitted = frame
            yield frame, masks


def _empty(size: list[int]) -> RLE:
    """An empty mask of `size` [h, w]."""
    return mask_to_rle(np.zeros((int(size[0]), int(size[1])), bool))


def _class_of(detections: sv.Detections, index: int) -> int:
    if detections.class_id is None:
        raise ValueError("The detector's Detections have no class_id: set class_id (one int per box).")
    return int(detections.class_id[index])


def _score_of(detections: sv.Detections, index: int) -> float | None:
    return None if detections.confidence is None else float(detections.confidence[index])
