"""`VideoSession`: everything one user's video tracking holds, as typed objects (Meta keeps an 18-key dict).

Many sessions live side by side on one model: a session owns its frames, prompts, per-object memories and masks,
and shares nothing mutable with other sessions.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import torch

from .video_frames import VideoFrames


@dataclass
class FrameOutput:
    """One object's tracker output on one frame: what later frames attend to, and the mask.

    pred_masks: 1x1x256x256 float32 mask logits; obj_ptr: 1x256 object pointer; object_score_logits: 1x1;
    maskmem_features: 1x64x64x64 memory features stored in bfloat16 (Meta's storage precision), None until the
    memory encoder ran; maskmem_pos_enc: their positional encoding (a session constant).
    """

    pred_masks: torch.Tensor
    obj_ptr: torch.Tensor
    object_score_logits: torch.Tensor
    maskmem_features: torch.Tensor | None
    maskmem_pos_enc: list[torch.Tensor] | None

    def model_view(self, device: torch.device) -> dict[str, Any]:
        """The dict ultralytics' SAM2Model reads, memory features back in float32 (bf16 -> fp32 is exact; the CPU
        cannot multiply bf16 memories with fp32 weights, which is what breaks Meta's predictor on the CPU)."""
        return {
            "pred_masks": self.pred_masks,
            "obj_ptr": self.obj_ptr,
            "object_score_logits": self.object_score_logits,
            "maskmem_features": None
            if self.maskmem_features is None
            else self.maskmem_features.to(device, torch.float32),
            "maskmem_pos_enc": self.maskmem_pos_enc,
        }

    @property
    def nbytes(self) -> int:
        tensors = [self.pred_masks, self.obj_ptr, self.object_score_logits]
        if self.maskmem_features is not None:
            tensors.append(self.maskmem_features)
        return sum(t.numel() * t.element_size() for t in tensors)


@dataclass
class ObjectTrack:
    """One tracked object: its prompts, its outputs per frame, and its finished masks.

    point_inputs: frame -> {"point_coords": 1xNx2 in the model's input frame, "point_labels": 1xN int32};
    mask_inputs: frame -> 1x1xSxS float mask; cond / non_cond: outputs of conditioning frames (prompted) and of
    tracked frames; temp_cond / temp_non_cond: outputs of prompts not yet consolidated by a propagation;
    tracked: frame -> whether it was last tracked in reverse; masks: frame -> COCO RLE of the binary mask at the
    video's resolution (compact: kept for every frame).
    """

    obj_id: Hashable
    point_inputs: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    mask_inputs: dict[int, torch.Tensor] = field(default_factory=dict)
    cond: dict[int, FrameOutput] = field(default_factory=dict)
    non_cond: dict[int, FrameOutput] = field(default_factory=dict)
    temp_cond: dict[int, FrameOutput] = field(default_factory=dict)
    temp_non_cond: dict[int, FrameOutput] = field(default_factory=dict)
    tracked: dict[int, bool] = field(default_factory=dict)
    masks: dict[int, dict] = field(default_factory=dict)

    def output_at(self, frame_idx: int, is_cond: bool) -> FrameOutput | None:
        """The newest output on a frame (Meta's order): a pending prompt's, else a conditioning or tracked frame's."""
        pending = (self.temp_cond if is_cond else self.temp_non_cond).get(frame_idx)
        if pending is not None:
            return pending
        found = self.cond.get(frame_idx)
        return found if found is not None else self.non_cond.get(frame_idx)

    def model_output_dict(self, device: torch.device) -> dict[str, dict[int, dict[str, Any]]]:
        return {
            "cond_frame_outputs": {t: out.model_view(device) for t, out in self.cond.items()},
            "non_cond_frame_outputs": {t: out.model_view(device) for t, out in self.non_cond.items()},
        }


@dataclass
class VideoSession:
    """One video being tracked (Meta's `inference_state`), created by `VideoPredictor.init_state`.

    frames: the lazily decoded video; device: where the model runs; storage_device: where memories are kept
    (the CPU with offload_state_to_cpu); objects: tracked objects in the order they were added (their index is the
    row of every mask batch); feature_cache: image features of the last few frames (frame -> FPN levels);
    vision_pos_enc: their positional encodings, the same for every frame (a session constant).
    """

    frames: VideoFrames
    device: torch.device
    storage_device: torch.device
    offload_video_to_cpu: bool = False
    objects: list[ObjectTrack] = field(default_factory=list)
    maskmem_pos_enc: list[torch.Tensor] | None = None
    feature_cache: OrderedDict[int, list[torch.Tensor]] = field(default_factory=OrderedDict)
    vision_pos_enc: list[torch.Tensor] | None = None
    closed: bool = False
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    @property
    def num_frames(self) -> int:
        return self.frames.num_frames

    @property
    def video_height(self) -> int:
        return self.frames.height

    @property
    def video_width(self) -> int:
        return self.frames.width

    @property
    def obj_ids(self) -> list[Hashable]:
        return [obj.obj_id for obj in self.objects]

    def index_of(self, obj_id: Hashable) -> int:
        """Row of `obj_id`; KeyError listing the known ids when it is unknown."""
        for index, obj in enumerate(self.objects):
            if obj.obj_id == obj_id:
                return index
        raise KeyError(f"Unknown object id {obj_id!r}; this session tracks {self.obj_ids}.")

    def require_open(self) -> None:
        if self.closed:
            raise RuntimeError("This video session is closed; start a new one with init_state(video).")

    def tensor_bytes(self) -> int:
        """Bytes of tensors the session holds (memories, prompts, cached features), not counting compact masks."""
        total = 0
        for obj in self.objects:
            for store in (obj.cond, obj.non_cond, obj.temp_cond, obj.temp_non_cond):
                total += sum(out.nbytes for out in store.values())
            total += sum(m.numel() * m.element_size() for m in obj.mask_inputs.values())
            total += sum(t.numel() * t.element_size() for p in obj.point_inputs.values() for t in p.values())
        for levels in self.feature_cache.values():
            total += sum(t.numel() * t.element_size() for t in levels)
        for constant in (self.maskmem_pos_enc, self.vision_pos_enc):
            total += sum(t.numel() * t.element_size() for t in constant or [])
        return total
