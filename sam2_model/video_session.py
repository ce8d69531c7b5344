"""`VideoSession`: everything one user's video tracking holds, as typed objects (Meta keeps an 18-key dict).

Many sessions live side by side on one model: a session owns its frames, prompts, per-object memories and masks,
and shares nothing mutable with other sessions.

Callers (the app, the annotator, scripts) read a session through its public face: `obj_ids`, `objects`,
`object(obj_id)`, `prompted_frames`, `tracked_frames`, `prompt`, `mask`, `frame_masks`, `set_object_info`,
`is_propagating`. The tracker's state (`tracks`, caches) belongs to `VideoPredictor` and may change at any time.

While `propagate_in_video` runs on a session (from its first frame until the generator is exhausted or closed),
the session refuses edits (new prompts, removals, resets) with a RuntimeError: the object ids it yields always match
the rows of its masks. Reads are always allowed and see every frame finished so far.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .formats import rle_to_mask
from .video_frames import VideoFrames


@dataclass(frozen=True)
class FramePrompt:
    """What the caller gave one object on one frame, in the video's pixels.

    points: Nx2 float32 (x, y); labels: N int32 (1 foreground, 0 background); box: xyxy float32 or None;
    mask: whether the prompt was a mask (`add_new_mask`) rather than clicks and a box.
    """

    points: np.ndarray
    labels: np.ndarray
    box: np.ndarray | None = None
    mask: bool = False


@dataclass(frozen=True)
class VideoObject:
    """A snapshot of one tracked object.

    class_id and label: what the caller attached with `set_object_info` (None until then); prompted_frames: frames
    with clicks, a box or a mask for it; tracked_frames: frames a propagation has run through (sorted).
    """

    obj_id: Hashable
    class_id: int | None
    label: str | None
    prompted_frames: tuple[int, ...]
    tracked_frames: tuple[int, ...]


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
    """The tracker's state of one object (internal to `VideoPredictor`).

    point_inputs: frame -> {"point_coords": 1xNx2 in the model's input frame, "point_labels": 1xN int32};
    mask_inputs: frame -> 1x1xSxS float mask; prompts: frame -> the same prompts in video pixels; cond / non_cond:
    outputs of conditioning frames (prompted) and of tracked frames; temp_cond / temp_non_cond: outputs of prompts
    not yet consolidated by a propagation; tracked: frame -> whether it was last tracked in reverse; masks:
    frame -> COCO RLE of the newest binary mask at the video's resolution (compact: kept for every frame).
    """

    obj_id: Hashable
    class_id: int | None = None
    label: str | None = None
    point_inputs: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)
    mask_inputs: dict[int, torch.Tensor] = field(default_factory=dict)
    prompts: dict[int, FramePrompt] = field(default_factory=dict)
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

    def prompted_frames(self) -> list[int]:
        return sorted(set(self.point_inputs) | set(self.mask_inputs))

    def snapshot(self) -> VideoObject:
        prompted, tracked = tuple(self.prompted_frames()), tuple(sorted(self.tracked))
        return VideoObject(self.obj_id, self.class_id, self.label, prompted, tracked)


@dataclass
class VideoSession:
    """One video being tracked (Meta's `inference_state`), created by `VideoPredictor.init_state`.

    frames: the lazily decoded video; device: where the model runs; storage_device: where memories are kept
    (the CPU with offload_state_to_cpu); owns_frames: whether closing the session closes the frames. The rest is
    the tracker's state, written by `VideoPredictor` only: tracks (one per object, in the order added: its index is
    the row of every mask batch), feature_cache (image features of the last few frames), vision_pos_enc /
    maskmem_pos_enc (positional encodings, session constants).
    """

    frames: VideoFrames
    device: torch.device
    storage_device: torch.device
    tracks: list[ObjectTrack] = field(default_factory=list)
    maskmem_pos_enc: list[torch.Tensor] | None = None
    feature_cache: OrderedDict[int, list[torch.Tensor]] = field(default_factory=OrderedDict)
    vision_pos_enc: list[torch.Tensor] | None = None
    closed: bool = False
    propagating: bool = False
    owns_frames: bool = True  # False when the caller made the frames (and shares them): closing leaves them open
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # ------------------------------------------------------------------------------------------- the video
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
    def is_propagating(self) -> bool:
        """True while a `propagate_in_video` generator runs on this session (edits are refused meanwhile)."""
        return self.propagating

    # ------------------------------------------------------------------------------------------- objects
    @property
    def obj_ids(self) -> list[Hashable]:
        """Object ids in the order they were added (the row order of every mask batch)."""
        return [track.obj_id for track in self.tracks]

    @property
    def objects(self) -> tuple[VideoObject, ...]:
        """A snapshot of every object, in `obj_ids` order."""
        with self.lock:
            return tuple(track.snapshot() for track in self.tracks)

    def object(self, obj_id: Hashable) -> VideoObject:
        """A snapshot of one object; KeyError listing the known ids when it is unknown."""
        with self.lock:
            return self.track(obj_id).snapshot()

    def set_object_info(self, obj_id: Hashable, *, class_id: int | None = None, label: str | None = None) -> None:
        """Attach a class id and a human label to an object (kept with it; the tracker never reads them)."""
        with self.lock:
            track = self.track(obj_id)
            track.class_id = None if class_id is None else int(class_id)
            track.label = None if label is None else str(label)

    def prompted_frames(self, obj_id: Hashable) -> list[int]:
        """Frames on which `obj_id` has clicks, a box or a mask, sorted."""
        with self.lock:
            return self.track(obj_id).prompted_frames()

    def tracked_frames(self, obj_id: Hashable) -> list[int]:
        """Frames a propagation has run through for `obj_id`, sorted."""
        with self.lock:
            return sorted(self.track(obj_id).tracked)

    def prompt(self, frame_idx: int, obj_id: Hashable) -> FramePrompt | None:
        """`obj_id`'s prompts on a frame in video pixels, None when it has none there."""
        with self.lock:
            return self.track(obj_id).prompts.get(frame_idx)

    # ------------------------------------------------------------------------------------------- masks
    def mask(self, frame_idx: int, obj_id: Hashable) -> np.ndarray | None:
        """`obj_id`'s newest mask on a frame, HxW bool at the video's resolution (from its prompts there or from
        the last propagation through it), None when it has none there."""
        self.frames.check_index(frame_idx)
        with self.lock:
            rle = self.track(obj_id).masks.get(frame_idx)
        return None if rle is None else rle_to_mask(rle)

    def frame_masks(self, frame_idx: int) -> dict[Hashable, np.ndarray]:
        """Every object's newest mask on a frame (objects without one are left out), HxW bool, `obj_ids` order."""
        self.frames.check_index(frame_idx)
        with self.lock:
            found = [(track.obj_id, track.masks.get(frame_idx)) for track in self.tracks]
        return {obj_id: rle_to_mask(rle) for obj_id, rle in found if rle is not None}

    def frame_rles(self, frame_idx: int) -> dict[Hashable, dict[str, Any]]:
        """`frame_masks` as the session keeps them: COCO compressed RLEs ({"size": [h, w], "counts": str}), with
        nothing decoded (for callers that store or compare masks without pixels, e.g. a dataset writer)."""
        self.frames.check_index(frame_idx)
        with self.lock:
            found = [(track.obj_id, track.masks.get(frame_idx)) for track in self.tracks]
        return {obj_id: dict(rle) for obj_id, rle in found if rle is not None}

    # ------------------------------------------------------------------------------------------- state checks
    def track(self, obj_id: Hashable) -> ObjectTrack:
        """The tracker state of `obj_id` (for `VideoPredictor`); KeyError listing the known ids when unknown."""
        return self.tracks[self.index_of(obj_id)]

    def index_of(self, obj_id: Hashable) -> int:
        """Row of `obj_id`; KeyError listing the known ids when it is unknown."""
        for index, track in enumerate(self.tracks):
            if track.obj_id == obj_id:
                return index
        raise KeyError(f"Unknown object id {obj_id!r}; this session tracks {self.obj_ids}.")

    def require_open(self) -> None:
        if self.closed:
            raise RuntimeError("This video session is closed; start a new one with init_state(video).")

    def require_editable(self) -> None:
        """Raise RuntimeError when the session is closed or a propagation is running on it."""
        self.require_open()
        if self.propagating:
            raise RuntimeError(
                "Tracking is in progress on this video session: wait until propagate_in_video has finished (or close "
                "its generator) before changing prompts or objects."
            )

    def tensor_bytes(self) -> int:
        """Bytes of tensors the session holds (memories, prompts, cached features), not counting compact masks."""
        total = 0
        for track in self.tracks:
            for store in (track.cond, track.non_cond, track.temp_cond, track.temp_non_cond):
                total += sum(out.nbytes for out in store.values())
            total += sum(m.numel() * m.element_size() for m in track.mask_inputs.values())
            total += sum(t.numel() * t.element_size() for p in track.point_inputs.values() for t in p.values())
        for levels in self.feature_cache.values():
            total += sum(t.numel() * t.element_size() for t in levels)
        for constant in (self.maskmem_pos_enc, self.vision_pos_enc):
            total += sum(t.numel() * t.element_size() for t in constant or [])
        return total
