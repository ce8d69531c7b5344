"""YOLO segmentation label format: pure converters between masks, polygons and label lines.

A YOLO-seg line is ``class x1 y1 x2 y2 ...`` with coordinates normalised by the image width and height. A mask in
several parts becomes one polygon the way ultralytics converts masks itself (`ultralytics.utils.ops.masks2segments`
with strategy "all": the outer contour of each part, joined by thin zero-width bridges at their closest points), so
our labels match what ultralytics' own tools write and read.
"""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv
from ultralytics.utils.ops import masks2segments


def mask_to_polygon(mask: np.ndarray, simplify: float = 0.0) -> np.ndarray:
    """HxW bool mask -> one Kx2 float32 polygon of (x, y) pixels (K = 0 for an empty mask).

    Args:
        mask: HxW bool or 0/1 mask.
        simplify: Douglas-Peucker tolerance in pixels (0 keeps every contour vertex). Each part is simplified
            before parts are joined, so bridges stay exact.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"Expected an HxW mask, got shape {mask.shape}.")
    if simplify > 0:
        # The same outer contours as masks2segments, each simplified, then joined with ultralytics' own bridging.
        from ultralytics.data.converter import merge_multi_segment

        contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        parts = [cv2.approxPolyDP(c, simplify, True).reshape(-1, 2) for c in contours]
        parts = [p for p in parts if len(p) >= 3] or [c.reshape(-1, 2) for c in contours]
        if not parts:
            return np.zeros((0, 2), np.float32)
        joined = np.concatenate(merge_multi_segment(parts)) if len(parts) > 1 else parts[0]
        return joined.astype(np.float32)
    return masks2segments(mask[None].astype(np.uint8), strategy="all")[0]


def polygon_to_mask(polygon: np.ndarray, resolution_wh: tuple[int, int]) -> np.ndarray:
    """Kx2 (x, y) pixel polygon -> HxW bool mask of size `resolution_wh` (width, height)."""
    polygon = np.asarray(polygon, dtype=np.float32).reshape(-1, 2)
    if len(polygon) < 3:
        return np.zeros(resolution_wh[::-1], dtype=bool)
    return sv.polygon_to_mask(np.round(polygon).astype(np.int32), resolution_wh).astype(bool)


def box_to_polygon(xyxy: np.ndarray) -> np.ndarray:
    """xyxy pixel box -> 4x2 (x, y) polygon of its corners, clockwise from the top-left."""
    x0, y0, x1, y1 = (float(v) for v in np.asarray(xyxy).reshape(4))
    return np.array([[x0, y0], [x1, y0], [x1, y1], [x0, y1]], dtype=np.float32)


def polygon_to_yolo_line(class_id: int, polygon: np.ndarray, resolution_wh: tuple[int, int]) -> str:
    """Class and Kx2 (x, y) pixel polygon (K >= 3) -> ``"class x1 y1 ..."`` normalised to [0, 1], 6 decimals."""
    polygon = np.asarray(polygon, dtype=np.float64).reshape(-1, 2)
    if len(polygon) < 3:
        raise ValueError(f"A YOLO segment needs at least 3 points, got {len(polygon)}.")
    width, height = resolution_wh
    normalised = np.clip(polygon / np.array([width, height], dtype=np.float64), 0.0, 1.0)
    return f"{int(class_id)} " + " ".join(f"{v:.6f}" for v in normalised.reshape(-1))


def yolo_line_to_polygon(line: str, resolution_wh: tuple[int, int]) -> tuple[int, np.ndarray]:
    """``"class x1 y1 ..."`` -> (class id, Kx2 (x, y) pixel polygon)."""
    values = line.split()
    if len(values) < 7 or len(values) % 2 == 0:
        raise ValueError(f"Not a YOLO segment line (class and at least 3 x y pairs): {line!r}")
    width, height = resolution_wh
    points = np.array(values[1:], dtype=np.float64).reshape(-1, 2) * np.array([width, height])
    return int(values[0]), points.astype(np.float32)


def instance_polygon(
    mask: np.ndarray | None, xyxy: np.ndarray, min_area: int = 0, simplify: float = 0.0
) -> tuple[np.ndarray, bool]:
    """The polygon written for one detected instance: its mask's, else its box's.

    Every detection gets exactly one label line: a missing or empty mask, one smaller than `min_area` pixels, or
    one whose outline has fewer than 3 points falls back to the detector's box. Returns (Kx2 pixel polygon,
    True when it came from the mask).
    """
    if mask is not None and mask.any() and int(mask.sum()) >= min_area:
        polygon = mask_to_polygon(mask, simplify)
        if len(polygon) >= 3:
            return polygon, True
    return box_to_polygon(xyxy), False
