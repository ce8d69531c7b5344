"""`AutomaticMaskGenerator`: segment everything in an image, with Meta's options and output modes.

A grid of single-click prompts (optionally over several crop layers) goes through the shared `ImagePredictor`; masks
are filtered by predicted IoU and stability, de-duplicated by box NMS, and returned as Meta's records. The grid and
crop geometry come from ultralytics' SAM helpers (`ultralytics.models.sam.amg`, reached through `ultralytics_adapter`),
NMS from torchvision.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torchvision.ops.boxes import batched_nms, box_area

from .chunk_sizes import chunk_sizes
from .embedding_cache import ImageFeatures
from .image_predictor import ImagePredictor, decode_prompts
from .model import Sam2Model
from .prompts import PromptTensors
from .rle import mask_to_uncompressed_rle, masks_to_rles, rle_area, rle_to_mask
from .transforms import coords_to_model_frame, masks_to_image_frame, to_rgb_uint8
from .ultralytics_adapter import (
    batched_mask_to_box,
    build_all_layer_point_grids,
    calculate_stability_score,
    generate_crop_boxes,
    is_box_near_crop_edge,
    uncrop_boxes_xyxy,
    uncrop_masks,
    uncrop_points,
)

OUTPUT_MODES = ("binary_mask", "uncompressed_rle", "coco_rle")


@dataclass
class _Candidates:
    """Masks kept so far, one row per mask (boxes xyxy in original-image pixels, points (x, y) pixels)."""

    rles: list[dict[str, Any]]
    boxes: torch.Tensor
    iou_preds: torch.Tensor
    stability: torch.Tensor
    points: torch.Tensor
    crop_boxes: torch.Tensor

    @classmethod
    def empty(cls) -> _Candidates:
        zeros = torch.zeros
        return cls([], zeros(0, 4), zeros(0), zeros(0), zeros(0, 2), zeros(0, 4))

    def filter(self, keep: torch.Tensor) -> _Candidates:
        index = torch.as_tensor(keep).cpu()
        if index.dtype == torch.bool:
            index = index.nonzero().flatten()
        tensors = {f.name: getattr(self, f.name)[index] for f in fields(self) if f.name != "rles"}
        return _Candidates(rles=[self.rles[int(i)] for i in index], **tensors)

    @staticmethod
    def cat(parts: list[_Candidates]) -> _Candidates:
        if not parts:
            return _Candidates.empty()
        tensors = {
            f.name: torch.cat([getattr(p, f.name) for p in parts]) for f in fields(_Candidates) if f.name != "rles"
        }
        return _Candidates(rles=[r for p in parts for r in p.rles], **tensors)


class _BatchCounter:
    """Batches of grid points done, reported to an optional `progress(done, total)`."""

    def __init__(self, total: int, progress: Callable[[int, int], None] | None) -> None:
        self.done, self.total, self.progress = 0, total, progress

    def step(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


class AutomaticMaskGenerator:
    """Generate masks for a whole image from a grid of point prompts (Meta's `SAM2AutomaticMaskGenerator` options).

    Args:
        model: the shared `Sam2Model` (or anything `load_model` accepts).
        points_per_side: grid points along one side (None when `point_grids` is given).
        points_per_batch: points decoded per mask-decoder call (memory vs speed).
        pred_iou_thresh: keep masks whose predicted IoU is above this.
        stability_score_thresh: keep masks whose stability under threshold shifts is at least this.
        stability_score_offset: logit shift used by the stability score.
        mask_threshold: logit threshold of a foreground pixel.
        box_nms_thresh: box IoU above which duplicate masks are dropped (within a crop).
        crop_n_layers: extra layers of overlapping crops (0 = whole image only).
        crop_nms_thresh: box IoU for dropping duplicates between crops.
        crop_overlap_ratio: overlap of neighbouring crops, as a fraction of the crop side.
        crop_n_points_downscale_factor: points per side shrink by this factor at each crop layer.
        point_grids: explicit grids, one Nx2 array of (x, y) in [0, 1] per layer.
        min_mask_region_area: fill holes and remove specks up to this many low-res (256x256) pixels (0 = off).
        output_mode: "binary_mask" (HxW bool), "uncompressed_rle" or "coco_rle" (pycocotools).
        use_m2m: refine each mask by feeding its logits back as a mask prompt (one extra decoder pass).
        multimask_output: three candidates per point (Meta's default) or one.
    """

    def __init__(
        self,
        model: Sam2Model | str | Path,
        points_per_side: int | None = 32,
        points_per_batch: int = 64,
        pred_iou_thresh: float = 0.8,
        stability_score_thresh: float = 0.95,
        stability_score_offset: float = 1.0,
        mask_threshold: float = 0.0,
        box_nms_thresh: float = 0.7,
        crop_n_layers: int = 0,
        crop_nms_thresh: float = 0.7,
        crop_overlap_ratio: float = 512 / 1500,
        crop_n_points_downscale_factor: int = 1,
        point_grids: list[np.ndarray] | None = None,
        min_mask_region_area: int = 0,
        output_mode: str = "binary_mask",
        use_m2m: bool = False,
        multimask_output: bool = True,
    ) -> None:
        if (points_per_side is None) == (point_grids is None):
            raise ValueError("Give exactly one of points_per_side and point_grids.")
        if output_mode not in OUTPUT_MODES:
            raise ValueError(f"output_mode must be one of {OUTPUT_MODES}, got {output_mode!r}.")
        if points_per_batch < 1:
            raise ValueError(f"points_per_batch must be >= 1, got {points_per_batch}.")
        if points_per_side is not None:
            grids = build_all_layer_point_grids(points_per_side, crop_n_layers, crop_n_points_downscale_factor)
        elif point_grids is not None and len(point_grids) == crop_n_layers + 1:
            grids = point_grids
        else:
            raise ValueError(
                f"point_grids needs {crop_n_layers + 1} grids (crop_n_layers + 1), got {len(point_grids or [])}."
            )
        self.point_grids = [np.asarray(grid, dtype=np.float32) for grid in grids]
        # As in Meta's SAM 2 generator, small regions are cleaned on the low-res logits by the predictor (Meta runs
        # this in a CUDA kernel and skips it on the CPU; ours runs on every device).
        self.predictor = ImagePredictor(
            model,
            mask_threshold=mask_threshold,
            max_hole_area=min_mask_region_area,
            max_sprinkle_area=min_mask_region_area,
        )
        self.points_per_batch = points_per_batch
        self.pred_iou_thresh = pred_iou_thresh
        self.stability_score_thresh = stability_score_thresh
        self.stability_score_offset = stability_score_offset
        self.mask_threshold = mask_threshold
        self.box_nms_thresh = box_nms_thresh
        self.crop_n_layers = crop_n_layers
        self.crop_nms_thresh = crop_nms_thresh
        self.crop_overlap_ratio = crop_overlap_ratio
        self.min_mask_region_area = min_mask_region_area
        self.output_mode = output_mode
        self.use_m2m = use_m2m
        self.multimask_output = multimask_output

    def generate(self, image: np.ndarray, progress: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
        """Segment everything in an HxWx3 uint8 RGB image; `progress(done, total)` is called after each batch of
        grid points (`points_per_batch`), over every crop, so a caller can show how far it has got.

        Returns one record per mask, as Meta's generator: ``segmentation`` (HxW bool, or an RLE dict per
        `output_mode`), ``area`` (pixels), ``bbox`` (xywh pixels), ``predicted_iou``, ``point_coords`` ([[x, y]]
        pixels), ``stability_score`` and ``crop_box`` (xywh pixels).
        """
        image = to_rgb_uint8(image)
        height, width = image.shape[:2]
        crop_boxes, layer_idxs = generate_crop_boxes((height, width), self.crop_n_layers, self.crop_overlap_ratio)
        batches = [-(-len(self.point_grids[layer]) // self.points_per_batch) for layer in layer_idxs]
        counter = _BatchCounter(sum(batches), progress)
        found = _Candidates.cat(
            [self._process_crop(image, box, layer, counter) for box, layer in zip(crop_boxes, layer_idxs, strict=True)]
        )
        if len(crop_boxes) > 1 and found.rles:
            keep = batched_nms(
                found.boxes.float(), 1 / box_area(found.crop_boxes), torch.zeros(len(found.rles)), self.crop_nms_thresh
            )
            found = found.filter(keep)
        return [self._record(found, i) for i in range(len(found.rles))]

    def _record(self, found: _Candidates, i: int) -> dict[str, Any]:
        rle = found.rles[i]  # compressed: what "coco_rle" returns
        if self.output_mode == "binary_mask":
            segmentation: Any = rle_to_mask(rle)
        elif self.output_mode == "uncompressed_rle":
            segmentation = mask_to_uncompressed_rle(rle_to_mask(rle))
        else:
            segmentation = rle
        x0, y0, x1, y1 = found.boxes[i].tolist()
        cx0, cy0, cx1, cy1 = found.crop_boxes[i].tolist()
        return {
            "segmentation": segmentation,
            "area": rle_area(rle),
            "bbox": [x0, y0, x1 - x0, y1 - y0],
            "predicted_iou": float(found.iou_preds[i]),
            "point_coords": [found.points[i].tolist()],
            "stability_score": float(found.stability[i]),
            "crop_box": [cx0, cy0, cx1 - cx0, cy1 - cy0],
        }

    def _process_crop(
        self, image: np.ndarray, crop_box: list[int], layer: int, counter: _BatchCounter | None = None
    ) -> _Candidates:
        x0, y0, x1, y1 = crop_box
        crop = image[y0:y1, x0:x1]
        crop_hw = crop.shape[:2]
        self.predictor.set_image(crop)
        features = self.predictor.image_features
        points = self.point_grids[layer] * np.array(crop_hw[::-1], dtype=np.float32)[None]
        parts = []
        for start in range(0, len(points), self.points_per_batch):
            batch = points[start : start + self.points_per_batch]
            parts.append(self._process_batch(features, batch, crop_box, image.shape[:2]))
            if counter is not None:
                counter.step()
        self.predictor.reset_predictor()
        found = _Candidates.cat(parts)
        if found.rles:
            keep = batched_nms(found.boxes.float(), found.iou_preds, torch.zeros(len(found.rles)), self.box_nms_thresh)
            found = found.filter(keep)
        found.boxes = uncrop_boxes_xyxy(found.boxes, crop_box)
        found.points = uncrop_points(found.points, crop_box)
        found.crop_boxes = torch.tensor([crop_box] * len(found.rles), dtype=torch.float32).reshape(-1, 4)
        return found

    def _decode(
        self, features: ImageFeatures, points_px: torch.Tensor, mask_input: torch.Tensor | None, multimask: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Single-click prompts (Nx2 pixels of the crop) -> (N*C x256x256 low-res logits as decoded, N*C iou)."""
        model = self.predictor.model
        model_points = coords_to_model_frame(points_px, features.orig_hw, model.image_size)[:, None]
        labels = torch.ones(len(points_px), 1, dtype=torch.int, device=points_px.device)
        prompt = PromptTensors(points=model_points, labels=labels, masks=mask_input)
        step = chunk_sizes(model.device).prompts_per_call  # bounded decoder memory (sam2_model.chunk_sizes)
        outputs = [
            decode_prompts(model, features, prompt.rows(slice(i, i + step)), multimask)
            for i in range(0, len(points_px), step)
        ]
        low_res, iou = torch.cat([o[0] for o in outputs]), torch.cat([o[1] for o in outputs])
        return low_res.flatten(0, 1), iou.flatten(0, 1)

    def _process_batch(
        self, features: ImageFeatures, points: np.ndarray, crop_box: list[int], orig_hw: tuple[int, int]
    ) -> _Candidates:
        """One batch of grid points -> the masks that pass the filters, as compact candidates.

        The decoder's low-res output is small; the full-size logits are not (points_per_batch x 3 masks of the
        crop's size, 9 GB for 64 points on a 12-megapixel photo), so they are made and filtered a chunk at a time,
        at most `chunk_sizes(device).postprocess_bytes` at once. Each mask is processed alone, so chunks change no
        result."""
        points_px = torch.as_tensor(points, dtype=torch.float32, device=self.predictor.device)
        low_res, iou = self._decode(features, points_px, None, self.multimask_output)
        points_px = points_px.repeat_interleave(len(iou) // len(points_px), dim=0)
        if self.use_m2m:
            # Meta feeds back the clamped low-res logits its predictor returns
            low_res, iou = self._decode(features, points_px, low_res.clamp(-32.0, 32.0)[:, None], multimask=False)
        crop_h, crop_w = features.orig_hw
        largest = max(crop_h * crop_w, orig_hw[0] * orig_hw[1])
        chunk = chunk_sizes(self.predictor.device).masks_per_chunk(largest, 1)
        return _Candidates.cat(
            [
                self._filter(
                    low_res[i : i + chunk], iou[i : i + chunk], points_px[i : i + chunk], features, crop_box, orig_hw
                )
                for i in range(0, len(iou), chunk)
            ]
        )

    def _filter(
        self,
        low_res: torch.Tensor,
        iou: torch.Tensor,
        points_px: torch.Tensor,
        features: ImageFeatures,
        crop_box: list[int],
        orig_hw: tuple[int, int],
    ) -> _Candidates:
        """Masks at the crop's size (Meta's predictor: from the low-res logits after hole and speck filling), kept
        by predicted IoU, stability and distance from the crop's edge; stored as compressed RLE."""
        logits = masks_to_image_frame(self.predictor.fill_small_regions(low_res[:, None]), features.orig_hw)[:, 0]
        keep = torch.ones(len(iou), dtype=torch.bool, device=iou.device)
        if self.pred_iou_thresh > 0.0:
            keep &= iou > self.pred_iou_thresh
        stability = calculate_stability_score(logits, self.mask_threshold, self.stability_score_offset)
        if self.stability_score_thresh > 0.0:
            keep &= stability >= self.stability_score_thresh
        masks = logits[keep] > self.mask_threshold
        del logits
        iou, stability, points_px = iou[keep], stability[keep], points_px[keep]
        boxes = batched_mask_to_box(masks)
        orig_h, orig_w = orig_hw
        away_from_edge = ~is_box_near_crop_edge(boxes, crop_box, [0, 0, orig_w, orig_h])
        masks, boxes = masks[away_from_edge], boxes[away_from_edge]
        masks = uncrop_masks(masks, crop_box, orig_h, orig_w)
        rles = masks_to_rles(masks.cpu().numpy())
        return _Candidates(
            rles=rles,
            boxes=boxes.float().cpu(),
            iou_preds=iou[away_from_edge].float().cpu(),
            stability=stability[away_from_edge].float().cpu(),
            points=points_px[away_from_edge].cpu(),
            crop_boxes=torch.zeros(len(rles), 4),
        )
