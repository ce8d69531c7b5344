"""Test clips for video datasets: a scene of coloured squares, a detector that finds them by colour, and a tracker
that follows them by colour (a `FrameTracker` with exact, instant masks: SAM 2 with random weights gives meaningless
masks, and costs seconds a frame)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import supervision as sv

from annotate.video_stream import VideoStream
from annotate.video_tracks import RLE
from sam2_model.rle import mask_to_rle

FRAMES, HEIGHT, WIDTH = 14, 72, 96


def clip_frames(count: int = FRAMES, height: int = HEIGHT, width: int = WIDTH, green_from: int = 5) -> list[np.ndarray]:
    """A red square moving right on every frame; a green square from frame `green_from` on."""
    frames = []
    for t in range(count):
        image = np.full((height, width, 3), 60, np.uint8)
        image[10:34, 4 + 3 * t : 28 + 3 * t] = (220, 40, 40)
        if t >= green_from:
            image[40:66, 60:88] = (40, 200, 60)
        frames.append(image)
    return frames


def colour_masks(image: np.ndarray) -> list[np.ndarray]:
    """HxWx3 RGB -> [red pixels, green pixels] (class 0 and class 1 of `ColourDetector`), HxW bool."""
    red = (image[..., 0] > 150) & (image[..., 1] < 110)
    green = (image[..., 1] > 150) & (image[..., 0] < 110)
    return [red, green]


class ColourDetector:
    """Boxes around the red (class 0) and green (class 1) squares of `clip_frames`, from the pixels."""

    def __init__(self) -> None:
        self.names = {0: "red", 1: "green"}
        self.calls = 0

    def __call__(self, image: np.ndarray) -> sv.Detections:
        self.calls += 1
        boxes, classes = [], []
        for class_id, pixels in enumerate(colour_masks(image)):
            if pixels.sum() > 20:
                ys, xs = np.nonzero(pixels)
                boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
                classes.append(class_id)
        return sv.Detections(
            xyxy=np.array(boxes, np.float32).reshape(-1, 4),
            class_id=np.array(classes, int),
            confidence=np.linspace(0.9, 0.7, len(classes)).astype(np.float32),
        )


def scripted_sam2_iou(colour: int) -> float:
    """What `ColourTracker` states as SAM 2's predicted IoU of a colour's masks: 0.9 for red, 0.8 for green."""
    return round(0.9 - 0.1 * colour, 2)


class ColourTracker:
    """A `FrameTracker` following colours: an object is the colour its prompt box covers most, its mask that
    colour's pixels on each frame; `scripted_sam2_iou` its "predicted IoU". Install it with
    `use_colour_tracker(monkeypatch)`."""

    def __init__(self, stream: VideoStream) -> None:
        self.stream = stream
        self.following: dict[int, int] = {}  # track id -> colour index
        self.colours: dict[int, int] = {}  # every track's colour, also once removed (its last masks are emitted)

    @property
    def num_frames(self) -> int:
        return self.stream.num_frames

    def _colour(self, frame: int, box: np.ndarray) -> int:
        x0, y0, x1, y1 = (int(v) for v in box)
        return int(np.argmax([m[y0:y1, x0:x1].sum() for m in colour_masks(self.stream.rgb(frame))]))

    def _mask(self, colour: int, frame: int) -> RLE:
        return mask_to_rle(colour_masks(self.stream.rgb(frame))[colour])

    def segment(self, frame: int, boxes: np.ndarray) -> list[RLE]:
        return [self._mask(self._colour(frame, box), frame) for box in boxes]

    def prompt(self, frame: int, track_id: int, box: np.ndarray) -> RLE:
        self.following[track_id] = self.colours[track_id] = self._colour(frame, box)
        return self._mask(self.following[track_id], frame)

    def remove(self, track_id: int) -> None:
        del self.following[track_id]

    def forward(self, start: int, stop: int) -> Iterator[tuple[int, dict[int, RLE]]]:
        for frame in range(start, stop + 1):
            yield frame, {i: self._mask(c, frame) for i, c in self.following.items()}

    def backward(self, frame: int, boxes: dict[int, np.ndarray], stop: int) -> Iterator[tuple[int, dict[int, RLE]]]:
        colours = {i: self._colour(frame, box) for i, box in boxes.items()}
        for t in range(frame - 1, stop - 1, -1):
            yield t, {i: self._mask(c, t) for i, c in colours.items()}

    def forget(self, before: int) -> None:
        pass

    def close(self) -> None:
        pass

    def sam2_iou(self, frame: int, track_id: int, rle: RLE) -> float | None:
        return scripted_sam2_iou(self.colours[track_id])


def use_colour_tracker(monkeypatch) -> None:
    """Videos are tracked by `ColourTracker` instead of SAM 2 (images still go through SAM 2)."""
    monkeypatch.setattr("annotate.video_annotator.Sam2FrameTracker", lambda predictor, stream: ColourTracker(stream))
