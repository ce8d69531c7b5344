"""Refining a stored mask with SAM 2: the mask becomes Meta's ``mask_input`` prompt, the user's clicks are added;
and a new instance from clicks or a box (`prompt_mask`).

SAM 2's ``mask_input`` is a 1xMxM logit map (M = 4 x the image embedding's side: 256 for a 1024 model) in the
model's stretched input frame, what an earlier `predict` returned as its third output. A dataset stores binary masks,
not logits, so a stored mask is turned into logits the way Meta's video predictor turns a mask prompt into its
output (`SAM2Base._use_mask_as_output`): resized to MxM (bilinear, antialiased), then scaled to [-10, 10]
(x 20 - 10). After one refinement the instance keeps the logits SAM 2 returned, and the next click uses those, as
in Meta's interactive loop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from sam2_model import ImagePredictor

from .dataset_items import Annotation

# Meta's scale and bias from a binary mask to logits (sigmoid_scale_for_mem_enc, sigmoid_bias_for_mem_enc)
MASK_LOGIT_SCALE = 20.0
MASK_LOGIT_BIAS = -10.0


def mask_side(predictor: ImagePredictor) -> int:
    """M, the side of the low-res logits `predictor`'s model takes as ``mask_input`` (256 for a 1024 input)."""
    return 4 * int(predictor.model.net.sam_image_embedding_size)


def mask_to_mask_input(mask: np.ndarray, side: int) -> np.ndarray:
    """HxW bool mask (any size) -> 1 x side x side float32 logits in [-10, 10]: ``mask_input`` for `predict`.

    The mask is stretched to the square frame as SAM 2 stretches the image (no letterbox), bilinear with antialias
    (Meta's `_use_mask_as_output`), so a pixel's logit is +10 inside, -10 outside, in between on the edge."""
    mask = np.asarray(mask)
    if mask.ndim != 2 or mask.size == 0:
        raise ValueError(f"Expected an HxW mask, got shape {mask.shape}.")
    if side < 1:
        raise ValueError(f"side must be >= 1, got {side}.")
    tensor = torch.from_numpy(mask.astype(np.float32))[None, None]
    resized = F.interpolate(tensor, size=(side, side), mode="bilinear", align_corners=False, antialias=True)
    return (resized[0] * MASK_LOGIT_SCALE + MASK_LOGIT_BIAS).numpy().astype(np.float32)


@dataclass(frozen=True)
class Refinement:
    """What one refinement gives: mask, HxW bool at the image's size; iou, SAM 2's predicted IoU; low_res_logits,
    1xMxM float32 (the next refinement's ``mask_input``)."""

    mask: np.ndarray
    iou: float
    low_res_logits: np.ndarray


def refine_mask(
    predictor: ImagePredictor,
    image: np.ndarray,
    mask_input: np.ndarray,
    point_coords: Any = None,
    point_labels: Any = None,
) -> Refinement:
    """One SAM 2 call on `image` (HxWx3 uint8 RGB) with `mask_input` (1xMxM logits, `mask_to_mask_input` or an
    earlier `Refinement.low_res_logits`) and clicks (Nx2 (x, y) pixels, N labels: 1 add, 0 remove); one mask out
    (``multimask_output=False``: the mask prompt already says which object). The embedding comes from the model's
    cache when the image was set before."""
    predictor.set_image(image)
    masks, ious, low_res = predictor.predict(
        point_coords=None if point_coords is None else np.asarray(point_coords, np.float32),
        point_labels=None if point_labels is None else np.asarray(point_labels, np.int32),
        mask_input=mask_input,
        multimask_output=False,
    )
    return Refinement(masks[0] > 0, float(ious[0]), low_res[:1].astype(np.float32))


def prompt_mask(
    predictor: ImagePredictor,
    image: np.ndarray,
    point_coords: Any = None,
    point_labels: Any = None,
    box: Any = None,
    multimask_output: bool = False,
) -> Refinement:
    """One SAM 2 call on `image` (HxWx3 uint8 RGB) for a new object: clicks (Nx2 (x, y) pixels, N labels: 1 add, 0
    remove) and/or a box ((4,) xyxy pixels). One mask out; with `multimask_output` SAM 2 proposes three and the one
    with the highest predicted IoU is kept (Meta's advice for an ambiguous single click). ValueError without a
    prompt."""
    if point_coords is None and box is None:
        raise ValueError("Give clicks (point_coords with point_labels) or a box (x0, y0, x1, y1) to segment.")
    predictor.set_image(image)
    masks, ious, low_res = predictor.predict(
        point_coords=None if point_coords is None else np.asarray(point_coords, np.float32),
        point_labels=None if point_labels is None else np.asarray(point_labels, np.int32),
        box=None if box is None else np.asarray(box, np.float32),
        multimask_output=multimask_output,
    )
    if masks.ndim != 3:
        raise ValueError(f"Give one object's prompt (one box, Nx2 clicks), got masks of shape {masks.shape}.")
    best = int(np.argmax(ious))
    return Refinement(masks[best] > 0, float(ious[best]), low_res[best : best + 1].astype(np.float32))


def refined_instance(
    predictor: ImagePredictor, image: np.ndarray, old: Annotation, point_coords: Any = None, point_labels: Any = None
) -> Annotation:
    """`old` refined by SAM 2 on its HxWx3 uint8 RGB `image`: its last refinement's logits (else its mask) as
    ``mask_input`` plus the clicks (Nx2 (x, y) image pixels, N labels: 1 add, 0 remove). Class, score and track are
    kept; SAM 2's logits and predicted IoU come with the new mask. ValueError when the result is empty."""
    prompt = old.low_res_logits
    if prompt is None:
        prompt = mask_to_mask_input(old.mask, mask_side(predictor))
    result = refine_mask(predictor, image, prompt, point_coords, point_labels)
    if not result.mask.any():
        raise ValueError("The refined mask is empty: delete the instance instead, or click elsewhere.")
    return Annotation.from_mask(result.mask, old.class_id, old.class_name, old.score, old.track_id,
                                result.low_res_logits, result.iou)  # fmt: skip


def prompted_instance(
    predictor: ImagePredictor,
    image: np.ndarray,
    class_id: int,
    class_name: str,
    point_coords: Any = None,
    point_labels: Any = None,
    box: Any = None,
    multimask_output: bool = False,
) -> Annotation:
    """A new instance of class `class_id` (`class_name`) from SAM 2 on the HxWx3 uint8 RGB `image`, prompted by
    clicks and/or a box ((4,) xyxy image pixels), with SAM 2's logits and predicted IoU. ValueError when SAM 2
    finds nothing there."""
    result = prompt_mask(predictor, image, point_coords, point_labels, box, multimask_output)
    if not result.mask.any():
        raise ValueError("SAM 2 found nothing for this prompt: click on the object or redraw the box.")
    return Annotation.from_mask(result.mask, class_id, class_name, low_res_logits=result.low_res_logits,
                                sam2_iou=result.iou)  # fmt: skip
