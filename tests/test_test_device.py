"""SAM2_TEST_DEVICE: unset or cpu changes nothing (float32 tolerances, CPU models); cuda puts the fixtures' models on
the GPU with the bf16 tolerances; a GPU asked for on a machine without one stops the run instead of passing on the
CPU."""

from __future__ import annotations

import contextlib

import pytest
import torch

from tests import devices


@pytest.mark.parametrize("value", [None, "", "cpu"])
def test_unset_or_cpu_changes_nothing(monkeypatch, value):
    if value is None:
        monkeypatch.delenv(devices.TEST_DEVICE_VARIABLE, raising=False)
    else:
        monkeypatch.setenv(devices.TEST_DEVICE_VARIABLE, value)
    device = devices.device_under_test()
    assert device == torch.device("cpu")
    assert devices.logit_atol(device) == 1e-4 and devices.min_iou(device) == 0.999  # the suite's tolerances before
    assert isinstance(devices.reference_precision(device), contextlib.nullcontext)


def test_cuda_gets_the_gpu_and_the_bf16_tolerances(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setenv(devices.TEST_DEVICE_VARIABLE, "cuda")
    device = devices.device_under_test()
    assert device == torch.device("cuda", 0)
    assert devices.logit_atol(device) == devices.BF16_LOGIT_ATOL > devices.FLOAT32_LOGIT_ATOL
    assert devices.min_iou(device) == devices.BF16_MIN_IOU < devices.FLOAT32_MIN_IOU
    monkeypatch.undo()  # the real CUDA state again: a CPU-only torch warns that it disables the autocast it builds
    with pytest.warns(UserWarning) if not torch.cuda.is_available() else contextlib.nullcontext():
        precision = devices.reference_precision(device)
    assert isinstance(precision, torch.autocast) and precision.fast_dtype == torch.bfloat16


def test_a_gpu_asked_for_without_one_stops_the_run(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(devices.TEST_DEVICE_VARIABLE, "cuda")
    with pytest.raises(ValueError, match=r"SAM2_TEST_DEVICE='cuda'.*Unset it to test on the CPU"):
        devices.device_under_test()


def test_the_fixtures_models_are_on_the_test_device(small_model, test_device):
    assert test_device == devices.device_under_test()
    assert small_model.device == test_device
    assert {p.device.type for p in small_model.net.parameters()} == {test_device.type}
