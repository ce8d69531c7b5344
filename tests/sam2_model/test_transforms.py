"""Post-processing in `sam2_model.transforms`: hole filling gives the per-mask result in one host round trip."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from sam2_model.transforms import fill_holes_and_sprinkles, low_res_to_mask, low_res_to_masks, small_regions


def per_mask_reference(
    logits: torch.Tensor, threshold: float, max_hole: float, max_sprinkle: float, hole_value: float | None
) -> torch.Tensor:
    """The implementation before batching (one mask at a time, boolean index assignment), kept as the reference."""
    flat = logits.reshape(-1, *logits.shape[-2:])
    result = flat.clone()
    for index, mask_logits in enumerate(flat.float().cpu().numpy()):
        for area_limit, region, new_value in (
            (max_hole, mask_logits <= threshold, threshold + 10.0 if hole_value is None else hole_value),
            (max_sprinkle, mask_logits > threshold, threshold - 10.0),
        ):
            if area_limit <= 0:
                continue
            count, labels, stats, _ = cv2.connectedComponentsWithStats(region.astype(np.uint8), connectivity=8)
            small = [label for label in range(1, count) if stats[label, cv2.CC_STAT_AREA] <= area_limit]
            if small:
                result[index][torch.from_numpy(np.isin(labels, small))] = new_value
    return result.reshape(logits.shape)


def speckled_logits(shape: tuple[int, ...], dtype: torch.dtype, seed: int) -> torch.Tensor:
    """Smooth blobs (large regions) plus salt-and-pepper specks (small holes and sprinkles), a NaN or two."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.normal(size=(*shape[:-2], 6, 6))).float()
    smooth = torch.nn.functional.interpolate(coarse.reshape(-1, 1, 6, 6), shape[-2:], mode="bilinear")
    logits = smooth.reshape(shape) * 4
    specks = torch.from_numpy(rng.random(shape) < 0.02)
    logits = torch.where(specks, -logits, logits)
    logits.view(-1)[rng.integers(0, logits.numel(), 2)] = float("nan")
    return logits.to(dtype)


@pytest.mark.parametrize(
    ("shape", "dtype", "args"),
    [
        ((3, 1, 64, 64), torch.float32, (0.0, 8, 0, 0.1)),  # the video predictor's call
        ((2, 3, 40, 56), torch.float32, (0.0, 8, 8, None)),  # the image predictor's, holes and sprinkles
        ((4, 1, 33, 47), torch.bfloat16, (0.5, 20, 5, None)),  # odd sizes, bf16, another threshold
        ((2, 48, 48), torch.float32, (0.0, 0, 12, None)),  # sprinkles only
    ],
)
def test_fill_holes_matches_the_per_mask_result_with_one_transfer_each_way(monkeypatch, shape, dtype, args):
    """Identical values (bit for bit, NaNs in place) to filling each mask alone; the batch crosses to the host in
    one `.cpu()` and the changes come back in one `.to()`, however many masks change (the per-mask version moved
    one change map per mask, and on a GPU its boolean assignment synchronised once per mask)."""
    logits = speckled_logits(shape, dtype, seed=len(shape) + shape[-1])
    expected = per_mask_reference(logits, *args)
    assert not torch.equal(expected, logits), "the case must change some pixels"

    calls = {"cpu": 0, "to": 0}
    real_cpu, real_to = torch.Tensor.cpu, torch.Tensor.to

    def counting_cpu(self, *a, **k):
        calls["cpu"] += 1
        return real_cpu(self, *a, **k)

    def counting_to(self, *a, **k):
        calls["to"] += 1
        return real_to(self, *a, **k)

    monkeypatch.setattr(torch.Tensor, "cpu", counting_cpu)
    monkeypatch.setattr(torch.Tensor, "to", counting_to)
    result = fill_holes_and_sprinkles(logits, *args[:3], hole_value=args[3])
    assert calls == {"cpu": 1, "to": 1}
    calls.update(cpu=0, to=0)
    on_device = fill_holes_and_sprinkles(logits, *args[:3], hole_value=args[3], components="torch")
    assert calls["cpu"] == 0  # the GPUs' way: nothing crosses to the host (its `.to` calls change dtypes only)
    monkeypatch.undo()

    for got in (result, on_device):
        assert got.dtype == logits.dtype and got.shape == logits.shape
        torch.testing.assert_close(got, expected, atol=0, rtol=0, equal_nan=True)


def test_small_regions_are_opencvs_small_components():
    """`small_regions` (tensor operations only) marks exactly the pixels of OpenCV's 8-connected components of at
    most `max_area` pixels: random masks of every density and size, thin and one-pixel ones, areas from 0 up."""
    rng = np.random.default_rng(11)
    for _ in range(80):
        batch, height, width = int(rng.integers(1, 4)), int(rng.integers(1, 40)), int(rng.integers(1, 40))
        region = rng.random((batch, height, width)) < rng.random()
        max_area = int(rng.integers(0, 30))
        got = small_regions(torch.from_numpy(region), max_area).numpy()
        for mask, marked in zip(region, got, strict=True):
            count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
            small = [label for label in range(1, count) if stats[label, cv2.CC_STAT_AREA] <= max_area]
            np.testing.assert_array_equal(marked, np.isin(labels, small))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: small_regions(torch.zeros(4, 4, dtype=torch.bool), 3), "BxHxW"),
        (lambda: fill_holes_and_sprinkles(torch.zeros(1, 4, 4), 0.0, 3, 0, components="cuda"), "'opencv' or"),
    ],
)
def test_bad_arguments_say_what_was_expected(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize(
    ("count", "low_res_hw", "image_hw", "chunk"),
    [
        (5, (256, 256), (333, 517), 2),  # odd image size, a last chunk of one
        (4, (64, 64), (240, 320), 4),  # the 256-pixel test model's low-res size, one chunk
        (3, (256, 256), (1023, 7), 1),  # a thin odd image, one mask per chunk
        (6, (256, 256), (17, 2049), 100),  # a chunk larger than the batch
    ],
)
def test_batched_upsampling_gives_each_instances_own_mask(count, low_res_hw, image_hw, chunk):
    """`low_res_to_masks` (chunks of instances, one interpolate each) equals `low_res_to_mask` one instance at a
    time, bit for bit, including masks near the threshold."""
    rng = np.random.default_rng(count)
    low_res = torch.from_numpy(rng.normal(scale=3, size=(count, *low_res_hw))).float()
    low_res[0] = 0.0  # every pixel on the threshold
    one_by_one = [low_res_to_mask(low_res[i], image_hw, 0.25) for i in range(count)]
    batched = list(low_res_to_masks(low_res, image_hw, 0.25, device=torch.device("cpu"), chunk=chunk))
    assert len(batched) == count
    for expected, got in zip(one_by_one, batched, strict=True):
        assert got.dtype == np.bool_ and got.shape == image_hw
        np.testing.assert_array_equal(got, expected)


def test_batched_upsampling_refuses_an_empty_chunk():
    with pytest.raises(ValueError, match="chunk must be >= 1"):
        list(low_res_to_masks(torch.zeros(1, 8, 8), (8, 8), chunk=0))
