"""Runtime policy on the CPU: glibc keeps SAM 2's large activations in the heap between forward passes."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

from sam2_model.devices import keep_large_allocations_in_heap

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


@pytest.mark.skipif(not GLIBC, reason="the switch exists only in glibc; elsewhere it must do nothing")
def test_large_allocations_come_from_the_heap_after_the_switch():
    # A fresh process: the switch is process-wide and this one has already loaded models.
    script = textwrap.dedent(
        """
        import ctypes, torch
        from sam2_model.devices import keep_large_allocations_in_heap

        class MallInfo2(ctypes.Structure):
            _fields_ = [(name, ctypes.c_size_t) for name in
                        "arena ordblks smblks hblks hblkhd usmblks fsmblks uordblks fordblks keepcost".split()]

        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2

        def mmapped_while_holding(nbytes):
            before = libc.mallinfo2().hblkhd
            block = torch.empty(nbytes, dtype=torch.uint8)
            grown = libc.mallinfo2().hblkhd - before
            del block
            return grown

        size = 200 * 2**20  # an encoder activation at 1024x1024
        print(mmapped_while_holding(size), keep_large_allocations_in_heap(), mmapped_while_holding(size))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    before, switched, after = result.stdout.split()
    assert int(before) >= 200 * 2**20  # glibc's default: a fresh mmap per large tensor, unmapped on free
    assert switched == "True"
    assert int(after) == 0


def test_switch_is_a_no_op_without_glibc(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert keep_large_allocations_in_heap() is False
