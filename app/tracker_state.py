"""`TrackerState`: what a video's tracking holds between two GPU calls, in a form that crosses a process boundary.

The server keeps each user's `VideoSession` (frames, objects, prompts, masks, memories); a GPU task gets a
`TrackerState` of it, rebuilds a session on the model's device (`open_session`), works, and hands back the new
state (`state_of`), which the server writes into the user's session (`apply_state`). Across processes ("portable")
every tensor travels on the CPU and the cached image features stay behind (the worker encodes the frames it
needs); in-process the state shares the session's own objects, so nothing is copied.
"""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Protocol

import torch

from sam2_model import Sam2Model, VideoSession
from sam2_model.video_frames import VideoFrames
from sam2_model.video_session import FrameOutput, ObjectTrack


class TrackedFrameLike(Protocol):
    """A frame a tracking went through (`gpu_tasks.TrackedFrame`): each object's COCO RLE mask by id, direction."""

    frame: int
    reverse: bool
    rles: dict[Hashable, dict[str, Any]]


@dataclass
class TrackerState:
    """A video's tracking state.

    frames: the video (its frames are files on this machine: the worker reads the ones it needs); tracks: each
    object's prompts, memories (1x64x64x64 bf16 features, 1x256 pointers) and RLE masks, in the session's order;
    maskmem_pos_enc: the memories' positional encoding (a constant); storage_device: where memories are kept;
    feature_cache / vision_pos_enc: cached image features, shared in-process only (empty when portable).
    """

    frames: VideoFrames
    tracks: list[ObjectTrack]
    storage_device: torch.device
    maskmem_pos_enc: list[torch.Tensor] | None = None
    feature_cache: OrderedDict[int, list[torch.Tensor]] = field(default_factory=OrderedDict)
    vision_pos_enc: list[torch.Tensor] | None = None

    @property
    def num_frames(self) -> int:
        return self.frames.num_frames

    def tensor_bytes(self) -> int:
        """Bytes of the tensors it holds (what crosses the pipe when portable)."""
        seen: dict[int, int] = {}
        _walk(self.tracks, seen)
        _walk(self.maskmem_pos_enc, seen)
        _walk(list(self.feature_cache.values()), seen)
        _walk(self.vision_pos_enc, seen)
        return sum(seen.values())


def state_of(session: VideoSession, portable: bool) -> TrackerState:
    """The session's tracking state: its own objects in-process, CPU copies when `portable` (memories stay in
    bfloat16, shared tensors stay shared)."""
    if not portable:
        return TrackerState(session.frames, session.tracks, session.storage_device, session.maskmem_pos_enc,
                            session.feature_cache, session.vision_pos_enc)  # fmt: skip
    cpu, memo = torch.device("cpu"), dict[int, Any]()
    tracks = [_moved(track, cpu, memo) for track in session.tracks]
    return TrackerState(session.frames, tracks, cpu, _moved(session.maskmem_pos_enc, cpu, memo))


def open_session(state: TrackerState, model: Sam2Model, portable: bool) -> VideoSession:
    """A session on `model`'s device that works on `state` (for a GPU task; closing it leaves the frames). When
    `portable` the state's tensors are moved to the device first, and memories are kept there during the call."""
    device = model.device
    if not portable:
        return VideoSession(
            frames=state.frames, device=device, storage_device=state.storage_device, tracks=state.tracks,
            maskmem_pos_enc=state.maskmem_pos_enc, feature_cache=state.feature_cache,
            vision_pos_enc=state.vision_pos_enc, owns_frames=False,
        )  # fmt: skip
    memo: dict[int, Any] = {}
    tracks = [_moved(track, device, memo) for track in state.tracks]
    return VideoSession(frames=state.frames, device=device, storage_device=device, tracks=tracks,
                        maskmem_pos_enc=_moved(state.maskmem_pos_enc, device, memo), owns_frames=False)  # fmt: skip


def apply_state(session: VideoSession, state: TrackerState) -> None:
    """Write a GPU task's result into the user's session (the server's copy becomes the newest one)."""
    with session.lock:
        session.tracks[:] = state.tracks
        session.maskmem_pos_enc = state.maskmem_pos_enc
        if state.vision_pos_enc is not None:
            session.vision_pos_enc = state.vision_pos_enc


def apply_frame(session: VideoSession, tracked: TrackedFrameLike) -> None:
    """Write one tracked frame into the user's session: each object's mask there, and that tracking went through
    it (in which direction); objects the frame does not name keep what they had."""
    with session.lock:
        for track in session.tracks:
            rle = tracked.rles.get(track.obj_id)
            if rle is not None:
                track.masks[tracked.frame] = rle
            track.tracked[tracked.frame] = tracked.reverse


def _moved(value: Any, device: torch.device, memo: dict[int, Any]) -> Any:
    """`value` with every tensor inside (tracks, outputs, dicts, lists) on `device`; a tensor reached twice is
    moved once, so constants shared by every memory stay one tensor."""
    if isinstance(value, torch.Tensor):
        if id(value) not in memo:
            memo[id(value)] = value.to(device)
        return memo[id(value)]
    if isinstance(value, (ObjectTrack, FrameOutput)):
        changes = {f.name: _moved(getattr(value, f.name), device, memo) for f in dataclasses.fields(value)}
        return dataclasses.replace(value, **changes)
    if isinstance(value, dict):
        return {key: _moved(item, device, memo) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_moved(item, device, memo) for item in value)
    return value


def _walk(value: Any, seen: dict[int, int]) -> None:
    if isinstance(value, torch.Tensor):
        seen[id(value)] = value.numel() * value.element_size()
    elif isinstance(value, (ObjectTrack, FrameOutput)):
        for f in dataclasses.fields(value):
            _walk(getattr(value, f.name), seen)
    elif isinstance(value, dict):
        for item in value.values():
            _walk(item, seen)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _walk(item, seen)
