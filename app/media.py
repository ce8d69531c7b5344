"""Media the app reads and writes: safe image opening, overlays, browser-playable video, export files.

Everything here is a plain function of its inputs; file names are ours, never built from what a user sent.
"""

from __future__ import annotations

import itertools
import json
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
import supervision as sv
from PIL import Image, ImageOps

from annotate.formats import instance_polygon, polygon_to_yolo_line
from sam2_model.formats import mask_to_coco_annotation

PALETTE = sv.ColorPalette.DEFAULT


class MediaError(ValueError):
    """An upload we cannot use; the message is safe to show to the user."""


def open_image(path: str | Path, max_pixels: int) -> np.ndarray:
    """Open an uploaded image as HxWx3 uint8 RGB with its EXIF orientation applied.

    Raises MediaError (with a message for the user, no server paths) for corrupt, truncated, non-image or oversized
    files.
    """
    try:
        with Image.open(path) as image:
            if image.width * image.height > max_pixels:
                raise MediaError(
                    f"The image is {image.width}x{image.height} pixels; the limit is {max_pixels:,} pixels. "
                    "Please upload a smaller image."
                )
            image.load()
            return np.array(ImageOps.exif_transpose(image).convert("RGB"))
    except MediaError:
        raise
    except Exception as error:  # PIL: UnidentifiedImageError, OSError (truncated), DecompressionBombError
        raise MediaError("This file could not be read as an image (corrupt, truncated or not an image).") from error


def color_of(index: int) -> sv.Color:
    return PALETTE.by_idx(index)


def draw_overlay(
    image: np.ndarray,
    masks: Sequence[np.ndarray | None],
    points: Sequence[Sequence[tuple[int, int, int]]] = (),
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


def masks_zip(masks: Sequence[tuple[str, np.ndarray]], target: Path) -> Path:
    """Write (name, HxW bool mask) pairs as 0/255 PNGs in a zip."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, mask in masks:
            ok, png = cv2.imencode(".png", mask.astype(np.uint8) * 255)
            if ok:
                archive.writestr(f"{name}.png", png.tobytes())
    return target


def coco_json(
    frames: Sequence[tuple[str, int, int, Sequence[tuple[int, np.ndarray]]]], names: dict[int, str], target: Path
) -> Path:
    """COCO instances with RLE masks. frames: (file_name, width, height, [(category_id, HxW mask)])."""
    images, annotations = [], []
    for image_id, (file_name, width, height, instances) in enumerate(frames, start=1):
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for category_id, mask in instances:
            if not mask.any():
                continue
            annotation = mask_to_coco_annotation(mask, category_id)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "iscrowd": 0, **annotation})
    categories = [{"id": k, "name": v} for k, v in sorted(names.items())]
    target.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return target


def yolo_labels(instances: Sequence[tuple[int, np.ndarray]], width: int, height: int, target: Path) -> Path:
    """YOLO-seg label lines for (class_id, HxW mask) instances (ultralytics' polygon conversion)."""
    lines = []
    for class_id, mask in instances:
        ys, xs = np.nonzero(mask)
        if len(xs) == 0:
            continue
        polygon, _ = instance_polygon(mask, np.array([xs.min(), ys.min(), xs.max(), ys.max()], float))
        lines.append(polygon_to_yolo_line(class_id, polygon, (width, height)))
    target.write_text("".join(f"{line}\n" for line in lines))
    return target


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
