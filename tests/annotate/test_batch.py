"""The unit of work of every backend: detector failures are isolated per image and reported, not swallowed."""

from __future__ import annotations

import logging

import numpy as np
import supervision as sv

from annotate.batch import BatchAnnotator
from annotate.settings import OutputSettings
from sam2_model import ImagePredictor


class BatchThatFails:
    """A batching detector whose batched call fails (e.g. out of memory) and that cannot read one image."""

    names = {0: "thing"}  # noqa: RUF012 - read only
    batched = True

    def __call__(self, images: list[np.ndarray]) -> list[sv.Detections]:
        if len(images) > 1:
            raise RuntimeError("out of memory")
        if images[0][0, 0, 0] == 1:
            raise ValueError("cannot read this one")
        return [sv.Detections.empty()]


def test_a_failed_batch_is_logged_and_retried_image_by_image(small_model, tmp_path, caplog):
    annotator = BatchAnnotator(BatchThatFails(), ImagePredictor(small_model), OutputSettings(tmp_path))
    good, bad = np.zeros((8, 8, 3), np.uint8), np.ones((8, 8, 3), np.uint8)
    with caplog.at_level(logging.WARNING, logger="annotate"):
        results = annotator.detect([good, bad, good])
    assert "detector failed on a batch of 3 images (RuntimeError: out of memory)" in caplog.text
    assert isinstance(results[0], sv.Detections) and isinstance(results[2], sv.Detections)
    assert results[1] == "detector failed: ValueError: cannot read this one"


def test_instances_are_upsampled_in_chunks_with_the_masks_of_one_by_one(small_model, tmp_path, monkeypatch):
    """Every instance's mask at the image's size comes from one interpolate per memory-bounded chunk on SAM 2's
    device (not one per instance), and the instances (polygons, RLEs) are those of upsampling each alone."""
    import torch

    from annotate.exporters import Instance
    from sam2_model import chunk_sizes as chunk_module
    from sam2_model import transforms

    height, width = 201, 333  # odd
    rng = np.random.default_rng(5)
    low_res = torch.from_numpy(rng.normal(scale=4, size=(5, 64, 64))).float()
    xyxy = np.tile(np.array([[10, 10, 300, 190]], np.float32), (5, 1))
    detections = sv.Detections(xyxy=xyxy, class_id=np.arange(5), confidence=np.linspace(0.5, 0.9, 5))
    annotator = BatchAnnotator(BatchThatFails(), ImagePredictor(small_model), OutputSettings(tmp_path))
    one_by_one = [
        Instance.from_mask(i, transforms.low_res_to_mask(low_res[i], (height, width)), xyxy[i],
                           score=float(detections.confidence[i]))
        for i in range(5)
    ]  # fmt: skip
    # two masks' worth of post-processing memory: chunks of 2, 2, 1
    budget = chunk_module.ChunkSizes(16, 2 * 4 * height * width)
    monkeypatch.setattr("annotate.batch.chunk_sizes", lambda device: budget)
    sizes: list[int] = []
    real_interpolate = transforms.F.interpolate

    def counting(tensor, *args, **kwargs):
        sizes.append(len(tensor))
        return real_interpolate(tensor, *args, **kwargs)

    monkeypatch.setattr(transforms.F, "interpolate", counting)
    instances = list(annotator.instances((height, width), detections, low_res))
    monkeypatch.undo()
    assert sizes == [2, 2, 1]
    assert len(instances) == len(one_by_one)
    for got, expected in zip(instances, one_by_one, strict=True):
        assert (got.class_id, got.rle, got.score) == (expected.class_id, expected.rle, expected.score)
        np.testing.assert_array_equal(got.polygon, expected.polygon)
