"""Device policy: one canonical name per device (the model registry and the detector use it), TF32 only inside
SAM 2's passes through torch's current API, and on the CPU glibc keeping SAM 2's large activations in the heap."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest
import torch

from sam2_model.devices import keep_large_allocations_in_heap, select_device

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


_PROBE = textwrap.dedent(
    """
    import ctypes, sys, threading, torch
    from sam2_model import load_model
    from sam2_model.devices import keep_large_allocations_in_heap

    class MallInfo2(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in
                    "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

    libc = ctypes.CDLL("libc.so.6")
    libc.mallinfo2.restype = MallInfo2

    def mmapped_while_holding(nbytes):
        before = libc.mallinfo2().hblkhd  # bytes in mmapped blocks, all arenas
        block = torch.empty(nbytes, dtype=torch.uint8)
        grown = libc.mallinfo2().hblkhd - before
        del block
        return grown

    def in_new_thread(function, *args):
        result = []
        worker = threading.Thread(target=lambda: result.append(function(*args)))
        worker.start()
        worker.join()
        return result[0]

    if sys.argv[1] == "switch":
        keep_large_allocations_in_heap()
    elif sys.argv[1] == "load_model":
        load_model("sam2.1_t.pt", "cpu", untrained=True)
    size = 200 * 2**20  # an encoder activation at 1024x1024
    print(mmapped_while_holding(size), in_new_thread(mmapped_while_holding, size))
    """
)


@pytest.mark.skipif(not GLIBC, reason="the switch exists only in glibc; elsewhere it must do nothing")
@pytest.mark.parametrize("how", ["switch", "load_model"])
def test_large_allocations_come_from_the_heap_after_the_switch(how):
    # fresh processes: the switch is process-wide and this one has already loaded models
    def mmapped(*argv: str) -> list[int]:
        result = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, check=True)
        return [int(v) for v in result.stdout.split()]

    # glibc's default: a fresh mmap per large tensor, unmapped on free, on the main thread and in other threads
    assert all(grown >= 200 * 2**20 for grown in mmapped("none"))
    # after the switch (load_model applies it for CPU models): heap blocks, reused by the next forward pass
    assert mmapped(how) == [0, 0]


def test_switch_is_a_no_op_without_glibc(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert keep_large_allocations_in_heap() is False


# ---------------------------------------------------------------------------------- one canonical name per device
@pytest.fixture
def two_gpus(monkeypatch):
    """As if torch saw two CUDA GPUs, the current one being cuda:1 (nothing is ever run on them)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 1)


# every name a user may give, and the one device it means (two GPUs, the current one being cuda:1)
CANONICAL = {
    "cuda": "cuda:1",  # the current GPU, by its index
    None: "cuda:1",
    "auto": "cuda:1",
    "": "cuda:1",
    "1": "cuda:1",  # ultralytics' (and Meta's) way of naming a GPU
    "0": "cuda:0",
    " CUDA:0 ": "cuda:0",
    torch.device("cuda"): "cuda:1",
    "cpu": "cpu",
    "cpu:0": "cpu",
}


def test_every_name_of_a_device_gives_one_device(two_gpus):
    chosen = {asked: str(select_device(asked)) for asked in CANONICAL}  # str: the model registry's key
    assert chosen == CANONICAL
    assert all(select_device(asked) == torch.device(canonical) for asked, canonical in CANONICAL.items())


def test_a_device_that_is_not_there_is_refused(two_gpus):
    for asked, message in (("7", "has 2 GPU"), ("cuda:2", "has 2 GPU"), ("tpu", "Unknown")):
        with pytest.raises(ValueError, match=message):
            select_device(asked)


def test_mps_has_one_name(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert select_device("mps:0") == select_device("mps") == select_device("auto") == torch.device("mps")


def test_cuda_and_cuda_0_share_one_loaded_model(monkeypatch):
    import sam2_model.model as model_module

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(model_module, "_REGISTRY", model_module._ModelRegistry())  # this test's loads only
    loads: list[torch.device] = []

    def make(net, spec, device, source):  # stands in for moving the network to a GPU this machine lacks
        loads.append(device)
        return object()

    monkeypatch.setattr(model_module, "_make", make)
    first = model_module.load_model("sam2.1_t.pt", "cuda", untrained=True)
    assert model_module.load_model("sam2.1_t.pt", "cuda:0", untrained=True) is first
    assert model_module.load_model("sam2.1_t.pt", "0", untrained=True) is first
    assert loads == [torch.device("cuda", 0)]


# ------------------------------------------------------------------------------------------ TF32, scoped to SAM 2
@pytest.fixture
def precisions():
    """The process's fp32 precisions, set to "ieee" for the test (so "tf32" inside is our doing), restored after."""
    conv = torch.backends.cudnn.conv
    saved = (torch.backends.cuda.matmul.fp32_precision, conv.fp32_precision)
    torch.backends.cuda.matmul.fp32_precision = conv.fp32_precision = "ieee"
    yield lambda: (torch.backends.cuda.matmul.fp32_precision, conv.fp32_precision)
    torch.backends.cuda.matmul.fp32_precision, conv.fp32_precision = saved


@pytest.fixture
def no_legacy_flags(monkeypatch):
    """Fail on any write of the deprecated allow_tf32 flags (torch raises on mixing them with fp32_precision)."""

    def refuse(*args):
        raise AssertionError("the deprecated allow_tf32 flags were set")

    monkeypatch.setattr(torch._C, "_set_cublas_allow_tf32", refuse)
    monkeypatch.setattr(torch._C, "_set_cudnn_allow_tf32", refuse)
    # torch.backends.cudnn bound its setter at import: replace it on the property itself
    monkeypatch.setattr(type(torch.backends.cudnn).__dict__["allow_tf32"], "setter", refuse)


def test_tf32_is_on_inside_the_models_passes_only(small_model, precisions, no_legacy_flags, monkeypatch):
    import sam2_model.devices

    assert precisions() == ("ieee", "ieee")
    with small_model.inference():  # on the CPU: no TF32
        assert precisions() == ("ieee", "ieee")
    monkeypatch.setattr(sam2_model.devices, "uses_tf32", lambda device: True)  # as if on an Ampere GPU
    with small_model.inference():
        assert precisions() == ("tf32", "tf32")  # matmuls and convolutions of our pass
        with small_model.inference():  # a nested pass (the lock is reentrant) leaves it on
            pass
        assert precisions() == ("tf32", "tf32")
    assert precisions() == ("ieee", "ieee")  # what the YOLO detector and everyone else get, as before
    with pytest.raises(torch.OutOfMemoryError), small_model.inference():  # a pass that fails restores them too
        raise torch.OutOfMemoryError("CUDA out of memory")
    assert precisions() == ("ieee", "ieee")


def test_tf32_needs_ampere_or_newer(monkeypatch):
    from types import SimpleNamespace

    from sam2_model.devices import uses_tf32

    for major, expected in ((7, False), (8, True), (9, True)):
        monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device, m=major: SimpleNamespace(major=m))
        assert uses_tf32(torch.device("cuda", 0)) is expected
    assert uses_tf32(torch.device("cpu")) is False
