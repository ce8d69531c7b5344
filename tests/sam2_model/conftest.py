"""Fixtures for the agreement tests with Meta's `sam2` package."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch


def connected_components(mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Meta's `get_connected_components` contract on the CPU: Nx1xHxW binary -> (labels, area of each pixel's
    component), 8-connectivity, 0 for background (Meta's is a CUDA kernel that the CPU build lacks)."""
    binary = mask.to(torch.uint8).cpu().numpy()
    labels, areas = np.zeros(binary.shape, np.int32), np.zeros(binary.shape, np.int32)
    for i in range(binary.shape[0]):
        _, label_map, stats, _ = cv2.connectedComponentsWithStats(binary[i, 0], connectivity=8)
        component_area = stats[:, cv2.CC_STAT_AREA].astype(np.int32)
        component_area[0] = 0
        labels[i, 0], areas[i, 0] = label_map, component_area[label_map]
    return torch.from_numpy(labels).to(mask.device), torch.from_numpy(areas).to(mask.device)


@pytest.fixture(scope="module")
def meta_hole_filling():
    """Meta's hole filling and speck removal, which it skips on the CPU ("cannot import name '_C'"), made to run
    there as it does on a GPU, so that both implementations post-process alike."""
    import sam2.utils.misc

    patch = pytest.MonkeyPatch()
    patch.setattr(sam2.utils.misc, "get_connected_components", connected_components)
    yield
    patch.undo()
