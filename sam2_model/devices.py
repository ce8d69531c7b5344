"""Device choice and runtime policy: CUDA, else MPS, else CPU; bf16 autocast and TF32 on CUDA, float32 elsewhere;
on the CPU, an allocator that keeps SAM 2's large activations in the heap."""

from __future__ import annotations

import contextlib
import ctypes
import platform

import torch

# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8
# Above every activation of an encoding at 1024x1024 (the largest, SAM 2 large's stage-1 MLP, is ~230 MB).
_KEEP_ALLOCATIONS_BELOW = 2**30


def select_device(device: str | torch.device | None = None) -> torch.device:
    """Return the torch device for `device` ("auto"/None/"" picks CUDA, then MPS, then CPU).

    Raises ValueError when the requested device is not available on this machine, with the fix.
    """
    if device is None or str(device).strip().lower() in {"", "auto"}:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        chosen = torch.device(str(device).strip().lower())
    except RuntimeError as error:
        raise ValueError(f"Unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps.") from error
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"Device {device!r} was requested but this torch build sees no CUDA GPU "
            f"(torch {torch.__version__}). Use --device cpu, or install a CUDA build of torch."
        )
    if chosen.type == "cuda" and chosen.index is not None and chosen.index >= torch.cuda.device_count():
        raise ValueError(f"Device {device!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s).")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"Device {device!r} was requested but MPS is not available here. Use --device cpu.")
    if chosen.type not in {"cpu", "cuda", "mps"}:
        raise ValueError(f"Unsupported device {device!r}: use auto, cpu, cuda, cuda:N or mps.")
    return chosen


def enable_tf32(device: torch.device) -> None:
    """Allow TF32 matmuls on Ampere and newer GPUs, as Meta's SAM 2 demos do (a process-wide torch switch)."""
    if device.type == "cuda" and torch.cuda.get_device_properties(device).major >= 8:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


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
