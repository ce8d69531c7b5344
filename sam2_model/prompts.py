"""Prompts as SAM 2 takes them, shared by the image and video predictors: clicks, their labels, boxes and masks.

Checks are pure functions from whatever the caller passed (lists, numpy arrays, tensors) to validated numpy arrays;
each error names what was expected. Two value objects carry a call's prompts: `Prompt` in the caller's frame (pixels,
or [0, 1] with normalize_coords=False), `PromptTensors` in the model's input frame, ready for the network.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F
from numpy.typing import ArrayLike

from .transforms import coords_to_model_frame

# What callers may pass as points, labels, boxes or masks: lists, numpy arrays, torch tensors (any device)
PromptInput = ArrayLike | torch.Tensor

# Labels a point may carry: 1 foreground click, 0 background click; Meta's predictors also pass -1 (padding) and
# 2/3 (the top-left and bottom-right corners of a box) through the same channel, so code written for them can too.
POINT_LABELS = (-1, 0, 1, 2, 3)


def as_numpy(values: Any, dtype: type) -> npt.NDArray[Any]:
    """A list, numpy array or torch tensor (any device) -> a new, writable numpy array of `dtype` (prompts are small;
    a copy spares torch's warning on read-only buffers)."""
    if hasattr(values, "detach"):  # a torch tensor: numpy cannot read one that lives on a GPU
        values = values.detach().cpu().numpy()
    try:
        return np.array(values, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise ValueError(f"Expected numbers, got {values!r:.80}.") from error


def as_point_prompt(points: Any, labels: Any) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
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


def as_boxes(box: Any) -> npt.NDArray[np.float32]:
    """A box (4,) or B boxes (Bx4), xyxy -> Bx4 float32. Raises ValueError for another shape or NaN/inf values."""
    boxes = as_numpy(box, np.float32)
    if boxes.shape[-1:] != (4,) or boxes.ndim > 2:
        raise ValueError(f"box must be xyxy pixels, shape (4,) or Bx4, got shape {boxes.shape}.")
    if not np.isfinite(boxes).all():
        raise ValueError("box contains NaN or infinite values; give finite xyxy pixel coordinates.")
    return boxes.reshape(-1, 4)


def warn_if_off_image(
    points: npt.NDArray[np.float32] | None,
    boxes: npt.NDArray[np.float32] | None,
    size_wh: tuple[int, int],
    normalized: bool = False,
    stacklevel: int = 2,
) -> None:
    """Warn (UserWarning) when all the points, or a whole box, lie outside the image: SAM 2 still returns masks
    for them, but they are almost always a mistake (swapped x and y, another image's coordinates).

    points: ...x2 (x, y); boxes: ...x4 xyxy; in pixels of a `size_wh` (width, height) image, or in [0, 1] when
    `normalized`. `stacklevel` 1 points the warning at the caller of this function (make it the user's code)."""
    width, height = (1.0, 1.0) if normalized else (float(size_wh[0]), float(size_wh[1]))
    frame = f"the {size_wh[0]}x{size_wh[1]} image" if not normalized else "the image ([0, 1] coordinates)"
    if points is not None and points.size:
        xy = points.reshape(-1, 2)
        inside = (xy[:, 0] >= 0) & (xy[:, 0] <= width) & (xy[:, 1] >= 0) & (xy[:, 1] <= height)
        if not inside.any():
            warnings.warn(
                f"Every point lies outside {frame}: check the coordinates (x, y).", UserWarning, stacklevel + 1
            )
    if boxes is not None and boxes.size:
        xyxy = boxes.reshape(-1, 4)
        off = (np.maximum(xyxy[:, 0], xyxy[:, 2]) < 0) | (np.minimum(xyxy[:, 0], xyxy[:, 2]) > width)
        off |= (np.maximum(xyxy[:, 1], xyxy[:, 3]) < 0) | (np.minimum(xyxy[:, 1], xyxy[:, 3]) > height)
        if off.any():
            warnings.warn(
                f"A box lies entirely outside {frame}: check its coordinates (xyxy).", UserWarning, stacklevel + 1
            )


def mask_to_model_frame(mask: Any, size: int, device: torch.device) -> torch.Tensor:
    """A mask prompt (HxW, any size; any nonzero value is the object) -> 1x1xSxS float32 0/1 on `device`, resized
    as Meta's video predictor does (bilinear, antialiased, then >= 0.5). Raises ValueError for another shape."""
    mask_tensor = torch.from_numpy(as_numpy(mask, np.float32)) != 0
    if mask_tensor.dim() != 2:
        raise ValueError(f"mask must be HxW, got shape {tuple(mask_tensor.shape)}.")
    mask_inputs = mask_tensor[None, None].float().to(device)
    if mask_inputs.shape[-2:] != (size, size):
        resized = F.interpolate(mask_inputs, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        mask_inputs = (resized >= 0.5).float()
    return mask_inputs


@dataclass(frozen=True)
class PromptTensors:
    """One call's prompts for B objects in the model's input frame (SxS, S = the model's image size), on its device.

    points: BxNx2 float32 (x, y) and labels: BxN int32 (1 foreground, 0 background, 2/3 box corners, -1 padding),
    both or neither; boxes: Bx2x2 float32 ((x0, y0), (x1, y1)) or None; masks: Bx1xMxM float32 low-res logits
    (M = 4x the image embedding's side, 256 for S = 1024), 1x1xMxM shared by every object, or None.
    `len()` is B (1 with no points, boxes or per-object masks).
    """

    points: torch.Tensor | None = None
    labels: torch.Tensor | None = None
    boxes: torch.Tensor | None = None
    masks: torch.Tensor | None = None

    def __len__(self) -> int:
        per_object = [t for t in (self.points, self.boxes, self.masks) if t is not None]
        return max((t.shape[0] for t in per_object), default=1)

    def rows(self, part: slice) -> PromptTensors:
        """The prompts of objects `part` (a shared 1x1xMxM mask stays shared)."""
        shared = self.masks is not None and self.masks.shape[0] == 1
        points, labels, boxes = (None if t is None else t[part] for t in (self.points, self.labels, self.boxes))
        return PromptTensors(points, labels, boxes, self.masks if shared or self.masks is None else self.masks[part])

    def with_box_corners(self) -> PromptTensors:
        """Boxes folded into the points as two corner clicks labelled 2 and 3, before the clicks (how SAM 2's prompt
        encoder and tracker take boxes); boxes is None afterwards."""
        if self.boxes is None:
            return self
        corners = torch.tensor([[2, 3]], dtype=torch.int, device=self.boxes.device).repeat(self.boxes.shape[0], 1)
        if self.points is None or self.labels is None:
            return replace(self, points=self.boxes, labels=corners, boxes=None)
        points, labels = torch.cat([self.boxes, self.points], dim=1), torch.cat([corners, self.labels], dim=1)
        return replace(self, points=points, labels=labels, boxes=None)

    def point_inputs(self) -> dict[str, torch.Tensor]:
        """Clicks and box corners in the dict layout the video tracker reads ({"point_coords", "point_labels"})."""
        folded = self.with_box_corners()
        if folded.points is None or folded.labels is None:
            raise ValueError("These prompts hold no points or boxes; the tracker needs at least one click or a box.")
        return {"point_coords": folded.points, "point_labels": folded.labels}


@dataclass(frozen=True)
class Prompt:
    """One call's prompts for B objects on one image, checked, in the caller's frame.

    points: BxNx2 float32 (x, y) and labels: BxN int32 (values of `POINT_LABELS`), both or neither; boxes: Bx4 float32
    xyxy or None; mask_input: Bx1xMxM float32 low-res logits (an earlier prediction's), B = 1 shared by every
    object, or None. Coordinates are pixels of the image when `pixels` (Meta's normalize_coords=True), else fractions
    of its width and height. Raises ValueError when points and boxes (and per-object masks) count different objects.
    """

    points: npt.NDArray[np.float32] | None = None
    labels: npt.NDArray[np.int32] | None = None
    boxes: npt.NDArray[np.float32] | None = None
    mask_input: npt.NDArray[np.float32] | None = None
    pixels: bool = True

    def __post_init__(self) -> None:
        if (self.points is None) != (self.labels is None):
            raise ValueError("Clicks need both points and labels (Nx2 (x, y) and N labels), or neither.")
        masks = self.mask_input
        counts = {len(a) for a in (self.points, self.boxes) if a is not None}
        if masks is not None and len(masks) > 1:
            counts.add(len(masks))
        if len(counts) > 1:
            raise ValueError(
                f"Prompts for different numbers of objects: points for {_rows(self.points)}, boxes for "
                f"{_rows(self.boxes)}, masks for {_rows(masks)}. Give one entry per object in each."
            )

    @classmethod
    def from_predict(
        cls, point_coords: Any, point_labels: Any, box: Any, mask_input: Any, normalize_coords: bool, mask_side: int
    ) -> Prompt:
        """Meta's `SAM2ImagePredictor.predict` prompts, checked (`mask_side`: M, the side of low-res logits)."""
        points = labels = boxes = masks = None
        if point_coords is not None or point_labels is not None:
            if point_coords is None or point_labels is None:
                raise ValueError("point_coords and point_labels go together: give both (Nx2 (x, y) and N labels).")
            points, labels = as_point_prompt(point_coords, point_labels)
        if box is not None:
            boxes = as_boxes(box)
        if mask_input is not None:
            masks = as_numpy(mask_input, np.float32)
            masks = masks[None] if masks.ndim == 3 else masks
            if masks.ndim != 4 or masks.shape[1:] != (1, mask_side, mask_side):
                raise ValueError(
                    f"mask_input must be 1x{mask_side}x{mask_side} low-res logits (the third output of predict), "
                    f"or Bx1x{mask_side}x{mask_side}; got shape {np.shape(mask_input)}."
                )
        return cls(points, labels, boxes, masks, pixels=normalize_coords)

    @classmethod
    def for_one_object(
        cls, points: Any, labels: Any, box: Any, clear_old_points: bool, normalize_coords: bool
    ) -> Prompt:
        """Meta's `SAM2VideoPredictor.add_new_points_or_box` prompts for one object, checked: N clicks and/or one box
        (a box replaces the frame's earlier clicks, so it needs clear_old_points=True)."""
        if (points is not None) != (labels is not None):
            raise ValueError("points and labels go together: give both (Nx2 (x, y) and N labels) or neither.")
        if points is None and box is None:
            raise ValueError("Give at least one prompt: points with labels, or a box.")
        coords, point_labels = (None, None) if points is None else as_point_prompt(points, labels)
        if coords is not None and coords.shape[0] != 1:
            raise ValueError(f"points must be Nx2 (x, y) for one object, got shape {coords.shape}.")
        boxes = None
        if box is not None:
            if not clear_old_points:
                raise ValueError(
                    "A box must come before any click on a frame: use clear_old_points=True with a box "
                    "(then add clicks with clear_old_points=False)."
                )
            boxes = as_boxes(box)
            if len(boxes) != 1:
                raise ValueError(f"Give one box (xyxy) per call, got {len(boxes)}.")
        return cls(coords, point_labels, boxes, pixels=normalize_coords)

    def clicks(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int32]]:
        """The first object's clicks (labels below 2: no box corners) -> (Kx2 float32 (x, y), K int32 labels)."""
        if self.points is None or self.labels is None:
            return np.zeros((0, 2), np.float32), np.zeros(0, np.int32)
        keep = self.labels[0] < 2
        return self.points[0][keep], self.labels[0][keep]

    def warn_if_off_image(self, size_wh: tuple[int, int], stacklevel: int) -> None:
        """`warn_if_off_image` on these clicks (box corners left out) and boxes, for an image of `size_wh` pixels;
        `stacklevel` 1 points at the caller of this method."""
        clicks = None if self.points is None or self.labels is None else self.points[self.labels < 2]
        warn_if_off_image(clicks, self.boxes, size_wh, normalized=not self.pixels, stacklevel=stacklevel + 1)

    def to_model_frame(self, orig_hw: tuple[int, int], size: int, device: torch.device) -> PromptTensors:
        """These prompts in the SxS input frame of the model, on `device`, for an image of `orig_hw` (h, w) pixels."""

        def scaled(coords: npt.NDArray[np.float32] | None) -> torch.Tensor | None:
            if coords is None:
                return None
            return coords_to_model_frame(torch.from_numpy(coords).to(device), orig_hw, size, self.pixels)

        return PromptTensors(
            points=scaled(self.points),
            labels=None if self.labels is None else torch.from_numpy(self.labels).to(device),
            boxes=scaled(None if self.boxes is None else self.boxes.reshape(-1, 2, 2)),
            masks=None if self.mask_input is None else torch.from_numpy(self.mask_input).to(device),
        )


def _rows(values: npt.NDArray[Any] | None) -> int:
    return 1 if values is None else len(values)
