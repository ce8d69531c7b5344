"""AutomaticMaskGenerator: Meta's record format and output modes, and its option errors."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_model import AutomaticMaskGenerator
from sam2_model.rle import rle_to_mask

# Random weights give low scores: switch the quality filters off so masks come out.
NO_FILTERS = {"pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}


@pytest.mark.parametrize("output_mode", ["binary_mask", "uncompressed_rle", "coco_rle"])
def test_records_follow_metas_format(tiny_model, scene_image, output_mode):
    records = AutomaticMaskGenerator(tiny_model, points_per_side=4, output_mode=output_mode, **NO_FILTERS).generate(
        scene_image
    )
    assert records, "no masks with the filters off"
    h, w = scene_image.shape[:2]
    for record in records:
        assert set(record) == {
            "segmentation", "area", "bbox", "predicted_iou", "point_coords", "stability_score", "crop_box",
        }  # fmt: skip
        segmentation = record["segmentation"]
        if output_mode == "binary_mask":
            mask = segmentation
            assert mask.dtype == bool
        else:
            assert isinstance(segmentation["counts"], list if output_mode == "uncompressed_rle" else str)
            mask = rle_to_mask(segmentation)
        assert mask.shape == (h, w)
        assert record["area"] == int(mask.sum())
        ys, xs = np.nonzero(mask)
        x, y, bw, bh = record["bbox"]
        assert (x, y, x + bw, y + bh) == (xs.min(), ys.min(), xs.max(), ys.max())  # xywh, inclusive max like Meta
        assert record["crop_box"] == [0, 0, w, h]
        ((px, py),) = record["point_coords"]
        assert 0 <= px < w and 0 <= py < h


def test_crop_layers_and_small_region_cleanup_run(tiny_model, scene_image):
    generator = AutomaticMaskGenerator(
        tiny_model, points_per_side=2, crop_n_layers=1, min_mask_region_area=20, **NO_FILTERS
    )
    records = generator.generate(scene_image)
    crop_boxes = {tuple(r["crop_box"]) for r in records}
    assert crop_boxes and all(len(box) == 4 for box in crop_boxes)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"points_per_side": None}, "exactly one"),
        ({"points_per_side": 4, "point_grids": [np.zeros((1, 2))]}, "exactly one"),
        ({"output_mode": "png"}, "output_mode"),
        ({"points_per_batch": 0}, "points_per_batch"),
        ({"points_per_side": None, "point_grids": [np.zeros((1, 2))], "crop_n_layers": 1}, "needs 2 grids"),
    ],
)
def test_bad_options(tiny_model, kwargs, match):
    with pytest.raises(ValueError, match=match):
        AutomaticMaskGenerator(tiny_model, **kwargs)


@pytest.mark.parametrize(
    ("prompts_per_call", "masks_per_chunk"),
    [(3, 1), (5, 7)],  # one mask post-processed at a time; chunks that divide neither batch nor masks evenly
)
def test_memory_is_bounded_by_chunks_that_change_no_result(
    tiny_model, scene_image, monkeypatch, prompts_per_call, masks_per_chunk
):
    """Decoder calls of at most `prompts_per_call` prompts, full-size logits of at most `masks_per_chunk` masks at
    a time (the device's `chunk_sizes`): the records are the same as with the CPU's chunks."""
    from sam2_model import automatic_mask_generator as amg_module
    from sam2_model import image_predictor
    from sam2_model.chunk_sizes import ChunkSizes

    options = {"points_per_side": 4, "output_mode": "coco_rle", **NO_FILTERS}
    whole = AutomaticMaskGenerator(tiny_model, points_per_batch=16, **options).generate(scene_image)
    calls: list[int] = []
    chunks: list[int] = []
    decode, real_filter = image_predictor.decode_prompts, AutomaticMaskGenerator._filter

    def counting(model, features, points, *args):
        calls.append(len(points))
        return decode(model, features, points, *args)

    def counting_filter(self, low_res, *args):
        chunks.append(len(low_res))
        return real_filter(self, low_res, *args)

    pixels = scene_image.shape[0] * scene_image.shape[1]
    sizes = ChunkSizes(prompts_per_call, masks_per_chunk * 4 * pixels)
    monkeypatch.setattr(amg_module, "decode_prompts", counting)
    monkeypatch.setattr(amg_module, "chunk_sizes", lambda device: sizes)
    monkeypatch.setattr(AutomaticMaskGenerator, "_filter", counting_filter)
    chunked = AutomaticMaskGenerator(tiny_model, points_per_batch=16, **options).generate(scene_image)
    assert calls and max(calls) == prompts_per_call
    assert chunks and max(chunks) == masks_per_chunk
    assert chunked == whole
