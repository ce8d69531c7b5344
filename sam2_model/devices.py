"""Device choice and numeric policy: CUDA, else MPS, else CPU; bf16 autocast and TF32 on CUDA, float32 elsewhere."""

from __future__ import annotations

import contextlib

import torch


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


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA (SAM 2 was trained and released for it); nothing elsewhere, so CPU runs in float32."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
