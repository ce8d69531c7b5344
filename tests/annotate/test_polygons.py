"""YOLO-seg converters: mask -> polygon line -> mask round trips, and the box fallback."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from ultralytics.data.converter import merge_multi_segment
from ultralytics.utils.ops import masks2segments

import annotate.polygons
from annotate.polygons import (
    box_to_polygon,
    instance_polygon,
    join_parts,
    mask_to_polygon,
    polygon_to_mask,
    polygon_to_yolo_line,
    yolo_line_to_polygon,
)

W, H = 200, 160


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.logical_and(a, b).sum() / np.logical_or(a, b).sum())


def _shapes() -> dict[str, np.ndarray]:
    yy, xx = np.mgrid[:H, :W]
    rectangle = (xx >= 20) & (xx < 120) & (yy >= 30) & (yy < 90)
    circle = (xx - 100) ** 2 + (yy - 80) ** 2 < 50**2
    l_shape = ((xx >= 30) & (xx < 60) & (yy >= 20) & (yy < 140)) | ((xx >= 30) & (xx < 170) & (yy >= 110) & (yy < 140))
    triangle = (yy >= 20) & (yy < 140) & (np.abs(xx - 100) < (yy - 20) * 0.7)
    two_parts = ((xx - 50) ** 2 + (yy - 50) ** 2 < 25**2) | ((xx >= 120) & (xx < 180) & (yy >= 90) & (yy < 150))
    return {"rectangle": rectangle, "circle": circle, "l_shape": l_shape, "triangle": triangle, "two_parts": two_parts}


@pytest.mark.parametrize("name", list(_shapes()))
def test_mask_polygon_line_mask_round_trip(name):
    mask = _shapes()[name]
    line = polygon_to_yolo_line(3, mask_to_polygon(mask), (W, H))
    class_id, polygon = yolo_line_to_polygon(line, (W, H))
    assert class_id == 3
    assert all(0.0 <= float(v) <= 1.0 for v in line.split()[1:])
    assert iou(polygon_to_mask(polygon, (W, H)), mask) >= 0.95


@pytest.mark.parametrize("name", list(_shapes()))
def test_simplified_polygons_are_smaller_and_close(name):
    mask = _shapes()[name]
    exact, simple = mask_to_polygon(mask), mask_to_polygon(mask, simplify=2.0)
    assert 3 <= len(simple) <= len(exact)
    assert iou(polygon_to_mask(simple, (W, H)), mask) >= 0.9


def test_a_mask_in_two_parts_is_one_polygon_covering_both():
    mask = _shapes()["two_parts"]
    polygon = mask_to_polygon(mask)
    assert polygon.ndim == 2 and polygon.shape[1] == 2
    filled = polygon_to_mask(polygon, (W, H))
    assert filled[50, 50] and filled[120, 150]  # both parts inside


def _many_part_masks() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    blobs = np.zeros((H, W), np.uint8)
    for _ in range(6):
        x, y, r = int(rng.integers(0, W)), int(rng.integers(0, H)), int(rng.integers(3, 30))
        cv2.circle(blobs, (x, y), r, 1, -1)
    return {
        "speckle": rng.random((H, W)) > 0.7,  # what an untrained model (or a fence) gives: thousands of parts
        "sparse_dots": rng.random((H, W)) > 0.995,  # single-pixel parts, many exact distance ties
        "blobs": blobs.astype(bool),
        **_shapes(),
    }


@pytest.mark.parametrize("name", list(_many_part_masks()))
@pytest.mark.parametrize("budget", [1 << 22, 1])  # 1: each pair of parts compared alone
def test_polygons_are_point_for_point_ultralytics_masks2segments(name, budget, monkeypatch):
    monkeypatch.setattr(annotate.polygons, "_MAX_POINT_PAIRS", budget)
    mask = _many_part_masks()[name]
    expected = masks2segments(mask[None].astype(np.uint8), strategy="all")[0]
    ours = mask_to_polygon(mask)
    assert ours.dtype == expected.dtype == np.float32
    np.testing.assert_array_equal(ours, expected)


def test_join_parts_matches_merge_multi_segment_on_simplified_parts():
    contours, _ = cv2.findContours(_many_part_masks()["blobs"].astype(np.uint8), cv2.RETR_EXTERNAL,
                                   cv2.CHAIN_APPROX_NONE)  # fmt: skip
    parts = [cv2.approxPolyDP(c, 1.5, True).reshape(-1, 2) for c in contours]
    assert len(parts) > 2
    np.testing.assert_array_equal(join_parts(parts), np.concatenate(merge_multi_segment(parts)))


def test_empty_mask_has_no_polygon():
    assert mask_to_polygon(np.zeros((H, W), bool)).shape == (0, 2)


@pytest.mark.parametrize(
    ("mask", "min_area", "from_mask"),
    [
        (None, 0, False),
        (np.zeros((H, W), bool), 0, False),  # SAM returned an empty mask
        (_shapes()["circle"], 10**6, False),  # smaller than min_area
        (_shapes()["circle"], 0, True),
    ],
)
def test_every_instance_gets_a_polygon(mask, min_area, from_mask):
    box = np.array([10.0, 20.0, 60.0, 90.0])
    polygon, used_mask = instance_polygon(mask, box, min_area=min_area)
    assert used_mask is from_mask
    assert len(polygon) >= 3
    if not from_mask:
        np.testing.assert_array_equal(polygon, box_to_polygon(box))


def test_box_polygon_round_trip():
    polygon = box_to_polygon([10, 20, 60, 90])
    mask = polygon_to_mask(polygon, (W, H))
    ys, xs = np.nonzero(mask)
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == (10, 20, 60, 90)


@pytest.mark.parametrize("line", ["0 0.1 0.2", "0 0.1 0.2 0.3 0.4 0.5", "", "0 0.1 0.2 0.3 0.4 0.5 0.6 0.7"])
def test_bad_lines(line):
    with pytest.raises(ValueError, match="YOLO segment"):
        yolo_line_to_polygon(line, (W, H))


def test_polygon_line_needs_three_points():
    with pytest.raises(ValueError, match="at least 3 points"):
        polygon_to_yolo_line(0, np.zeros((2, 2)), (W, H))
