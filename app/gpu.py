"""Where the model runs, and for how long: Hugging Face ZeroGPU's `spaces.GPU` when the package is installed, else the
caller's own process; each GPU task's time budget from its work size.

ZeroGPU's contract (spaces 0.5x, `spaces/zero/wrappers.py`): a decorated function runs in a worker process forked
from the server; its arguments and its result (a generator's every item) are pickled across, so whatever the
worker changes in the server's objects is lost. Hence the design: the GPU tasks (`gpu_tasks`) take what they need
(arrays, prompts, the tracking state to continue from) and return what changed; the workflows, in the server
process, own every user's session and write the results into it. A generator the server stops reading is told to
stop (ZeroGPU sets an event the worker checks after each item): that is how Cancel reaches a tracking.
Outside ZeroGPU (`SPACES_ZERO_GPU` unset, or no `spaces`) the same tasks run in-process, sharing the session's
tensors instead of copying them.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # importing this module must not import torch: the CLI imports `spaces` through it first
    from sam2_model import Sam2Model

Task = Callable[..., Any]

# Budgets: generous upper bounds of one call on a ZeroGPU slice (H200 MIG) with base_plus, worker start included.
# ZeroGPU reserves the GPU for the duration asked and cuts the call off after it; shorter asks queue sooner.
START_SECONDS = 10.0  # forking the worker and moving the model to the GPU
CLICK_SECONDS = 10.0  # a click, a box or an undo: one image (or frame) encoding and a mask decoding
EVERYTHING_SECONDS = 30.0  # segment everything: 256 grid clicks
SECONDS_PER_OBJECT_FRAME = 0.25  # tracking: memory attention + decoder per object per frame, frame decoding
SECONDS_PER_FILE = 4.0  # auto-annotate: an image, or a video's keyframes, with detection and SAM 2
SECONDS_PER_VIDEO_FRAME = 0.5  # auto-annotate: each frame of a video the tracker runs through
MAX_SECONDS = 600  # never ask for more than this: ZeroGPU refuses longer reservations


def click_seconds() -> int:
    """The GPU time a click, a box, an undo or an image upload (its encoding) needs, in seconds."""
    return _bounded(START_SECONDS + CLICK_SECONDS)


def everything_seconds() -> int:
    """The GPU time of "Segment everything" on one image, in seconds."""
    return _bounded(START_SECONDS + EVERYTHING_SECONDS)


def track_seconds(frames: int, objects: int) -> int:
    """The GPU time of tracking `objects` objects through `frames` frame visits (both passes together), in seconds.
    ValueError for negative counts."""
    if frames < 0 or objects < 0:
        raise ValueError(f"frames and objects must be >= 0, got {frames} and {objects}.")
    return _bounded(START_SECONDS + CLICK_SECONDS + SECONDS_PER_OBJECT_FRAME * frames * max(1, objects))


def annotate_seconds(files: int, video_frames: int = 0) -> int:
    """The GPU time of auto-annotating `files` images and videos holding `video_frames` frames in all, in seconds.
    ValueError for negative counts."""
    if files < 0 or video_frames < 0:
        raise ValueError(f"files and video_frames must be >= 0, got {files} and {video_frames}.")
    return _bounded(START_SECONDS + SECONDS_PER_FILE * files + SECONDS_PER_VIDEO_FRAME * video_frames)


def _bounded(seconds: float) -> int:
    return int(min(MAX_SECONDS, math.ceil(seconds)))


# ------------------------------------------------------------------------------------------------ the runner
def import_spaces() -> Any | None:
    """Hugging Face's `spaces` package when installed (imported now: on ZeroGPU it must come before torch picks a
    device, see `app.cli`), else None."""
    try:
        import spaces
    except ImportError:
        return None
    return spaces


def zero_gpu_active() -> bool:
    """Whether this process runs on a ZeroGPU Space (the variable the `spaces` package reads)."""
    return os.environ.get("SPACES_ZERO_GPU", "").lower() in ("1", "t", "true")


@dataclass(frozen=True)
class GpuRunner:
    """How GPU tasks run.

    decorator: `spaces.GPU`'s signature, called as `decorator(duration=budget)(task)`, where `budget` takes the
    task's arguments and returns seconds; None runs tasks as they are. isolated: each call runs in another
    process, so state crosses as CPU tensors (pickled) rather than being shared.
    """

    decorator: Callable[..., Any] | None = None
    isolated: bool = False

    def wrap(self, task: Task, budget: Callable[..., int]) -> Task:
        """`task` as it is to be called (decorated when there is a decorator)."""
        if self.decorator is None:
            return task
        wrapped: Task = self.decorator(duration=budget)(task)
        return wrapped


def default_runner() -> GpuRunner:
    """`spaces.GPU` when the package is installed (a no-op outside ZeroGPU), isolated on ZeroGPU; else in-process."""
    spaces = import_spaces()
    if spaces is None:
        return GpuRunner()
    return GpuRunner(spaces.GPU, isolated=zero_gpu_active())


# ------------------------------------------------------------------------------------------------ the worker
_SERVER_PID = os.getpid()  # this module is imported by the server before any worker is forked


def fork_safe() -> None:
    """Called first by every GPU task. In a worker forked from the server (ZeroGPU), torch's CPU work runs on the
    calling thread alone: GNU OpenMP's thread pool, which the server's torch may have started, does not survive a
    fork (the child's first parallel CPU op waits forever; measured here), and MKL runs on it. The GPU's work is
    unchanged; in the server nothing changes."""
    if os.getpid() == _SERVER_PID:
        return
    import torch

    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


# ------------------------------------------------------------------------------------------------ the models
# GPU tasks name the model by key instead of taking it as an argument (it would be pickled on every call): the
# worker is forked from the server after the model was registered, so it finds the same entry.
_MODELS: dict[int, Sam2Model] = {}


def register_model(model: Sam2Model) -> int:
    """The key GPU tasks find `model` by (register it before the first GPU call)."""
    key = id(model)
    _MODELS[key] = model
    return key


def model_by_key(key: int) -> Sam2Model:
    """The model registered as `key`; RuntimeError when this process has none by that key."""
    try:
        return _MODELS[key]
    except KeyError:
        raise RuntimeError(
            f"No model is registered as {key} in this process: register it (app.gpu.register_model) before the "
            "first GPU call, so that the GPU worker is forked with it."
        ) from None
