"""Pictures the app shows and the video it plays: overlays of masks and prompts, browser-playable H.264.

Everything here is a plain function of its inputs; file names are ours, never built from what a user sent.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
import supervision as sv

PALETTE = sv.ColorPalette.DEFAULT


def color_of(index: int) -> sv.Color:
    return PALETTE.by_idx(index)


def draw_overlay(
    image: np.ndarray,
    masks: Sequence[np.ndarray | None],
    points: Sequence[Sequence[tuple[float, float, int]]] = (),
    boxes: Sequence[Sequence[float] | None] = (),
    opacity: float = 0.5,
) -> np.ndarray:
    """Draw each object's mask (own colour), clicks (green +, red -) and box on a copy of the original pixels.

    image: HxWx3 uint8 RGB; masks: per object an HxW bool mask or None; points: per object [(x, y, label)];
    boxes: per object xyxy or None. Returns HxWx3 uint8 RGB.
    """
    overlay = image.copy()
    rows = [(i, m) for i, m in enumerate(masks) if m is not None and m.any()]
    if rows:
        stacked = np.stack([m for _, m in rows]).astype(bool)
        detections = sv.Detections(
            xyxy=sv.mask_to_xyxy(stacked).astype(float), mask=stacked, class_id=np.array([i for i, _ in rows])
        )
        annotator = sv.MaskAnnotator(color=PALETTE, opacity=opacity, color_lookup=sv.ColorLookup.CLASS)
        overlay = annotator.annotate(overlay, detections)
    radius = max(4, round(min(image.shape[:2]) / 100))
    for index, box in enumerate(boxes):
        if box is not None:
            x0, y0, x1, y1 = (round(float(v)) for v in box)
            cv2.rectangle(overlay, (x0, y0), (x1, y1), color_of(index).as_rgb(), max(2, radius // 2))
    for object_points in points:
        for x, y, label in object_points:
            fill = (40, 200, 40) if label == 1 else (220, 40, 40)
            cv2.circle(overlay, (int(x), int(y)), radius, fill, -1, lineType=cv2.LINE_AA)
            cv2.circle(overlay, (int(x), int(y)), radius, (255, 255, 255), 1, lineType=cv2.LINE_AA)
    return overlay


def write_h264(frames: Iterable[np.ndarray], target: Path, fps: float) -> Path:
    """Write HxWx3 uint8 RGB frames as an H.264 mp4 that browsers play (yuv420p, even size; OpenCV's wheel cannot)."""
    import av

    frames = iter(frames)
    first = next(frames)
    height, width = first.shape[0] // 2 * 2, first.shape[1] // 2 * 2
    with av.open(str(target), mode="w") as container:
        stream = container.add_stream("libx264", rate=max(1, round(fps)))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        for frame in itertools.chain([first], frames):
            video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:height, :width]), format="rgb24")
            container.mux(stream.encode(video_frame))
        container.mux(stream.encode())
    return target
