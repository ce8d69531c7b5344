"""The one module that reaches into ultralytics' SAM 2 internals, typed, and checked when a model is built.

Why internals: our predictors do Meta's math on ultralytics' port of Meta's network (`SAM2Model`), step by step,
because ultralytics' public predictors letterbox images and re-encode frames (their masks differ from Meta's). Those
steps include private methods of the network (`_prepare_backbone_features`, `_track_step`, `_encode_new_memory`,
`_encode_memory_in_output`, `_apply_non_overlapping_constraints`), the helpers of ultralytics' automatic mask generator
(`ultralytics.models.sam.amg`, not a documented API) and the attribute names of SAM 2.1's switches. Any release may
rename them, so: requirements pin the tested range (`SUPPORTED_ULTRALYTICS`), every `Sam2Model` runs
`check_network` on its network when it is built, and a missing or re-signed member raises
`UnsupportedUltralyticsError` naming it, the installed ultralytics version and the supported range.

The rest of sam2_model uses the network through `Sam2Network` (its public members, typed: mypy flags any private
call made elsewhere) and through the functions here. Nothing here imports ultralytics at import time.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from types import ModuleType
from typing import Any, Protocol

import numpy.typing as npt
import torch

__all__ = [
    "SUPPORTED_ULTRALYTICS",
    "MaskDecoder",
    "PromptEncoder",
    "Sam2Network",
    "UnsupportedUltralyticsError",
    "apply_non_overlapping_constraints",
    "batched_mask_to_box",
    "build_all_layer_point_grids",
    "build_network",
    "calculate_stability_score",
    "check_network",
    "encode_new_memory",
    "generate_crop_boxes",
    "is_box_near_crop_edge",
    "prepare_backbone_features",
    "switch_to_sam2_1",
    "track_step_with_iou",
    "ultralytics_version",
    "uncrop_boxes_xyxy",
    "uncrop_masks",
    "uncrop_points",
]

# Tested: 8.4.190 runs the whole test suite; 8.3.100 (the project's floor) passes `check_network` and runs images,
# video and automatic masks. The cap is the next minor release: ultralytics changes these private members without
# notice, so a new minor must pass our agreement tests against Meta's sam2 before the cap moves. Keep in sync with
# requirements.txt and pyproject.toml (a test checks).
SUPPORTED_ULTRALYTICS = ">=8.3.100,<8.5"

# ultralytics' SAM 2 builders, by our size code (t, s, b, l)
_BUILDERS = {"t": "build_sam2_t", "s": "build_sam2_s", "b": "build_sam2_b", "l": "build_sam2_l"}

# The SAM2Model methods we call, with the keyword arguments we pass (checked by binding them to the signature).
NETWORK_METHODS: dict[str, tuple[str, ...]] = {
    "forward_image": ("img_batch",),
    "_prepare_backbone_features": ("backbone_out",),
    "_track_step": (
        "frame_idx", "is_init_cond_frame", "current_vision_feats", "current_vision_pos_embeds", "feat_sizes",
        "point_inputs", "mask_inputs", "output_dict", "num_frames", "track_in_reverse", "prev_sam_mask_logits",
    ),
    "_encode_memory_in_output": (
        "current_vision_feats", "feat_sizes", "point_inputs", "run_mem_encoder", "high_res_masks",
        "object_score_logits", "current_out",
    ),
    "_encode_new_memory": (
        "current_vision_feats", "feat_sizes", "pred_masks_high_res", "object_score_logits", "is_mask_from_pts",
    ),
    "_apply_non_overlapping_constraints": ("pred_masks",),
}  # fmt: skip
# SAM2Model attributes we read or set (`Sam2Network`, and SAM 2.1's switches in `switch_to_sam2_1`): setting a
# renamed flag would change nothing, silently, so each must exist before we touch it.
NETWORK_ATTRIBUTES = (
    "image_size", "sam_image_embedding_size", "directly_add_no_mem_embed", "no_mem_embed", "num_maskmem",
    "max_obj_ptrs_in_encoder", "memory_temporal_stride_for_eval", "binarize_mask_from_pts_for_mem_enc",
    "sam_prompt_encoder", "sam_mask_decoder", "image_encoder", "hidden_dim", "mem_dim", "no_obj_embed_spatial",
    "proj_tpos_enc_in_obj_ptrs", "obj_ptr_tpos_proj", "use_signed_tpos_enc_to_obj_ptrs",
)  # fmt: skip
# ultralytics.models.sam.amg functions we call, with the keyword arguments we pass.
AMG_FUNCTIONS: dict[str, tuple[str, ...]] = {
    "build_all_layer_point_grids": ("n_per_side", "n_layers", "scale_per_layer"),
    "generate_crop_boxes": ("im_size", "n_layers", "overlap_ratio"),
    "uncrop_boxes_xyxy": ("boxes", "crop_box"),
    "uncrop_points": ("points", "crop_box"),
    "uncrop_masks": ("masks", "crop_box", "orig_h", "orig_w"),
    "calculate_stability_score": ("masks", "mask_threshold", "threshold_offset"),
    "batched_mask_to_box": ("masks",),
    "is_box_near_crop_edge": ("boxes", "crop_box", "orig_box"),
}


class UnsupportedUltralyticsError(RuntimeError):
    """The installed ultralytics lacks a member sam2_model relies on (renamed, removed or called differently).

    Attributes: member (e.g. "SAM2Model._encode_new_memory"), version (the installed ultralytics version).
    """

    def __init__(self, member: str, problem: str = "is missing") -> None:
        self.member = member
        self.version = ultralytics_version()
        super().__init__(
            f"ultralytics {self.version} is not supported: {member} {problem}, and sam2_model calls it. sam2_model "
            f"is tested with ultralytics{SUPPORTED_ULTRALYTICS}; install a version in that range: "
            f"pip install 'ultralytics{SUPPORTED_ULTRALYTICS}'."
        )


def ultralytics_version() -> str:
    """The installed ultralytics version, "unknown" when it cannot be read."""
    try:
        return str(importlib.import_module("ultralytics").__version__)
    except (ImportError, AttributeError):
        return "unknown"


# ----------------------------------------------------------------------------------------- the network, typed
class PromptEncoder(Protocol):
    """ultralytics' `PromptEncoder` (Meta's), as called."""

    def __call__(
        self, points: tuple[torch.Tensor, torch.Tensor] | None, boxes: torch.Tensor | None, masks: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(BxNx2 points in the model's input frame, BxN int labels), Bx2x2 boxes, Bx1xMxM mask logits ->
        (sparse Bx(N+...)x256, dense Bx256xExE) embeddings."""
        ...

    def get_dense_pe(self) -> torch.Tensor:
        """1x256xExE positional encoding of the image embedding (E: its side, 64 for a 1024 model)."""
        ...


class MaskDecoder(Protocol):
    """ultralytics' `SAM2MaskDecoder` (Meta's), as called."""

    def __call__(
        self,
        image_embeddings: torch.Tensor,
        image_pe: torch.Tensor,
        sparse_prompt_embeddings: torch.Tensor,
        dense_prompt_embeddings: torch.Tensor,
        multimask_output: bool,
        repeat_image: bool,
        high_res_features: list[torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (BxCxMxM low-res mask logits, BxC predicted IoU, object tokens, object score logits)."""
        ...


class Sam2Network(Protocol):
    """ultralytics' `SAM2Model` as sam2_model uses it: public members only (private ones: the functions below).

    image_size: side S of the square input (1024 for the released models); sam_image_embedding_size: side E of the
    image embedding (S / 16); flags and sizes of the memory (`num_maskmem`, ...) as in Meta's configs.
    """

    image_size: int
    sam_image_embedding_size: int
    directly_add_no_mem_embed: bool
    no_mem_embed: torch.Tensor
    num_maskmem: int
    max_obj_ptrs_in_encoder: int
    memory_temporal_stride_for_eval: int
    binarize_mask_from_pts_for_mem_enc: bool
    sam_prompt_encoder: PromptEncoder
    sam_mask_decoder: MaskDecoder

    def forward_image(self, img_batch: torch.Tensor) -> dict[str, Any]:
        """Bx3xSxS normalised images -> {"backbone_fpn": [BxCxHxW per level, finest first], "vision_pos_enc": [...]}."""
        ...


def check_network(net: object) -> None:
    """Check that `net` (ultralytics' SAM2Model) and `ultralytics.models.sam.amg` have every member we use, callable
    with the arguments we pass. Raises UnsupportedUltralyticsError naming the first one that is not."""
    for name in NETWORK_ATTRIBUTES:
        if not hasattr(net, name):
            raise UnsupportedUltralyticsError(f"{type(net).__name__}.{name}")
    for name, keywords in NETWORK_METHODS.items():
        _check_callable(_member(net, name, f"{type(net).__name__}.{name}"), keywords, f"{type(net).__name__}.{name}")
    amg = _amg()
    for name, keywords in AMG_FUNCTIONS.items():
        _check_callable(_member(amg, name, f"{amg.__name__}.{name}"), keywords, f"{amg.__name__}.{name}")


def _check_callable(function: Any, keywords: tuple[str, ...], where: str) -> None:
    if not callable(function):
        raise UnsupportedUltralyticsError(where, "is not callable")
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):  # a builtin without a signature: nothing more to check
        return
    try:
        signature.bind(**dict.fromkeys(keywords))
    except TypeError as error:
        problem = f"cannot take the arguments we pass ({', '.join(keywords)}): {error}"
        raise UnsupportedUltralyticsError(where, problem) from None


def _member(owner: object, name: str, where: str) -> Any:
    found = getattr(owner, name, None)
    if found is None:
        raise UnsupportedUltralyticsError(where)
    return found


def _amg() -> ModuleType:
    try:
        return importlib.import_module("ultralytics.models.sam.amg")
    except ImportError as error:
        raise UnsupportedUltralyticsError("ultralytics.models.sam.amg", f"cannot be imported ({error})") from error


# ------------------------------------------------------------------------------------------- building
def build_network(size: str, sam2_1: bool) -> torch.nn.Module:
    """ultralytics' SAM2Model of a size ("t", "s", "b", "l") with random weights, on the CPU, in eval mode;
    SAM 2.1's architecture when `sam2_1`, SAM 2.0's otherwise."""
    try:
        build = importlib.import_module("ultralytics.models.sam.build")
    except ImportError as error:
        raise UnsupportedUltralyticsError("ultralytics.models.sam.build", f"cannot be imported ({error})") from error
    builder = _member(build, _BUILDERS[size], f"ultralytics.models.sam.build.{_BUILDERS[size]}")
    net: torch.nn.Module = builder(checkpoint=None)
    if sam2_1:
        switch_to_sam2_1(net)
    return net.eval()


def switch_to_sam2_1(net: torch.nn.Module) -> None:
    """Turn an ultralytics SAM 2.0 network into SAM 2.1.

    ultralytics picks the SAM 2.1 flags from the checkpoint's *file name* (it must contain "sam2.1"); we recognise the
    version from the weights instead, so a renamed 2.1 checkpoint still gets the 2.1 architecture. These are the three
    switches that differ between the two configs in Meta's repository (`configs/sam2.1/*.yaml`).
    """
    check_network(net)  # every switch must exist: setting a renamed one would silently build SAM 2.0
    anet: Any = net
    anet.no_obj_embed_spatial = torch.nn.Parameter(torch.zeros(1, anet.mem_dim))
    torch.nn.init.trunc_normal_(anet.no_obj_embed_spatial, std=0.02)
    anet.proj_tpos_enc_in_obj_ptrs = True
    anet.obj_ptr_tpos_proj = torch.nn.Linear(anet.hidden_dim, anet.mem_dim)
    anet.use_signed_tpos_enc_to_obj_ptrs = True


# ---------------------------------------------------------------------------------- private network steps
def prepare_backbone_features(
    net: Sam2Network, backbone_out: dict[str, Any]
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[int, int]]]:
    """`forward_image`'s output -> (vision_feats, vision_pos_embeds: HWxBxC per level, feat_sizes: (H, W) per
    level), the levels the decoder and memory read, finest first."""
    method = _member(net, "_prepare_backbone_features", "SAM2Model._prepare_backbone_features")
    _, vision_feats, vision_pos_embeds, feat_sizes = method(backbone_out=backbone_out)
    return vision_feats, vision_pos_embeds, feat_sizes


def encode_new_memory(
    net: Sam2Network,
    vision_feats: list[torch.Tensor],
    feat_sizes: list[tuple[int, int]],
    pred_masks_high_res: torch.Tensor,
    object_score_logits: torch.Tensor,
    is_mask_from_pts: bool,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """The memory encoder on Bx1xSxS mask logits (model input size) and Bx1 object scores -> (Bx64xExE memory
    features, their positional encodings per level)."""
    method = _member(net, "_encode_new_memory", "SAM2Model._encode_new_memory")
    features, pos_enc = method(
        current_vision_feats=vision_feats,
        feat_sizes=feat_sizes,
        pred_masks_high_res=pred_masks_high_res,
        object_score_logits=object_score_logits,
        is_mask_from_pts=is_mask_from_pts,
    )
    return features, list(pos_enc)


def track_step_with_iou(
    net: Sam2Network,
    *,
    frame_idx: int,
    is_init_cond_frame: bool,
    vision_feats: list[torch.Tensor],
    vision_pos_embeds: list[torch.Tensor],
    feat_sizes: list[tuple[int, int]],
    point_inputs: dict[str, torch.Tensor] | None,
    mask_inputs: torch.Tensor | None,
    output_dict: dict[str, dict[int, dict[str, Any]]],
    num_frames: int,
    track_in_reverse: bool,
    run_mem_encoder: bool,
    prev_sam_mask_logits: torch.Tensor | None,
) -> tuple[dict[str, Any], torch.Tensor]:
    """`SAM2Model.track_step` for B objects on one frame, also returning what it drops: the IoU head's prediction.

    The same two calls as `track_step` (`_track_step`, then `_encode_memory_in_output`), so the same outputs bit for
    bit. Returns ({"pred_masks": Bx1xMxM logits, "pred_masks_high_res", "obj_ptr": BxC, "object_score_logits": Bx1,
    "maskmem_features", "maskmem_pos_enc"} (Meta's keys), B float predicted IoUs of the masks returned: with several
    candidate masks the decoder keeps the one of highest predicted IoU, so that IoU; 1 for a mask given as input).
    """
    track = _member(net, "_track_step", "SAM2Model._track_step")
    encode = _member(net, "_encode_memory_in_output", "SAM2Model._encode_memory_in_output")
    found = track(
        frame_idx=frame_idx, is_init_cond_frame=is_init_cond_frame, current_vision_feats=vision_feats,
        current_vision_pos_embeds=vision_pos_embeds, feat_sizes=feat_sizes, point_inputs=point_inputs,
        mask_inputs=mask_inputs, output_dict=output_dict, num_frames=num_frames, track_in_reverse=track_in_reverse,
        prev_sam_mask_logits=prev_sam_mask_logits,
    )  # fmt: skip
    # 8.4 returns (sam_outputs, high_res_features, pix_feat); 8.3 put its own current_out first
    _, _, ious, low_res_masks, high_res_masks, obj_ptr, object_score_logits = found[-3]
    out = {"pred_masks": low_res_masks, "pred_masks_high_res": high_res_masks, "obj_ptr": obj_ptr,
           "object_score_logits": object_score_logits}  # fmt: skip
    encode(
        current_vision_feats=vision_feats, feat_sizes=feat_sizes, point_inputs=point_inputs,
        run_mem_encoder=run_mem_encoder, high_res_masks=high_res_masks, object_score_logits=object_score_logits,
        current_out=out,
    )  # fmt: skip
    return out, ious.max(dim=-1).values


def apply_non_overlapping_constraints(net: Sam2Network, pred_masks: torch.Tensor) -> torch.Tensor:
    """Nx1xHxW logits of N objects -> the same, with every pixel kept by its highest-scoring object only (the
    others' logits there are clamped to at most -10, Meta's rule)."""
    method = _member(net, "_apply_non_overlapping_constraints", "SAM2Model._apply_non_overlapping_constraints")
    masks: torch.Tensor = method(pred_masks=pred_masks)
    return masks


# ----------------------------------------------------------------------- automatic mask generator helpers
def _amg_function(name: str) -> Callable[..., Any]:
    amg = _amg()
    function: Callable[..., Any] = _member(amg, name, f"{amg.__name__}.{name}")
    return function


def build_all_layer_point_grids(n_per_side: int, n_layers: int, scale_per_layer: int) -> list[npt.NDArray[Any]]:
    """One Nx2 grid of (x, y) in [0, 1] per crop layer; layer i has n_per_side / scale_per_layer**i points a side."""
    grids: list[npt.NDArray[Any]] = _amg_function("build_all_layer_point_grids")(
        n_per_side=n_per_side, n_layers=n_layers, scale_per_layer=scale_per_layer
    )
    return grids


def generate_crop_boxes(
    im_size: tuple[int, int], n_layers: int, overlap_ratio: float
) -> tuple[list[list[int]], list[int]]:
    """(height, width) -> (crop boxes, xyxy pixels, the whole image first; the crop layer of each)."""
    boxes: tuple[list[list[int]], list[int]] = _amg_function("generate_crop_boxes")(
        im_size=im_size, n_layers=n_layers, overlap_ratio=overlap_ratio
    )
    return boxes


def uncrop_boxes_xyxy(boxes: torch.Tensor, crop_box: list[int]) -> torch.Tensor:
    """Nx4 xyxy boxes in a crop's pixels -> in the image's pixels."""
    uncropped: torch.Tensor = _amg_function("uncrop_boxes_xyxy")(boxes=boxes, crop_box=crop_box)
    return uncropped


def uncrop_points(points: torch.Tensor, crop_box: list[int]) -> torch.Tensor:
    """Nx2 (x, y) in a crop's pixels -> in the image's pixels."""
    uncropped: torch.Tensor = _amg_function("uncrop_points")(points=points, crop_box=crop_box)
    return uncropped


def uncrop_masks(masks: torch.Tensor, crop_box: list[int], orig_h: int, orig_w: int) -> torch.Tensor:
    """NxHcxWc bool masks of a crop -> Nx orig_h x orig_w, zero outside the crop."""
    uncropped: torch.Tensor = _amg_function("uncrop_masks")(
        masks=masks, crop_box=crop_box, orig_h=orig_h, orig_w=orig_w
    )
    return uncropped


def calculate_stability_score(masks: torch.Tensor, mask_threshold: float, threshold_offset: float) -> torch.Tensor:
    """NxHxW logits -> N float32 IoUs of the masks at mask_threshold +- threshold_offset (Meta's stability)."""
    scores: torch.Tensor = _amg_function("calculate_stability_score")(
        masks=masks, mask_threshold=mask_threshold, threshold_offset=threshold_offset
    )
    return scores


def batched_mask_to_box(masks: torch.Tensor) -> torch.Tensor:
    """NxHxW bool masks -> Nx4 xyxy boxes (pixels; [0, 0, 0, 0] for an empty mask)."""
    boxes: torch.Tensor = _amg_function("batched_mask_to_box")(masks=masks)
    return boxes


def is_box_near_crop_edge(boxes: torch.Tensor, crop_box: list[int], orig_box: list[int]) -> torch.Tensor:
    """N bool: whether each Nx4 xyxy box (crop pixels) touches the crop's edge where it is not the image's edge."""
    near: torch.Tensor = _amg_function("is_box_near_crop_edge")(boxes=boxes, crop_box=crop_box, orig_box=orig_box)
    return near
