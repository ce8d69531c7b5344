"""Device choice and runtime policy: one canonical name per device; CUDA, else MPS, else CPU; bf16 autocast and
TF32 (scoped to our model's passes) on CUDA, float32 elsewhere; on the CPU, an allocator that keeps SAM 2's large
activations in the heap."""

from __future__ import annotations

import contextlib
import ctypes
import platform
import threading
from collections.abc import Iterator
from typing import Any, cast

import torch

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Above every activation of an encoding at 1024x1024 (the largest, SAM 2 large's stage-1 MLP, is ~230 MB).
_KEEP_ALLOCATIONS_BELOW = 2**30


def select_device(device: str | torch.device | None = None) -> torch.device:
    """Return the canonical torch device for `device` ("auto"/None/"" picks CUDA, then MPS, then CPU).

    Canonical: a CUDA device always carries its index ("cuda" -> "cuda:<current device>", "1" -> "cuda:1",
    " CUDA:0 " -> "cuda:0"), MPS and the CPU never do ("mps", "cpu"), so two names of one device compare, hash and
    print the same (the model registry keys on it; the detector is given the same device). Inside a Ray actor,
    where Ray sets CUDA_VISIBLE_DEVICES to the actor's GPU, "cuda" is that GPU: "cuda:0".

    Raises ValueError when the requested device is not available on this machine, with the fix.
    """
    if device is None or str(device).strip().lower() in {"", "auto"}:
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    text = str(device).strip().lower()
    if text.isdigit():  # ultralytics' and Meta's way of naming a GPU by its index
        text = f"cuda:{text}"
    try:
        chosen = torch.device(text)
    except RuntimeError as error:
        raise ValueError(f"Unknown device {device!r}: use auto, cpu, cuda, cuda:N, N or mps.") from error
    if chosen.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"Device {device!r} was requested but this torch build sees no CUDA GPU "
                f"(torch {torch.__version__}). Use --device cpu, or install a CUDA build of torch."
            )
        index = torch.cuda.current_device() if chosen.index is None else chosen.index
        if index >= torch.cuda.device_count():
            raise ValueError(
                f"Device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s) "
                f"(cuda:0 to cuda:{torch.cuda.device_count() - 1})."
            )
        return torch.device("cuda", index)
    if chosen.type == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError(f"Device {device!r} was requested but MPS is not available here. Use --device cpu.")
        return torch.device("mps")
    if chosen.type == "cpu":
        return torch.device("cpu")
    raise ValueError(f"Unsupported device {device!r}: use auto, cpu, cuda, cuda:N, N or mps.")


def uses_tf32(device: torch.device) -> bool:
    """Whether our model's float32 matmuls and convolutions run in TF32 on `device`: CUDA GPUs of compute
    capability 8.0 (Ampere) and newer, as Meta's SAM 2 demos do."""
    return device.type == "cuda" and torch.cuda.get_device_properties(device).major >= 8


def _cudnn_conv() -> Any:
    """torch's cuDNN convolution precision settings (typed loosely: torch's stubs do not declare `conv`)."""
    return cast(Any, torch.backends.cudnn).conv


class _TF32Scope:
    """TF32 for float32 matmuls (cuBLAS) and cuDNN convolutions while at least one model pass is inside, through
    torch's current API (`fp32_precision`), restoring the previous precisions when the last one leaves.

    Why scoped and not process-wide: the switch is global in torch, so setting it once would also change the
    numerics of every other model in the process (the YOLO detector, a user's own code). Why not `allow_tf32`: torch
    deprecates those flags, and torch 2.14 raises RuntimeError on reading them once anything set `fp32_precision`.
    Passes of two models (two devices) may overlap: a count makes the first entry save and the last exit restore.
    Other threads running other models during a pass see TF32 too (torch has no per-thread switch).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._depth = 0
        self._saved: tuple[str, str] = ("none", "none")

    @contextlib.contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._depth == 0:
                self._saved = (torch.backends.cuda.matmul.fp32_precision, _cudnn_conv().fp32_precision)
                torch.backends.cuda.matmul.fp32_precision = "tf32"
                _cudnn_conv().fp32_precision = "tf32"
            self._depth += 1
        try:
            yield
        finally:
            with self._lock:
                self._depth -= 1
                if self._depth == 0:
                    torch.backends.cuda.matmul.fp32_precision, _cudnn_conv().fp32_precision = self._saved


_tf32 = _TF32Scope()


def tf32(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """TF32 inside the block where `uses_tf32(device)` (the previous precisions come back on exit); nothing
    elsewhere, so the CPU and older GPUs run in float32."""
    return _tf32() if uses_tf32(device) else contextlib.nullcontext()


def autocast(device: torch.device) -> contextlib.AbstractContextManager[None]:
    """bfloat16 autocast on CUDA (SAM 2 was trained and released for it); nothing elsewhere, so CPU runs in float32."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def keep_large_allocations_in_heap() -> bool:
    """Make glibc's malloc keep freed blocks of up to 1 GiB for reuse, in one heap shared by all threads.

    Why: glibc serves every allocation above its mmap threshold (which it raises on use, but never above 32 MB) with
    a fresh mmap and unmaps it on free, so each CPU forward pass of SAM 2 page-faults its large activations in again
    (the encoder's stage-1 tensors are 50-230 MB at 1024x1024). Keeping them in the heap made an image encoding ~13%
    and a 4-box mask-decoder call ~15% faster (SAM 2.1 tiny, 2 CPU cores), with bit-identical results. It is the
    same fix as preloading jemalloc or tcmalloc, which Intel recommends for PyTorch on the CPU, without a native
    dependency. One arena for all threads, because glibc gives each new thread an arena of its own whose blocks over
    64 MB are always mmapped: the web app runs the model in Gradio's worker threads, where an encoding took 1.51 s
    without it and ~1.25 s with it. The costs: the process keeps up to 1 GiB of freed heap for reuse rather than
    shrinking (its peak memory is unchanged), and threads share one malloc lock (model passes are serialised anyway).

    A process-wide switch (glibc has one allocator per process), applied by `load_model` for CPU models; threads
    that already allocated keep their arenas, so it is best called before a server starts its threads. Returns
    False, changing nothing, where the C library is not glibc (macOS, Windows, musl).
    """
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mallopt returns 1 on success; setting either threshold also turns off glibc's dynamic threshold, which would
    # otherwise cap the mmap threshold at 32 MB
    return all(
        libc.mallopt(parameter, value) == 1
        for parameter, value in (
            (_M_MMAP_THRESHOLD, _KEEP_ALLOCATIONS_BELOW),
            (_M_TRIM_THRESHOLD, _KEEP_ALLOCATIONS_BELOW),
            (_M_ARENA_MAX, 1),
        )
    )
