"""YOLO segmentation label format: pure converters between masks, polygons and label lines.

A YOLO-seg line is ``class x1 y1 x2 y2 ...`` with coordinates normalised by the image width and height. A mask in
several parts becomes one polygon the way ultralytics converts masks itself (`ultralytics.utils.ops.masks2segments`
with strategy "all": the outer contour of each part, joined by thin zero-width bridges at their closest points), so
our labels match what ultralytics' own tools write and read, point for point.
"""

from __future__ import annotations

import cv2
import numpy as np
import supervision as sv

# Point pairs compared per vectorised step when joining parts (bounds the temporary arrays to ~150 MB).
_MAX_POINT_PAIRS = 1 << 22


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
    # the outer contours masks2segments finds; with `simplify`, each simplified before the join so bridges stay exact
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    parts = [c.reshape(-1, 2) for c in contours]
    if simplify > 0:
        simplified = [cv2.approxPolyDP(c, simplify, True).reshape(-1, 2) for c in contours]
        parts = [p for p in simplified if len(p) >= 3] or parts
    if not parts:
        return np.zeros((0, 2), np.float32)
    return join_parts(parts).astype(np.float32)


def join_parts(parts: list[np.ndarray]) -> np.ndarray:
    """Closed outlines (each Kx2 integer (x, y) pixels, in findContours' order) -> one polygon through all of them.

    The same points in the same order as ultralytics' `merge_multi_segment` (concatenated, as `masks2segments` does):
    consecutive parts are linked at their closest pair of points (the first such pair in row-major order); the walk
    goes forward through every part and comes back along the middle ones, so the bridges have zero width.

    Written here because ultralytics' version loops in Python over the parts, several numpy calls per part: a speckled
    mask (a fence, foliage, or any mask of an untrained model) has thousands of parts and took 0.12 s per mask there,
    ~0.025 s here. The result is identical (`tests/annotate/test_polygons.py` compares them).
    """
    parts = [np.asarray(p).reshape(-1, 2) for p in parts]
    if len(parts) == 1:
        return parts[0]
    sizes = np.array([len(p) for p in parts], dtype=np.int64)
    offsets = np.cumsum(sizes) - sizes
    points = np.concatenate(parts)
    to_next, from_previous = _closest_point_pairs(points.astype(np.int64), sizes, offsets)
    last = len(parts) - 1
    middle = np.arange(1, last)
    # Each part is walked from its entry point for t = t0..t1 steps: point (entry + direction * t) mod size. Middle
    # parts run from the point nearest the previous part to the one nearest the next, the short way by index, and
    # the rest of their loop on the way back; the first and last parts are walked whole, closed.
    entry = np.concatenate([to_next[:1], from_previous])
    exits = to_next[1:]
    direction = np.ones(len(parts), dtype=np.int64)
    direction[middle] = np.where(entry[middle] > exits, -1, 1)
    span = np.abs(exits - entry[middle])
    piece_part = np.concatenate([np.arange(len(parts)), middle[::-1]])  # forward pass, then back along the middle
    t0 = np.concatenate([np.zeros(len(parts), np.int64), span[::-1]])
    t1 = np.concatenate([sizes[:1], span, sizes[last:], sizes[middle][::-1]])
    counts = t1 - t0 + 1
    part = np.repeat(piece_part, counts)
    t = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts - t0, counts)
    return points[offsets[part] + (entry[part] + direction[part] * t) % sizes[part]]


def _closest_point_pairs(points: np.ndarray, sizes: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For parts i and i+1 of `points` (int64): index in i and index in i+1 of their first closest pair."""
    pair_sizes = sizes[:-1] * sizes[1:]
    cumulative = np.cumsum(pair_sizes)
    in_first = np.empty(len(pair_sizes), dtype=np.int64)
    in_second = np.empty(len(pair_sizes), dtype=np.int64)
    start = 0
    while start < len(pair_sizes):  # consecutive pairs whose distance matrices fit the budget (at least one)
        done = cumulative[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(cumulative, done + _MAX_POINT_PAIRS, side="right")))
        counts = pair_sizes[start:stop]
        begins = np.cumsum(counts) - counts
        pair = np.repeat(np.arange(start, stop), counts)
        flat = np.arange(int(counts.sum())) - np.repeat(begins, counts)
        width = sizes[pair + 1]
        a, b = flat // width, flat % width
        delta = points[offsets[pair] + a] - points[offsets[pair + 1] + b]
        distance = (delta * delta).sum(axis=1)  # integer: ties are exact, and the first one wins as in np.argmin
        hits = np.flatnonzero(distance == np.repeat(np.minimum.reduceat(distance, begins), counts))
        first_hit = hits[np.r_[True, pair[hits][1:] != pair[hits][:-1]]]
        in_first[start:stop], in_second[start:stop] = a[first_hit], b[first_hit]
        start = stop
    return in_first, in_second


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
