"""Fixtures for the agreement tests with Meta's `sam2` package."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from bench.isolated import connected_components  # Meta's contract with OpenCV: the benches give it to Meta too
from tests.devices import reference_precision

REFERENCE_VIDEO_FRAMES = 4


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


@pytest.fixture(scope="module")
def video_folder(tmp_path_factory):
    """A JPEG folder (the format Meta's loader reads) of REFERENCE_VIDEO_FRAMES textured 96x72 frames: a red
    square moving right, a green disc moving left."""
    folder = tmp_path_factory.mktemp("jpeg_video")
    rng = np.random.default_rng(0)
    for i in range(REFERENCE_VIDEO_FRAMES):
        frame = rng.integers(0, 160, (72, 96, 3), dtype=np.uint8)
        cv2.rectangle(frame, (10 + 4 * i, 10), (40 + 4 * i, 40), (0, 0, 230), -1)
        cv2.circle(frame, (70 - 2 * i, 50), 12, (0, 220, 0), -1)
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), frame)
    return folder


@pytest.fixture(scope="module")
def meta_predictor(checkpoints, meta_hole_filling, test_device, meta_precision):
    """Meta's SAM2VideoPredictor on the `checkpoints` weights, configured like ours (corrections become
    conditioning frames); on the CPU its memory attention runs in float32 (its bf16 memories meet fp32 weights)."""
    from sam2.build_sam import build_sam2_video_predictor

    predictor = build_sam2_video_predictor(
        "configs/sam2.1/sam2.1_hiera_t.yaml",
        ckpt_path=str(checkpoints.meta),
        device=str(test_device),
        hydra_overrides_extra=["++model.add_all_frames_to_correct_as_cond=true"],
    )
    if test_device.type != "cpu":  # under bf16 autocast the dtypes meet as they do for Meta's own GPU runs
        return predictor
    attention = predictor.memory_attention.forward

    def float32_attention(*args, **kwargs):
        def cast(value):
            return value.float() if torch.is_tensor(value) else value

        return attention(*[cast(a) for a in args], **{k: cast(v) for k, v in kwargs.items()})

    predictor.memory_attention.forward = float32_attention
    return predictor
