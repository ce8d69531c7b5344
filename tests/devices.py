"""The device the model tests run on, and the tolerances that go with its precision.

`SAM2_TEST_DEVICE` (default "cpu") picks it: `SAM2_TEST_DEVICE=cuda python -m pytest tests/sam2_model` runs the
fixtures' models (`tiny_model`, `small_model`, Meta's reference models) on the GPU, where SAM 2 runs in bf16 autocast
(ours inside `Sam2Model.forward`; Meta's predictors inside `reference_precision`, as Meta's demos call them), with
TF32 matmuls. Unset or "cpu", nothing changes: float32, the tolerances the suite always had.

The tolerances on CUDA are set from bf16's precision, not yet measured (no GPU has run the suite): bf16 keeps 8
significant bits (a relative step of 2**-8 ~ 0.004), and untrained SAM 2.1 tiny logits reach |x| ~ 20, so two bf16
computations of the same logit that round differently somewhere (batched against alone, another kernel choice, our
encoder's shared position encodings against Meta's per-image ones) can land a few steps, ~0.1, apart. Masks are
compared by IoU, where a logit near 0 flipping sign costs a few pixels: 0.98 instead of 0.999.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any

import torch

TEST_DEVICE_VARIABLE = "SAM2_TEST_DEVICE"

# float32 on the CPU: measured at most ~3e-7 against Meta's logits; 1e-4 leaves room for other CPUs' kernels
FLOAT32_LOGIT_ATOL = 1e-4
FLOAT32_MIN_IOU = 0.999
# bf16 autocast on CUDA: see the module's docstring for where these come from
BF16_LOGIT_ATOL = 0.1
BF16_MIN_IOU = 0.98


def device_under_test() -> torch.device:
    """The canonical device `SAM2_TEST_DEVICE` names ("cpu" when unset; "cuda" is "cuda:<current index>").

    Raises ValueError when it names a device this machine lacks (e.g. cuda without a GPU), with the fix: a run that
    asked for the GPU must not pass quietly on the CPU.
    """
    from sam2_model.devices import select_device

    requested = os.environ.get(TEST_DEVICE_VARIABLE, "cpu").strip() or "cpu"
    try:
        device = select_device(requested)
    except ValueError as error:
        raise ValueError(f"{TEST_DEVICE_VARIABLE}={requested!r}: {error} Unset it to test on the CPU.") from error
    return device


def uses_bf16(device: torch.device) -> bool:
    """Whether SAM 2 runs in bf16 autocast on `device` (CUDA), i.e. whether the bf16 tolerances apply."""
    return device.type == "cuda"


def logit_atol(device: torch.device) -> float:
    """Absolute tolerance on logits and scores compared between two computations on `device`."""
    return BF16_LOGIT_ATOL if uses_bf16(device) else FLOAT32_LOGIT_ATOL


def min_iou(device: torch.device) -> float:
    """Least IoU between two masks computed on `device` that should agree."""
    return BF16_MIN_IOU if uses_bf16(device) else FLOAT32_MIN_IOU


def reference_precision(device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """The precision Meta's predictors are called in on `device`: bf16 autocast on CUDA (what Meta's demos and ours
    do there), float32 elsewhere."""
    if uses_bf16(device):
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
