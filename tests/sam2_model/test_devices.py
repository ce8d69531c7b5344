"""Runtime policy on the CPU: glibc keeps SAM 2's large activations in the heap between forward passes."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from sam2_model.devices import keep_large_allocations_in_heap

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
