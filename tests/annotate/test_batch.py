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
