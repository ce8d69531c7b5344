"""Chunk sizes by device: the CPU keeps the values measured on 2 cores; CUDA sizes them from its free memory."""

from __future__ import annotations

import pytest
import torch

from sam2_model.chunk_sizes import ChunkSizes, chunk_sizes

MiB, GiB = 2**20, 2**30


@pytest.mark.parametrize("device", ["cpu", "mps"])
def test_the_cpu_keeps_its_measured_chunks(device, monkeypatch):
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: pytest.fail("the CPU must not ask CUDA"))
    assert chunk_sizes(torch.device(device)) == ChunkSizes(prompts_per_call=16, postprocess_bytes=256 * MiB)


@pytest.mark.parametrize(
    ("free", "expected"),
    [
        (70 * GiB, ChunkSizes(256, 4 * GiB)),  # an idle H100: both capped
        (8 * GiB, ChunkSizes(32, 2 * GiB)),  # a quarter of the free memory
        (512 * MiB, ChunkSizes(16, 256 * MiB)),  # a nearly full GPU: never below the CPU's chunks
    ],
)
def test_cuda_sizes_chunks_from_its_free_memory(free, expected, monkeypatch):
    asked: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device: (asked.append(device), (free, 80 * GiB))[1])
    assert chunk_sizes(torch.device("cuda", 1)) == expected
    assert asked == [torch.device("cuda", 1)]  # the device the work runs on, not the current one


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [(1024, 1024, 64), (4000, 3000, 5), (1, 1, 64 * MiB), (20000, 20000, 1)],
)
def test_masks_per_chunk_fit_the_post_processing_budget(height, width, expected):
    assert ChunkSizes(16, 256 * MiB).masks_per_chunk(height, width) == expected
