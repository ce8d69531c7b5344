"""`VideoSession`: everything one user's video tracking holds, as typed objects (Meta keeps an 18-key dict).

Many sessions live side by side on one model: a session owns its frames, prompts, per-object memories and masks,
and shares nothing mutable with other sessions.

Callers (the app, the annotator, scripts) read a session through its public face: `obj_ids`, `objects`,
`object(obj_id)`, `prompted_frames`, `tracked_frames`, `prompt`, `mask`, `frame_masks`, `frame_rles`,
`frame_ious`, `set_object_info`, `is_propagating`. The tracker's state (`tracks`, caches) belongs to `VideoPredictor`
and may change at any time.

While `propagate_in_video` runs on a session (from its first frame until the generator is exhausted or closed),
the session refuses edits (new prompts, removals, resets) with a RuntimeError: the object ids it yields always match
the rows of its masks. Reads are always allowed and see every frame finished so far.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .rle import rle_to_mask
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
    memory encoder ran; maskmem_pos_enc: their positional encoding (a session constant); iou: (1,) float32, the IoU
    head's prediction for the mask (on the model's device: it crosses to the host with the frame's masks).
    """

    pred_masks: torch.Tensor
    obj_ptr: torch.Tensor
    object_score_logits: torch.Tensor
    maskmem_features: torch.Tensor | None
    maskmem_pos_enc: list[torch.Tensor] | None
    iou: torch.Tensor

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
        tensors = [self.pred_masks, self.obj_ptr, self.object_score_logits, self.iou]
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
    frame -> COCO RLE of the newest binary mask at the video's resolution (compact: kept for every frame); ious:
    frame -> SAM 2's predicted IoU of that mask (also where the object is absent: the mask is then empty).
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
    masks: dict[int, dict[str, Any]] = field(default_factory=dict)
    ious: dict[int, float] = field(default_factory=dict)

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

    # ------------------------------------------------------------------------------ prompts (VideoPredictor's)
    def set_clicks(
        self, frame_idx: int, point_inputs: dict[str, torch.Tensor], prompt: FramePrompt, keep_old: bool
    ) -> dict[str, torch.Tensor]:
        """Record clicks (and a box) on a frame, after the frame's earlier clicks when `keep_old`, else instead of
        them and of a mask there. Returns the frame's point inputs now (model frame, `point_inputs`' layout)."""
        old = self.point_inputs.get(frame_idx) if keep_old else None
        if old is not None:
            point_inputs = {key: torch.cat([old[key], point_inputs[key]], dim=1) for key in point_inputs}
        old_prompt = self.prompts.get(frame_idx) if keep_old else None
        if old_prompt is not None and not old_prompt.mask:
            points = np.concatenate([old_prompt.points, prompt.points])
            labels = np.concatenate([old_prompt.labels, prompt.labels])
            prompt = FramePrompt(points, labels, old_prompt.box)  # a box comes first, with clear_old_points
        self.point_inputs[frame_idx] = point_inputs
        self.mask_inputs.pop(frame_idx, None)
        self.prompts[frame_idx] = prompt
        return point_inputs

    def set_mask(self, frame_idx: int, mask_inputs: torch.Tensor) -> None:
        """Record a mask prompt (1x1xSxS float 0/1) on a frame, instead of the clicks there."""
        self.mask_inputs[frame_idx] = mask_inputs
        self.point_inputs.pop(frame_idx, None)
        self.prompts[frame_idx] = FramePrompt(np.zeros((0, 2), np.float32), np.zeros(0, np.int32), None, mask=True)

    def clear_prompts(self, frame_idx: int) -> None:
        """Drop the clicks, box and mask on a frame, and the outputs they gave; a consolidated prompt's output stays
        as a tracked frame's (Meta's rule), no longer marked as tracked, and the frame's stored mask is dropped."""
        for store in (self.point_inputs, self.mask_inputs, self.prompts, self.temp_cond, self.temp_non_cond):
            store.pop(frame_idx, None)
        output = self.cond.pop(frame_idx, None)
        if output is not None:
            self.non_cond[frame_idx] = output
            self.tracked.pop(frame_idx, None)
        self.masks.pop(frame_idx, None)
        self.ious.pop(frame_idx, None)

    def forget_before(self, frame_idx: int) -> None:
        """Drop what is kept of frames before `frame_idx`: masks, tracking records, and every prompt there but the
        newest one (its conditioning memory keeps the object tracked); tracked memories are left to `prune`."""
        prompted = self.prompted_frames()
        newest = prompted[-1] if prompted else None
        for t in prompted:
            if t < frame_idx and t != newest:
                for store in (self.point_inputs, self.mask_inputs, self.prompts, self.cond, self.temp_cond,
                              self.temp_non_cond):  # fmt: skip
                    store.pop(t, None)
        for t in [t for t in self.tracked if t < frame_idx]:
            del self.tracked[t]
        for t in [t for t in self.masks if t < frame_idx]:
            del self.masks[t]
            self.ious.pop(t, None)

    # ------------------------------------------------------------------------------ memories (VideoPredictor's)
    def consolidate(self, encode_memory: Callable[[int, FrameOutput], None]) -> None:
        """Make pending prompt outputs memories before a propagation (Meta's preflight): each gets its memory
        features from `encode_memory(frame_idx, output)` if it has none, and joins the conditioning frames (or the
        tracked ones); a conditioning frame is no longer also a tracked one. RuntimeError when the object has no
        conditioning frame."""
        for is_cond, pending in ((False, self.temp_non_cond), (True, self.temp_cond)):
            for frame_idx, output in pending.items():
                if output.maskmem_features is None:
                    encode_memory(frame_idx, output)
                (self.cond if is_cond else self.non_cond)[frame_idx] = output
            pending.clear()
        if not self.cond:
            raise RuntimeError(
                f"Object {self.obj_id!r} has no prompts: add points, a box or a mask for it, or remove_object it."
            )
        for frame_idx in self.cond:
            self.non_cond.pop(frame_idx, None)

    def prune(self, frame_idx: int, memory_window: int) -> None:
        """Forget tracked-frame memories more than `memory_window` frames from `frame_idx`: the model can no longer
        attend to them from there (conditioning frames are kept)."""
        for t in [t for t in self.non_cond if abs(t - frame_idx) > memory_window]:
            del self.non_cond[t]

    def snapshot(self) -> VideoObject:
        prompted, tracked = tuple(self.prompted_frames()), tuple(sorted(self.tracked))
        return VideoObject(self.obj_id, self.class_id, self.label, prompted, tracked)


class TrackingInProgressError(RuntimeError):
    """An edit of a session (new prompts, removals, resets) while `propagate_in_video` runs on it: bad state, not
    bad input; wait for the propagation to end, or close its generator. Its own class, so that callers can tell it
    from other RuntimeErrors raised by the same calls (a CUDA out-of-memory error is one)."""


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

    def frame_ious(self, frame_idx: int) -> dict[Hashable, float]:
        """SAM 2's predicted IoU of each object's newest mask on a frame (`frame_rles`' objects; the IoU head's
        output for the mask it chose, 1.0 for a mask prompt), `obj_ids` order. An object absent there (empty mask)
        keeps the prediction for its empty mask."""
        self.frames.check_index(frame_idx)
        with self.lock:
            found = [(track.obj_id, track.ious.get(frame_idx)) for track in self.tracks]
        return {obj_id: iou for obj_id, iou in found if iou is not None}

    # ------------------------------------------------------------------------------------------- state checks
    def track_for(self, obj_id: Hashable) -> ObjectTrack:
        """`obj_id`'s tracker state, added at the end (a new object) when the id is new."""
        if obj_id in self.obj_ids:
            return self.track(obj_id)
        track = ObjectTrack(obj_id=obj_id)
        self.tracks.append(track)
        return track

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
        """Raise RuntimeError when the session is closed, TrackingInProgressError (a RuntimeError) when a propagation
        is running on it."""
        self.require_open()
        if self.propagating:
            raise TrackingInProgressError(
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
