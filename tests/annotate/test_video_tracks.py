"""Track association against scripted ground truth: a perfect fake tracker follows rectangles that enter, leave,
cross and are missed by the detector on some keyframes; the associator must keep one continuous id per object."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
import supervision as sv

from annotate.settings import VideoSettings
from annotate.video_tracks import RLE, TrackAssociator, keyframes, rle_iou
from sam2_model.rle import mask_to_rle, rle_to_mask

H, W = 90, 200
Box = tuple[int, int, int, int]


def box_mask(box: Box | None) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    if box is not None:
        x0, y0, x1, y1 = box
        mask[y0:y1, x0:x1] = True
    return mask


class Scene:
    """Ground truth: object name -> frame -> xyxy box (None where the object is not in the frame)."""

    def __init__(self, num_frames: int, objects: dict[str, Callable[[int], Box | None]]) -> None:
        self.num_frames = num_frames
        self.objects = objects

    def box(self, name: str, frame: int) -> Box | None:
        return self.objects[name](frame)

    def owner(self, frame: int, box: np.ndarray) -> str:
        """The object a box prompt on `frame` points at (the best-overlapping ground-truth box)."""
        ious = {name: _box_iou(self.box(name, frame), box) for name in self.objects}
        return max(ious, key=lambda name: ious[name])


def _box_iou(a: Box | None, b: np.ndarray) -> float:
    if a is None:
        return 0.0
    ma, mb = box_mask(a), box_mask(tuple(int(v) for v in b))  # type: ignore[arg-type]
    return (ma & mb).sum() / max(1, (ma | mb).sum())


class PerfectTracker:
    """A `FrameTracker` that follows the ground truth exactly, and records what it was asked."""

    def __init__(self, scene: Scene) -> None:
        self.scene = scene
        self.following: dict[int, str] = {}  # track id -> object
        self.forgotten_before = 0
        self.forward_calls: list[tuple[int, int]] = []
        self.backward_calls: list[tuple[int, int, tuple[int, ...]]] = []
        self.removed: list[int] = []

    @property
    def num_frames(self) -> int:
        return self.scene.num_frames

    def _mask(self, name: str, frame: int) -> RLE:
        return mask_to_rle(box_mask(self.scene.box(name, frame)))

    def segment(self, frame: int, boxes: np.ndarray) -> list[RLE]:
        return [mask_to_rle(box_mask(tuple(int(v) for v in b))) for b in boxes]  # type: ignore[arg-type]

    def prompt(self, frame: int, track_id: int, box: np.ndarray) -> RLE:
        assert frame >= self.forgotten_before
        self.following[track_id] = self.scene.owner(frame, box)
        return self._mask(self.following[track_id], frame)

    def remove(self, track_id: int) -> None:
        self.removed.append(track_id)
        del self.following[track_id]

    def forward(self, start: int, stop: int) -> Iterator[tuple[int, dict[int, RLE]]]:
        self.forward_calls.append((start, stop))
        for frame in range(start, stop + 1):
            yield frame, {i: self._mask(name, frame) for i, name in self.following.items()}

    def backward(self, frame: int, boxes: dict[int, np.ndarray], stop: int) -> Iterator[tuple[int, dict[int, RLE]]]:
        self.backward_calls.append((frame, stop, tuple(boxes)))
        names = {i: self.scene.owner(frame, box) for i, box in boxes.items()}
        for t in range(frame - 1, stop - 1, -1):
            yield t, {i: self._mask(name, t) for i, name in names.items()}

    def forget(self, before: int) -> None:
        self.forgotten_before = before


def detector(scene: Scene, classes: dict[str, int], misses: set[tuple[str, int]] = frozenset()):
    def detect(frame: int) -> sv.Detections:
        found = [(n, scene.box(n, frame)) for n in scene.objects if (n, frame) not in misses]
        found = [(n, b) for n, b in found if b is not None]
        if not found:
            return sv.Detections.empty()
        return sv.Detections(
            xyxy=np.array([b for _, b in found], np.float32),
            class_id=np.array([classes[n] for n, _ in found]),
            confidence=np.full(len(found), 0.8, np.float32),
        )

    return detect


def crossing_scene() -> Scene:
    def walker(frame: int) -> Box:  # the whole clip, slowly right
        return (10 + frame, 5, 40 + frame, 30)

    def visitor(frame: int) -> Box | None:  # enters at 13, leaves after 38
        return (120, 50, 150, 85) if 13 <= frame <= 38 else None

    def left_to_right(frame: int) -> Box:
        x = 2 * frame
        return (x, 40, x + 30, 70)

    def right_to_left(frame: int) -> Box:
        x = W - 30 - 2 * frame
        return (x, 45, x + 30, 75)

    return Scene(60, {"walker": walker, "visitor": visitor, "ltr": left_to_right, "rtl": right_to_left})


def run(scene, settings, detect):
    tracker = PerfectTracker(scene)
    associator = TrackAssociator(tracker, settings)
    frames = list(associator.run(detect))
    return associator, tracker, frames


def test_keyframes_are_every_interval_and_the_last():
    assert keyframes(60, 10) == [0, 10, 20, 30, 40, 50, 59]
    assert keyframes(1, 10) == [0]
    assert keyframes(21, 10) == [0, 10, 20]
    assert keyframes(0, 10) == []


def test_ids_are_continuous_through_entries_exits_crossings_and_missed_detections():
    scene = crossing_scene()
    classes = {"walker": 0, "visitor": 2, "ltr": 5, "rtl": 7}
    misses = {("walker", 30), ("ltr", 20), ("rtl", 40)}  # the detector misses them there; tracking goes on
    associator, tracker, frames = run(scene, VideoSettings(keyframe_interval=10), detector(scene, classes, misses))

    assert [f for f, _ in frames] == list(range(60))  # every frame, once, in order
    tracks = associator.tracks
    assert sorted(tracks) == [1, 2, 3, 4]  # four objects, four tracks: no duplicates
    by_object = {tracker.scene.owner(t.first_frame, _box_of(frames, t.id, t.first_frame)): t for t in tracks.values()}
    assert set(by_object) == set(scene.objects)
    for name, track in by_object.items():
        assert track.class_id == classes[name]
        assert track.score == pytest.approx(0.8)
        for frame, masks in frames:  # the track's mask is the object's on every frame it is in, and only those
            truth = scene.box(name, frame)
            if truth is None:
                assert track.id not in masks
            else:
                assert np.array_equal(rle_to_mask(masks[track.id]), box_mask(truth)), (name, frame)
    visitor = by_object["visitor"]
    assert (visitor.first_frame, visitor.last_frame, visitor.frames) == (13, 38, 26)  # found at 20, tracked back
    assert visitor.started == 20
    assert visitor.ended == 50  # missed at 40 and 50 with an empty mask
    assert tracker.removed == [visitor.id]
    assert all(t.ended is None for n, t in by_object.items() if n != "visitor")
    assert by_object["walker"].votes[0] == 6  # 7 keyframes, one missed
    assert tracker.backward_calls == [(20, 10, (visitor.id,))]  # only a new track goes backwards, to the last keyframe


def _box_of(frames, track_id: int, frame: int) -> np.ndarray:
    mask = rle_to_mask(dict(frames)[frame][track_id])
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])


def test_frames_are_final_only_after_the_next_keyframe_and_then_forgotten():
    scene = crossing_scene()
    settings = VideoSettings(keyframe_interval=10)
    tracker = PerfectTracker(scene)
    associator = TrackAssociator(tracker, settings)
    seen = []
    for frame, _ in associator.run(detector(scene, {n: 0 for n in scene.objects})):
        seen.append((frame, tracker.forward_calls[-1][1] if tracker.forward_calls else 0, tracker.forgotten_before))
    for frame, tracked_to, forgotten in seen[:-10]:
        assert tracked_to >= frame + 10  # emitted only once the keyframe after its own was processed
        assert forgotten <= frame + 1  # and nothing it still needs was dropped
    assert tracker.forgotten_before == 51  # the tracker keeps at most two intervals of frames


def test_a_duplicate_detection_does_not_start_a_second_track():
    scene = Scene(12, {"a": lambda f: (10, 10, 50, 50)})

    def twice(frame: int) -> sv.Detections:  # the same object as two classes
        return sv.Detections(
            xyxy=np.array([[10, 10, 50, 50], [11, 10, 50, 50]], np.float32),
            class_id=np.array([1, 3]),
            confidence=np.array([0.9, 0.6], np.float32),
        )

    associator, _, frames = run(scene, VideoSettings(keyframe_interval=5), twice)
    assert list(associator.tracks) == [1]
    assert associator.tracks[1].class_id == 1  # the majority: matched first each keyframe by IoU order
    assert all(list(masks) == [1] for _, masks in frames)


def test_majority_class_and_mean_score():
    scene = Scene(31, {"a": lambda f: (10, 10, 50, 50)})
    votes = iter([2, 5, 5, 2, 5])

    def flicker(frame: int) -> sv.Detections:
        return sv.Detections(
            xyxy=np.array([[10, 10, 50, 50]], np.float32),
            class_id=np.array([next(votes)]),
            confidence=np.array([0.5 + frame / 100], np.float32),
        )

    associator, _, _ = run(scene, VideoSettings(keyframe_interval=10), flicker)  # keyframes 0, 10, 20, 30
    track = associator.tracks[1]
    assert dict(track.votes) == {2: 2, 5: 2}
    assert track.class_id == 2  # a tie goes to the class that reached it first
    assert track.score == pytest.approx(np.mean([0.5, 0.6, 0.7, 0.8]))


def test_reprompt_when_the_mask_drifted():
    scene = Scene(21, {"a": lambda f: (10, 10, 50, 50)})

    class Drifting(PerfectTracker):
        def __init__(self, scene):
            super().__init__(scene)
            self.prompts: list[int] = []

        def prompt(self, frame, track_id, box):
            self.prompts.append(frame)
            return super().prompt(frame, track_id, box)

        def forward(self, start, stop):  # the tracked mask shrinks to half: IoU 0.5 with the detection
            for frame, masks in super().forward(start, stop):
                yield frame, {i: mask_to_rle(box_mask((10, 10, 30, 50))) for i in masks}

    for reprompt_iou, prompted in ((None, [0]), (0.8, [0, 10, 20])):
        tracker = Drifting(scene)
        settings = VideoSettings(keyframe_interval=10, match_iou=0.4, reprompt_iou=reprompt_iou)
        frames = dict(TrackAssociator(tracker, settings).run(detector(scene, {"a": 0})))
        assert tracker.prompts == prompted
        assert rle_to_mask(frames[10][1]).sum() == (1600 if reprompt_iou else 800)  # the re-prompted mask is kept


def test_at_most_max_tracks_are_started_and_the_rest_are_counted():
    """A detector at confidence 0 can report hundreds of objects a keyframe; each track costs SAM 2 every frame."""
    scene = crossing_scene()  # four objects; the visitor appears at keyframe 20
    scores = {"walker": 0.9, "visitor": 0.6, "ltr": 0.8, "rtl": 0.7}
    found = detector(scene, {n: 0 for n in scene.objects})

    def detect(frame: int) -> sv.Detections:
        detections = found(frame)
        detections.confidence = np.array([scores[n] for n in scene.objects if scene.box(n, frame) is not None])
        return detections

    segmented: list[int] = []
    tracker = PerfectTracker(scene)
    tracker.segment = lambda frame, boxes: segmented.append(len(boxes)) or PerfectTracker.segment(tracker, frame, boxes)
    associator = TrackAssociator(tracker, VideoSettings(keyframe_interval=10, max_tracks=2))
    frames = list(associator.run(detect))
    assert sorted(associator.tracks) == [1, 2] and sorted(tracker.following.values()) == ["ltr", "walker"]
    assert all(set(masks) <= {1, 2} for _, masks in frames)  # the two most confident, followed to the end
    assert tracker.backward_calls == [] and max(segmented) == 2  # SAM 2 never saw the others
    seen = [sum(scene.box(n, k) is not None for n in scene.objects) for k in keyframes(60, 10)]
    assert associator.untracked == sum(seen) - 2 * len(seen)  # every other detection on every keyframe

    unlimited, _, _ = run(scene, VideoSettings(keyframe_interval=10), detect)
    assert len(unlimited.tracks) == 4 and unlimited.untracked == 0
    with pytest.raises(ValueError, match="max_tracks must be >= 1"):
        VideoSettings(max_tracks=0)


def test_no_detections_at_all_emits_empty_frames():
    scene = Scene(7, {"a": lambda f: None})
    associator, tracker, frames = run(scene, VideoSettings(keyframe_interval=3), detector(scene, {"a": 0}))
    assert frames == [(f, {}) for f in range(7)]
    assert associator.tracks == {} and tracker.forward_calls == []


def test_rle_iou():
    a, b = mask_to_rle(box_mask((0, 0, 10, 10))), mask_to_rle(box_mask((5, 0, 15, 10)))
    assert rle_iou([a], [a, b]) == pytest.approx(np.array([[1.0, 50 / 150]]))
    assert rle_iou([], [a]).shape == (0, 1)
