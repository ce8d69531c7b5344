"""RLE converters: exact round trips and agreement with pycocotools."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from sam2_model.rle import (
    mask_to_rle,
    mask_to_uncompressed_rle,
    masks_to_rles,
    rle_area,
    rle_box,
    rle_for_pycocotools,
    rle_to_mask,
)


def _masks():
    rng = np.random.default_rng(3)
    empty = np.zeros((7, 5), bool)
    full = np.ones((4, 9), bool)
    corner = np.zeros((6, 6), bool)
    corner[0, 0] = True
    random = rng.random((31, 17)) > 0.6
    ring = np.zeros((20, 20), bool)
    ring[3:17, 3:17] = True
    ring[7:13, 7:13] = False
    return [empty, full, corner, random, ring]


@pytest.mark.parametrize("mask", _masks())
def test_compressed_rle_round_trip_is_exact(mask):
    rle = mask_to_rle(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == list(mask.shape)
    np.testing.assert_array_equal(rle_to_mask(rle), mask)
    assert rle_area(rle) == mask.sum()


@pytest.mark.parametrize("mask", _masks())
def test_uncompressed_rle_round_trip_and_matches_pycocotools(mask):
    rle = mask_to_uncompressed_rle(mask)
    assert sum(rle["counts"]) == mask.size
    np.testing.assert_array_equal(rle_to_mask(rle), mask)
    assert rle_area(rle) == mask.sum()
    compressed = mask_utils.frPyObjects(rle, *mask.shape)
    assert compressed["counts"].decode() == mask_to_rle(mask)["counts"]


def test_bad_rle_inputs():
    with pytest.raises(ValueError, match="HxW"):
        mask_to_rle(np.zeros((2, 2, 2), bool))
    with pytest.raises(ValueError, match="sum to 3"):
        rle_to_mask({"size": [2, 2], "counts": [1, 2]})
    with pytest.raises(ValueError, match="size"):
        rle_to_mask({"counts": [4]})


def test_masks_to_rles_matches_one_by_one():
    masks = np.random.default_rng(5).random((4, 31, 17)) > 0.6
    masks[0], masks[1] = False, True  # empty and full too
    assert masks_to_rles(masks) == [mask_to_rle(m) for m in masks]
    assert [rle_to_mask(r).tolist() for r in masks_to_rles(masks)] == masks.tolist()
    assert masks_to_rles(np.zeros((0, 4, 4), bool)) == []


def test_rle_box_and_the_pycocotools_form():
    mask = np.zeros((20, 30), bool)
    mask[4:9, 10:25] = True
    rle = mask_to_rle(mask)
    encoded = rle_for_pycocotools(rle)
    assert isinstance(encoded["counts"], bytes) and rle_to_mask(encoded).tolist() == mask.tolist()
    assert rle_for_pycocotools(encoded) == encoded  # already bytes: unchanged
    assert rle_box(rle) == [10.0, 4.0, 15.0, 5.0]  # xywh
    assert rle_box(mask_to_rle(np.zeros((20, 30), bool))) == [0.0, 0.0, 0.0, 0.0]
