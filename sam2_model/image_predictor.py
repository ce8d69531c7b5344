"""`ImagePredictor`: Meta's `SAM2ImagePredictor` contract on the shared model, with an embedding cache.

Code written for Meta's predictor runs unchanged: `set_image` then `predict(point_coords, point_labels, box,
mask_input, multimask_output, return_logits, normalize_coords)`, with the same shapes, dtypes and masks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .chunk_sizes import chunk_sizes
from .embedding_cache import ImageFeatures, image_key
from .model import Sam2Model, load_model
from .prompts import Prompt, PromptInput, PromptTensors
from .transforms import fill_holes_and_sprinkles, images_to_batch, masks_to_image_frame, to_rgb_uint8
from .ultralytics_adapter import prepare_backbone_features


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
    model: Sam2Model, features: ImageFeatures, prompt: PromptTensors, multimask_output: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """One mask-decoder call for the B prompts of `prompt` on one image (Meta's `_predict` math) -> (BxCx256x256
    float32 logits, BxC float32 predicted IoU), C = 3 with multimask_output else 1."""
    folded = prompt.with_box_corners()
    points = None if folded.points is None or folded.labels is None else (folded.points, folded.labels)
    net = model.net
    with model.inference():
        sparse, dense = net.sam_prompt_encoder(points=points, boxes=None, masks=prompt.masks)
        batched = points is not None and points[0].shape[0] > 1
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
        features = self._single_image("predict")
        prompt = self._prompt(features, point_coords, point_labels, box, mask_input, normalize_coords)
        return self._predict_one(features, prompt, multimask_output, return_logits)

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
        prompts = [
            self._prompt(
                features,
                None if point_coords_batch is None else point_coords_batch[i],
                None if point_labels_batch is None else point_labels_batch[i],
                None if box_batch is None else box_batch[i],
                None if mask_input_batch is None else mask_input_batch[i],
                normalize_coords,
            )
            for i, features in enumerate(self._features)
        ]  # every image's prompts are checked before the first is decoded
        outputs = [
            self._predict_one(features, prompt, multimask_output, return_logits)
            for features, prompt in zip(self._features, prompts, strict=True)
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

        For many objects on large images (a dataset annotator): upsample the masks a chunk at a time, on the
        device, with `transforms.low_res_to_masks`, instead of holding B x C full-size masks at once. Same prompts as
        `predict`.
        """
        features = self._single_image("predict_low_res")
        prompt = self._prompt(features, point_coords, point_labels, box, mask_input, normalize_coords)
        low_res, iou = self._low_res(features, prompt, multimask_output)
        return self.fill_small_regions(low_res), iou

    def _prompt(
        self,
        features: ImageFeatures,
        point_coords: PromptInput | None,
        point_labels: PromptInput | None,
        box: PromptInput | None,
        mask_input: PromptInput | None,
        normalize_coords: bool,
    ) -> PromptTensors:
        """`predict`'s prompts for one image, checked (ValueError), in the model's input frame."""
        mask_side = 4 * self.model.net.sam_image_embedding_size
        prompt = Prompt.from_predict(point_coords, point_labels, box, mask_input, normalize_coords, mask_side)
        prompt.warn_if_off_image((features.orig_hw[1], features.orig_hw[0]), stacklevel=3)  # the user's call
        return prompt.to_model_frame(features.orig_hw, self.model.image_size, self.device)

    def _predict_one(
        self, features: ImageFeatures, prompt: PromptTensors, multimask_output: bool, return_logits: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        low_res, iou = self._low_res(features, prompt, multimask_output)
        # Meta fills holes and removes specks before upsampling, and returns the low-res logits as they came
        masks = masks_to_image_frame(self.fill_small_regions(low_res), features.orig_hw)
        if not return_logits:
            masks = masks > self.mask_threshold
        low_res = torch.clamp(low_res, -32.0, 32.0)
        squeeze = low_res.shape[0] == 1
        return tuple((t[0] if squeeze else t).float().cpu().numpy() for t in (masks, iou, low_res))  # type: ignore[return-value]

    def _low_res(
        self, features: ImageFeatures, prompt: PromptTensors, multimask_output: bool
    ) -> tuple[torch.Tensor, torch.Tensor]:
        step = chunk_sizes(self.model.device).prompts_per_call  # bounded decoder memory; chunks change no mask
        parts = [prompt.rows(slice(start, start + step)) for start in range(0, len(prompt), step)]
        chunks = [decode_prompts(self.model, features, part, multimask_output) for part in parts]
        low_res = chunks[0][0] if len(chunks) == 1 else torch.cat([c[0] for c in chunks])
        iou = chunks[0][1] if len(chunks) == 1 else torch.cat([c[1] for c in chunks])
        return low_res, iou

    def fill_small_regions(self, low_res: torch.Tensor) -> torch.Tensor:
        """Meta's mask post-processing on low-res logits (..., 256, 256): holes up to `max_hole_area` pixels become
        foreground and specks up to `max_sprinkle_area` background (nothing when both are 0, the default)."""
        return fill_holes_and_sprinkles(low_res, self.mask_threshold, self.max_hole_area, self.max_sprinkle_area)
