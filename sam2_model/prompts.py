"""Prompt checks shared by the image and video predictors: clicks, their labels and boxes, as SAM 2 takes them.

Pure functions from whatever the caller passed (lists, numpy arrays, tensors) to validated numpy arrays; each error
names what was expected. Coordinates stay in the caller's frame (pixels, or [0, 1] with normalize_coords=False).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

# Labels a point may carry: 1 foreground click, 0 background click; Meta's predictors also pass -1 (padding) and
# 2/3 (the top-left and bottom-right corners of a box) through the same channel, so code written for them can too.
POINT_LABELS = (-1, 0, 1, 2, 3)


def as_numpy(values: Any, dtype: type) -> np.ndarray:
    """A list, numpy array or torch tensor (any device) -> a new, writable numpy array of `dtype` (prompts are small;
    a copy spares torch's warning on read-only buffers)."""
    if hasattr(values, "detach"):  # a torch tensor: numpy cannot read one that lives on a GPU
        values = values.detach().cpu().numpy()
    try:
        return np.array(values, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Expected numbers, got {values!r:.80}.") from error


def as_point_prompt(points: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """Clicks and their labels -> (BxNx2 float32 (x, y), BxN int32 labels), B = 1 for an Nx2 input.

    points: Nx2 (x, y), or BxNx2 for B objects; labels: N (or BxN) integers, 1 foreground, 0 background.
    Raises ValueError for other shapes, a count mismatch, NaN/inf coordinates or labels that are not integers of
    `POINT_LABELS`.
    """
    coords = as_numpy(points, np.float32)
    label_values = as_numpy(labels, np.float64)
    if coords.ndim == 2:
        coords = coords[None]
        label_values = label_values[None] if label_values.ndim == 1 else label_values
    if coords.ndim != 3 or coords.shape[-1] != 2:
        raise ValueError(f"points must be Nx2 (x, y) pixels (or BxNx2), got shape {np.shape(points)}.")
    if label_values.shape != coords.shape[:2]:
        raise ValueError(
            f"points and labels disagree: points has shape {np.shape(points)} but labels has shape "
            f"{np.shape(labels)}; give one label per point."
        )
    if not np.isfinite(coords).all():
        raise ValueError("points contain NaN or infinite values; give finite (x, y) pixel positions.")
    if not np.isin(label_values, POINT_LABELS).all():
        bad = np.unique(label_values[~np.isin(label_values, POINT_LABELS)])
        raise ValueError(
            f"point labels must be 1 (foreground) or 0 (background), got {bad.tolist()} "
            "(-1, 2 and 3 are accepted as Meta's padding and box-corner labels)."
        )
    return coords, label_values.astype(np.int32)


def as_boxes(box: Any) -> np.ndarray:
    """A box (4,) or B boxes (Bx4), xyxy -> Bx4 float32. Raises ValueError for another shape or NaN/inf values."""
    boxes = as_numpy(box, np.float32)
    if boxes.shape[-1:] != (4,) or boxes.ndim > 2:
        raise ValueError(f"box must be xyxy pixels, shape (4,) or Bx4, got shape {boxes.shape}.")
    if not np.isfinite(boxes).all():
        raise ValueError("box contains NaN or infinite values; give finite xyxy pixel coordinates.")
    return boxes.reshape(-1, 4)


def warn_if_off_image(
    points: np.ndarray | None, boxes: np.ndarray | None, size_wh: tuple[int, int], normalized: bool = False
) -> None:
    """Warn (UserWarning) when all the points, or a whole box, lie outside the image: SAM 2 still returns masks
    for them, but they are almost always a mistake (swapped x and y, another image's coordinates).

    points: ...x2 (x, y); boxes: ...x4 xyxy; in pixels of a `size_wh` (width, height) image, or in [0, 1] when
    `normalized`."""
    width, height = (1.0, 1.0) if normalized else (float(size_wh[0]), float(size_wh[1]))
    frame = f"the {size_wh[0]}x{size_wh[1]} image" if not normalized else "the image ([0, 1] coordinates)"
    if points is not None and points.size:
        xy = points.reshape(-1, 2)
        inside = (xy[:, 0] >= 0) & (xy[:, 0] <= width) & (xy[:, 1] >= 0) & (xy[:, 1] <= height)
        if not inside.any():
            warnings.warn(f"Every point lies outside {frame}: check the coordinates (x, y).", UserWarning, 3)
    if boxes is not None and boxes.size:
        xyxy = boxes.reshape(-1, 4)
        off = (np.maximum(xyxy[:, 0], xyxy[:, 2]) < 0) | (np.minimum(xyxy[:, 0], xyxy[:, 2]) > width)
        off |= (np.maximum(xyxy[:, 1], xyxy[:, 3]) < 0) | (np.minimum(xyxy[:, 1], xyxy[:, 3]) > height)
        if off.any():
            warnings.warn(f"A box lies entirely outside {frame}: check its coordinates (xyxy).", UserWarning, 3)
