"""What every benchmark shares: one process per measurement, one device and one precision for every implementation,
synchronised timings and the peak GPU memory on CUDA, and Meta's hole filling made to run where its CUDA extension
is missing.

Why a process each: loading our model switches glibc's allocator for the whole process
(`sam2_model.devices.keep_large_allocations_in_heap`) and ultralytics lowers torch's thread count; in one shared
process each library would change the others' figures. A fresh process also makes peak-memory figures clean (RSS and
`torch.cuda.max_memory_allocated`, which each worker resets before it builds its model).

Why one resolved device: "auto" resolved by each library on its own is how a benchmark ends up timing one
implementation on the GPU and another on the CPU. The parent resolves it once (`resolve_device`) and hands every
worker the same canonical string ("cpu", "cuda:0"); `ultralytics_device` spells it as ultralytics wants.

Why one precision: SAM 2 runs in bf16 autocast on CUDA, with TF32 for what stays in float32 on Ampere and newer (ours
does both inside, Meta's demos set them around their calls); every implementation's calls run inside
`precision(device)`, so ultralytics' predictors (fp32 by default) and Meta's are measured that way too. Nothing
changes on the CPU (float32 for all).

Import this module before ultralytics: `import ultralytics` sets OMP_NUM_THREADS=1 in the environment when it is
unset, which every child process would inherit (torch would then run on one thread). The children get the value the
benchmark was started with.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any

_OMP_NUM_THREADS_AT_START = os.environ.get("OMP_NUM_THREADS")  # before anything can import ultralytics

import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam2_model.checkpoints import ModelSpec  # noqa: E402
from sam2_model.devices import autocast, select_device, tf32, uses_tf32  # noqa: E402

# gpu_check.py sets it per step: each benchmark writes its largest per-implementation GPU peak there (MiB)
GPU_PEAK_FILE = "SAM2_GPU_PEAK_FILE"


def run_isolated(script: str | Path, arguments: list[str]) -> dict[str, Any]:
    """`python script *arguments` -> the JSON object on its last stdout line, or {"error": its last stderr line}."""
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    env.pop("OMP_NUM_THREADS", None)
    env.pop(GPU_PEAK_FILE, None)  # the parent reports the largest of its workers' peaks
    if _OMP_NUM_THREADS_AT_START is not None:
        env["OMP_NUM_THREADS"] = _OMP_NUM_THREADS_AT_START
    result = subprocess.run([sys.executable, str(script), *arguments], capture_output=True, text=True, env=env)
    try:
        row: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": (result.stderr.strip().splitlines() or ["no output"])[-1][:120]}
    return row


def untrained_checkpoint(folder: str | Path, size: str) -> Path:
    """A seeded, randomly initialised SAM 2.1 checkpoint of `size` ("t", "s", "b", "l") written into `folder`: every
    implementation of a benchmark loads these same weights. The file is named ``sam2.1_<size>.pt`` because
    ultralytics picks the SAM 2.1 architecture by the file's name."""
    checkpoint = Path(folder) / f"sam2.1_{size}.pt"
    torch.manual_seed(0)
    torch.save({"model": ModelSpec(size, "2.1").build_untrained().state_dict()}, checkpoint)
    return checkpoint


def resolve_device(requested: str | None) -> torch.device:
    """The one device every implementation of a run gets: `select_device`'s canonical device ("auto"/""/None
    resolved once, "cuda" and "0" given as "cuda:<index>").

    Raises ValueError (from `select_device`) for a device this machine lacks, with the fix.
    """
    return select_device(requested or "auto")


def ultralytics_device(device: torch.device) -> str:
    """The same device in ultralytics' spelling ("cpu", "0"): its `select_device` turns "cuda" into the first GPU
    and rewrites CUDA_VISIBLE_DEVICES, so an index is what keeps it on ours."""
    if device.type == "cuda":
        return str(0 if device.index is None else device.index)
    return device.type


@contextlib.contextmanager
def precision(device: torch.device) -> Iterator[None]:
    """SAM 2's precision on `device` for every implementation, as ours runs: bf16 autocast on CUDA, and TF32 for the
    float32 matmuls and convolutions left on Ampere and newer (Meta's demos set both); float32 elsewhere."""
    with autocast(device), tf32(device):
        yield


def precision_label(device: torch.device) -> str:
    if device.type != "cuda":
        return "float32"
    return "bf16 autocast + TF32" if uses_tf32(device) else "bf16 autocast"


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work: CUDA calls return before their kernels finish, so an unsynchronised timer
    measures the launch, not the work."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Stopwatch:
    """`with Stopwatch(device) as watch: work()`, then `watch.seconds`: synchronised on entry and on exit."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds = float("nan")
        self._start = 0.0

    def __enter__(self) -> Stopwatch:
        synchronize(self.device)
        self._start = time.perf_counter()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        synchronize(self.device)
        self.seconds = time.perf_counter() - self._start


def reset_gpu_peak(device: torch.device) -> None:
    """Start this implementation's `max_memory_allocated` from zero (a no-op off CUDA)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def gpu_peak_mb(device: torch.device) -> float | None:
    """MiB of the largest GPU allocation since `reset_gpu_peak`; None off CUDA."""
    if device.type != "cuda":
        return None
    return torch.cuda.max_memory_allocated(device) / 2**20


def report_gpu_peak(peaks: list[float | None]) -> None:
    """Write the largest of `peaks` where gpu_check.py asked for it (its SAM2_GPU_PEAK_FILE), for its table."""
    target, known = os.environ.get(GPU_PEAK_FILE), [p for p in peaks if p is not None]
    if target and known:
        Path(target).write_text(f"{max(known):.1f}")


def format_mb(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Meta's `get_connected_components` contract with OpenCV: Nx1xHxW binary -> (labels, area of each pixel's
    component), both Nx1xHxW int32 on the mask's device, 8-connectivity, 0 for the background. Meta's is a CUDA
    kernel (`sam2._C`) that a build without its extension lacks; it then skips hole filling silently."""
    import cv2

    binary = mask.to(torch.uint8).cpu().numpy()
    labels, areas = np.zeros(binary.shape, np.int32), np.zeros(binary.shape, np.int32)
    for i in range(binary.shape[0]):
        _, label_map, stats, _ = cv2.connectedComponentsWithStats(binary[i, 0], connectivity=8)
        component_area = stats[:, cv2.CC_STAT_AREA].astype(np.int32)
        component_area[0] = 0
        labels[i, 0], areas[i, 0] = label_map, component_area[label_map]
    return torch.from_numpy(labels).to(mask.device), torch.from_numpy(areas).to(mask.device)


def meta_has_cuda_extension() -> bool:
    """Whether Meta's `sam2` was built with its CUDA extension (`sam2._C`, its hole-filling kernel)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from sam2 import _C  # noqa: F401
        except ImportError:
            return False
    return True


def meta_hole_filling(device: torch.device) -> str:
    """Make Meta's hole filling run in this process as ours does, and say how (for the table).

    With its CUDA extension on a CUDA device, Meta's own kernel runs. Otherwise (a build without the extension, or
    the CPU, where its kernel cannot run) Meta would skip hole filling that ours does; it gets OpenCV's connected
    components instead, the same post-processing as ours (on CUDA at the cost of a copy to the CPU and back).
    """
    if device.type == "cuda" and meta_has_cuda_extension():
        return "Meta's CUDA kernel"
    import sam2.utils.misc

    sam2.utils.misc.get_connected_components = connected_components
    reason = "no CUDA extension in this sam2 build" if device.type == "cuda" else "its kernel is CUDA-only"
    return f"OpenCV stand-in: {reason}"


def module_devices(owner: object, depth: int = 3) -> set[torch.device]:
    """The devices of every parameter of every `torch.nn.Module` reachable from `owner` through attributes, up to
    `depth` objects deep (a predictor -> its model -> its network): what tests check to prove one device per run."""
    if isinstance(owner, torch.nn.Module):
        return {p.device for p in owner.parameters()}
    if depth == 0 or not hasattr(owner, "__dict__"):
        return set()
    devices: set[torch.device] = set()
    for value in vars(owner).values():
        devices |= module_devices(value, depth - 1)
    return devices


@contextlib.contextmanager
def precision_in(cls: type, device: torch.device, *methods: str) -> Iterator[None]:
    """Run `cls.<method>` in `precision(device)` (for library code called from inside a larger call, e.g. the SAM
    predictor inside ultralytics' auto_annotate, whose YOLO must stay in float32 as ours does)."""
    originals = {name: getattr(cls, name) for name in methods}

    def wrap(function: Any) -> Any:
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            with precision(device):
                return function(*args, **kwargs)

        return wrapped

    for name, function in originals.items():
        setattr(cls, name, wrap(function))
    try:
        yield
    finally:
        for name, function in originals.items():
            setattr(cls, name, function)
