"""Fixtures for the agreement tests with Meta's `sam2` package."""

from __future__ import annotations

import pytest

from bench.isolated import connected_components  # Meta's contract with OpenCV: the benches give it to Meta too
from tests.devices import reference_precision


@pytest.fixture(scope="module")
def meta_precision(test_device):
    """Meta's calls in this module run as Meta's demos call them on the test device: bf16 autocast on CUDA (ours
    autocasts inside), float32 on the CPU. Module-scoped, so it is entered before the module's predictors."""
    with reference_precision(test_device):
        yield


@pytest.fixture(scope="module")
def meta_hole_filling():
    """Meta's hole filling and speck removal, which it skips on the CPU ("cannot import name '_C'"), made to run
    there as it does on a GPU, so that both implementations post-process alike."""
    import sam2.utils.misc

    patch = pytest.MonkeyPatch()
    patch.setattr(sam2.utils.misc, "get_connected_components", connected_components)
    yield
    patch.undo()
