"""`ImagePredictor`: Meta's `SAM2ImagePredictor` contract on the shared model, with an embedding cache.

Code written for Meta's predictor runs unchanged: `set_image` then `predict(point_coords, point_labels, box,
mask_input, multimask_output, return_logits, normalize_coords)`, with the same shapes, dtypes and masks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .embedding_cache import ImageFeatures, image_key
from .model import Sam2Model, load_model
from .prompts import as_boxes, as_numpy, as_point_prompt, warn_if_off_image
from .transforms import (
    coords_to_model_frame,
    fill_holes_and_sprinkles,
    images_to_batch,
    masks_to_image_frame,
    to_rgb_uint8,
)
from .ultralytics_adapter import prepare_backbone_features

# Prompts decoded per mask-decoder call. The decoder repeats the image embedding and the high-resolution features
# once per prompt, and its upscaling works at 256x256 per prompt: one call on 64 prompts peaked at +3.6 GB (and took
# longer than four calls on 16), on 16 at +0.7 GB (SAM 2.1 tiny, CPU). Meta decodes all prompts in one call; chunks
# give the same masks in bounded memory.
MAX_PROMPTS_PER_CALL = 16


def encode_images(model: Sam2Model, images: list[np.ndarray]) -> list[ImageFeatures]:
    """Run the image encoder on HxWx3 uint8 RGB images; one `ImageFeatures` per image (Meta's `set_image` math)."""
    with model.inference():
        batch = images_to_batch(images, model.image_size, model.device)
        backbone_out = model.net.forward_image(batch)
        vision_feats, _, feat_sizes = prepare_backbone_features(model.net, backbone_out)
        if model.net.directly_add_no_mem_embed:
            vision_feats[-1] = vision_feats[-1] + model.net.no_mem_embed
        # HWxBxC -> BxCxHxW per level, highest resolution first
        levels = [
            feat.permute(1, 2, 0).reshape(len(images), -1, *size)
            for feat, size in zip(vision_feats, feat_sizes, strict=True)
        ]
    return [
        ImageFeatures(
            image_embed=levels[-1][i : i + 1].clone(),
            high_res_feats=tuple(level[i : i + 1].clone() for level in levels[:-1]),
            orig_hw=(int(image.shape[0]), int(image.shape[1])),
        )
        for i, image in enumerate(images)
    ]


def decode_prompts(
    model: Sam2Model,
    features: ImageFeatures,
    points: torch.Tensor | None,
    labels: torch.Tensor | None,
    boxes: torch.Tensor | None,
    mask_input: torch.Tensor | None,
    multimask_output: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One mask-decoder call for B prompts on one image (Meta's `_predict` math) -> (BxCx256x256 float32 logits,
    BxC float32 predicted IoU), C = 3 with multimask_output else 1.

    points: BxNx2 and labels BxN in the model's input frame (`transforms.coords_to_model_frame`); boxes: Bx2x2 in
    that frame; mask_input: Bx1x256x256 (or 1x1x256x256 shared by all prompts) low-res logits.
    """
    if boxes is not None:
        box_labels = torch.tensor([[2, 3]], dtype=torch.int, device=boxes.device).repeat(boxes.shape[0], 1)
        if points is not None and labels is not None:
            points, labels = torch.cat([boxes, points], dim=1), torch.cat([box_labels, labels], dim=1)
        else:
            points, labels = boxes, box_labels
    net = model.net
    with model.inference():
        sparse, dense = net.sam_prompt_encoder(
            points=None if points is None or labels is None else (points, labels), boxes=None, masks=mask_input
        )
        batched = points is not None and points.shape[0] > 1
        low_res, iou, _, _ = net.sam_mask_decoder(
            image_embeddings=features.image_embed,
            image_pe=net.sam_prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=multimask_output,
            repeat_image=batched,
            high_res_features=list(features.high_res_feats),
        )
    return low_res.float(), iou.float()


class ImagePredictor:
    """Predict masks for one image (or a batch) from clicks, boxes and mask prompts.

    Args:
        model: a `Sam2Model` from `load_model` (or anything `load_model` accepts).
        mask_threshold: logit above which a pixel is foreground (Meta's default 0.0).
        max_hole_area: fill background holes up to this many low-res pixels (0 = off, Meta's default).
        max_sprinkle_area: remove foreground specks up to this many low-res pixels (0 = off, Meta's default).

    One predictor holds one image at a time and is not meant to be shared between threads (like Meta's); create one
    per user or worker. They all share the model and its embedding cache.
    """

    def __init__(
        self,
        model: Sam2Model | str | Path,
        mask_threshold: float = 0.0,
        max_hole_area: float = 0.0,
        max_sprinkle_area: float = 0.0,
    ) -> None:
        self.model = load_model(model)
        self.mask_threshold = float(mask_threshold)
        self.max_hole_area = float(max_hole_area)
        self.max_sprinkle_area = float(max_sprinkle_area)
        self.reset_predictor()

    @property
    def device(self) -> torch.device:
        return self.model.device

    def reset_predictor(self) -> None:
        """Forget the current image(s)."""
        self._features: list[ImageFeatures] = []
        self._is_batch = False

    @property
    def is_image_set(self) -> bool:
        return bool(self._features)

    @property
    def orig_hw(self) -> list[tuple[int, int]]:
        """(height, width) of each image set, in pixels."""
        return [f.orig_hw for f in self._features]

    def set_image(self, image: np.ndarray | Image.Image) -> None:
        """Compute (or fetch from the cache) the embedding of one image.

        Args:
            image: HxWx3 uint8 RGB array or a PIL image; grayscale and RGBA are converted.
        """
        rgb = to_rgb_uint8(image)
        self.reset_predictor()
        self._features = self._embed([rgb])

    def set_image_batch(self, images: list[np.ndarray | Image.Image]) -> None:
        """Compute the embeddings of several images at once, for `predict_batch`."""
        if not isinstance(images, (list, tuple)) or not images:
            raise ValueError("set_image_batch expects a non-empty list of HxWx3 uint8 RGB images.")
        rgbs = [to_rgb_uint8(image) for image in images]
        self.reset_predictor()
        self._features = self._embed(rgbs)
        self._is_batch = True

    def _embed(self, images: list[np.ndarray]) -> list[ImageFeatures]:
        cache = self.model.embedding_cache
        keys = [image_key(image) for image in images]
        found = [cache.get(key) for key in keys]
        missing = [i for i, features in enumerate(found) if features is None]
        if missing:
            computed = encode_images(self.model, [images[i] for i in missing])
            for i, features in zip(missing, computed, strict=True):
                cache.put(keys[i], features)
                found[i] = features
        return found  # type: ignore[return-value]

    @property
    def image_features(self) -> ImageFeatures:
        """The encoder's features of the one image set (for tools built on the predictor, such as the automatic
        mask generator); RuntimeError when none or several are set."""
        return self._single_image("image_features")

    def get_image_embedding(self) -> torch.Tensor:
        """The current image's embedding, 1x256x64x64 (for a 1024 model)."""
        self._require_image("get_image_embedding")
        return self._features[0].image_embed

    def predict(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predict masks for the image set by `set_image`.

        Args:
            point_coords: Nx2 (x, y) in pixels of the original image (BxNx2 for B prompts, one object each).
            point_labels: N labels (BxN): 1 foreground, 0 background.
            box: xyxy in pixels, shape (4,), or Bx4 for B objects (one mask set each).
            mask_input: 1x256x256 low-res logits from an earlier call (Bx1x256x256 for B objects).
            multimask_output: three candidate masks per object (for ambiguous prompts such as one click) or one.
            return_logits: return mask logits instead of 0/1 masks.
            normalize_coords: coordinates are pixels (True) or already normalised to [0, 1] (False).

        Returns:
            masks: CxHxW float32 (0/1, or logits), Bx CxHxW for B>1 objects; HxW is the original image size.
            iou_predictions: (C,) float32 predicted IoU per mask, (B, C) for B objects.
            low_res_masks: Cx256x256 float32 logits clamped to [-32, 32], Bx Cx256x256 for B objects.
        """
        return self._predict_one(
            self._single_image("predict"), point_coords, point_labels, box, mask_input, multimask_output, return_logits,
            normalize_coords,
        )  # fmt: skip

    def predict_batch(
        self,
        point_coords_batch: list[np.ndarray | None] | None = None,
        point_labels_batch: list[np.ndarray | None] | None = None,
        box_batch: list[np.ndarray | None] | None = None,
        mask_input_batch: list[np.ndarray | None] | None = None,
        multimask_output: bool = True,
        return_logits: bool = False,
        normalize_coords: bool = True,
    ) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
        """`predict` for each image set by `set_image_batch`; each argument is a list with one entry per image."""
        self._require_image("predict_batch")
        if not self._is_batch:
            raise RuntimeError("predict_batch needs images set with set_image_batch(...); use predict after set_image.")
        count = len(self._features)
        for name, values in (
            ("point_coords_batch", point_coords_batch),
            ("point_labels_batch", point_labels_batch),
            ("box_batch", box_batch),
            ("mask_input_batch", mask_input_batch),
        ):
            if values is not None and len(values) != count:
                raise ValueError(f"{name} has {len(values)} entries but {count} images are set: give one per image.")
        outputs = [
            self._predict_one(
                features,
                None if point_coords_batch is None else point_coords_batch[i],
                None if point_labels_batch is None else point_labels_batch[i],
                None if box_batch is None else box_batch[i],
                None if mask_input_batch is None else mask_input_batch[i],
                multimask_output,
                return_logits,
                normalize_coords,
            )
            for i, features in enumerate(self._features)
        ]
        masks, ious, low_res = zip(*outputs, strict=True)
        return list(masks), list(ious), list(low_res)

    def _require_image(self, call: str) -> None:
        if not self._features:
            raise RuntimeError(f"An image must be set with .set_image(...) before {call}(...).")

    def _single_image(self, call: str) -> ImageFeatures:
        """The one image `call` works on; an error when none is set, or when set_image_batch set several."""
        self._require_image(call)
        if self._is_batch and len(self._features) > 1:
            raise RuntimeError(
                f"Several images are set (set_image_batch): use predict_batch, or set_image before {call}."
            )
        return self._features[0]

    def predict_low_res(
        self,
        point_coords: np.ndarray | None = None,
        point_labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        mask_input: np.ndarray | None = None,
        multimask_output: bool = True,
        normalize_coords: bool = True,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`predict` without the full-size masks: B x C x256x256 float32 logits (unclamped, with `max_hole_area` and
        `max_sprinkle_area` applied: the logits `predict`'s masks come from) and B x C IoU scores.

        For many objects on large images (a dataset annotator): upsample each mask when it is needed with
        `transforms.low_res_to_mask` instead of holding B x C full-size masks at once. Same prompts as `predict`.
        """
        features = self._single_image("predict_low_res")
        low_res, iou = self._low_res(
            features, point_coords, point_labels, box, mask_input, multimask_output, normalize_coords
        )
        return self.fill_small_regions(low_res), iou

    def _predict_one(
        self,
        features: ImageFeatures,
        point_coords,
        point_labels,
        box,
        mask_input,
        multimask_output: bool,
        return_logits: bool,
        normalize_coords: bool,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        low_res, iou = self._low_res(
            features, point_coords, point_labels, box, mask_input, multimask_output, normalize_coords
        )
        # Meta fills holes and removes specks before upsampling, and returns the low-res logits as they came
        masks = masks_to_image_frame(self.fill_small_regions(low_res), features.orig_hw)
        if not return_logits:
            masks = masks > self.mask_threshold
        low_res = torch.clamp(low_res, -32.0, 32.0)
        squeeze = low_res.shape[0] == 1
        return tuple((t[0] if squeeze else t).float().cpu().numpy() for t in (masks, iou, low_res))  # type: ignore[return-value]

    def _low_res(
        self, features: ImageFeatures, point_coords, point_labels, box, mask_input, multimask_output, normalize_coords
    ) -> tuple[torch.Tensor, torch.Tensor]:
        points, labels, boxes, masks_in = self._prompts_to_tensors(
            features.orig_hw, point_coords, point_labels, box, mask_input, normalize_coords
        )
        prompt_count = max((t.shape[0] for t in (points, boxes, masks_in) if t is not None), default=1)
        shared_mask_in = masks_in if masks_in is not None and masks_in.shape[0] == 1 else None
        chunks = []
        for start in range(0, prompt_count, MAX_PROMPTS_PER_CALL):
            part = slice(start, start + MAX_PROMPTS_PER_CALL)
            chunks.append(
                decode_prompts(
                    self.model,
                    features,
                    None if points is None else points[part],
                    None if labels is None else labels[part],
                    None if boxes is None else boxes[part],
                    shared_mask_in if shared_mask_in is not None or masks_in is None else masks_in[part],
                    multimask_output,
                )
            )
        low_res = chunks[0][0] if len(chunks) == 1 else torch.cat([c[0] for c in chunks])
        iou = chunks[0][1] if len(chunks) == 1 else torch.cat([c[1] for c in chunks])
        return low_res, iou

    def fill_small_regions(self, low_res: torch.Tensor) -> torch.Tensor:
        """Meta's mask post-processing on low-res logits (..., 256, 256): holes up to `max_hole_area` pixels become
        foreground and specks up to `max_sprinkle_area` background (nothing when both are 0, the default)."""
        return fill_holes_and_sprinkles(low_res, self.mask_threshold, self.max_hole_area, self.max_sprinkle_area)

    def _prompts_to_tensors(self, orig_hw, point_coords, point_labels, box, mask_input, normalize_coords):
        """Validate prompts and return (BxNx2 points, BxN labels, Bx2x2 boxes, Bx1x256x256 masks) in the model frame."""
        device, size = self.device, self.model.image_size
        points = labels = boxes = masks_in = None
        if point_coords is not None or point_labels is not None:
            if point_coords is None or point_labels is None:
                raise ValueError("point_coords and point_labels go together: give both (Nx2 (x, y) and N labels).")
            coords, label_array = as_point_prompt(point_coords, point_labels)
            warn_if_off_image(coords[label_array < 2], None, orig_hw[::-1], normalized=not normalize_coords)
            points = coords_to_model_frame(torch.from_numpy(coords).to(device), orig_hw, size, normalize_coords)
            labels = torch.from_numpy(label_array).to(device)
        if box is not None:
            box_array = as_boxes(box)
            warn_if_off_image(None, box_array, orig_hw[::-1], normalized=not normalize_coords)
            boxes = coords_to_model_frame(
                torch.from_numpy(box_array.reshape(-1, 2, 2)).to(device), orig_hw, size, normalize_coords
            )
        if mask_input is not None:
            mask_array = as_numpy(mask_input, np.float32)
            if mask_array.ndim == 3:
                mask_array = mask_array[None]
            expected = 4 * self.model.net.sam_image_embedding_size
            if mask_array.ndim != 4 or mask_array.shape[1:] != (1, expected, expected):
                raise ValueError(
                    f"mask_input must be 1x{expected}x{expected} low-res logits (the third output of predict), "
                    f"or Bx1x{expected}x{expected}; got shape {np.shape(mask_input)}."
                )
            masks_in = torch.from_numpy(mask_array).to(device)
        counts = {t.shape[0] for t in (points, boxes) if t is not None}
        if masks_in is not None and masks_in.shape[0] > 1:
            counts.add(masks_in.shape[0])
        if len(counts) > 1:
            raise ValueError(
                f"Prompts for different numbers of objects: points for {1 if points is None else points.shape[0]}, "
                f"boxes for {1 if boxes is None else boxes.shape[0]}, masks for "
                f"{1 if masks_in is None else masks_in.shape[0]}. Give one entry per object in each."
            )
        return points, labels, boxes, masks_in
