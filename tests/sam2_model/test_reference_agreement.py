"""Same weights, same prompts, same logits as Meta's `sam2` package (the reference implementation).

Meta's predictor is built from the very checkpoint file our `load_model` reads, so any difference comes from the
predictor code: preprocessing, prompt encoding, decoding or post-processing.
"""

from __future__ import annotations

import numpy as np
import pytest
from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator  # Meta's package: requirements-dev.txt
from sam2.build_sam import build_sam2
from sam2.sam2_image_predictor import SAM2ImagePredictor

from sam2_model import AutomaticMaskGenerator, ImagePredictor
from sam2_model.rle import rle_to_mask
from tests.devices import device_under_test, logit_atol, min_iou

pytestmark = pytest.mark.reference

# float32 on the CPU (measured: at most ~3e-7 in logits and scores); bf16 on CUDA (tests/devices.py)
LOGIT_TOLERANCE = logit_atol(device_under_test())
MIN_IOU = min_iou(device_under_test())


@pytest.fixture(scope="module")
def meta_model(checkpoints, test_device, meta_precision):
    return build_sam2("configs/sam2.1/sam2.1_hiera_t.yaml", ckpt_path=str(checkpoints.meta), device=str(test_device))


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """Non-square and not 1024: exercises the stretch resize and the upsampling back."""
    rng = np.random.default_rng(11)
    image = rng.integers(0, 255, (300, 420, 3), dtype=np.uint8)
    image[60:200, 100:300] = (250, 250, 30)
    return image


@pytest.fixture(scope="module")
def predictors(tiny_model, meta_model, image):
    ours, theirs = ImagePredictor(tiny_model), SAM2ImagePredictor(meta_model)
    ours.set_image(image)
    theirs.set_image(image)
    return ours, theirs


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return 1.0 if union == 0 else float(np.logical_and(a, b).sum() / union)


def assert_agree(ours_out, theirs_out):
    (ours_logits, ours_scores, ours_low), (their_logits, their_scores, their_low) = ours_out, theirs_out
    assert ours_logits.shape == their_logits.shape
    np.testing.assert_allclose(ours_logits, their_logits, atol=LOGIT_TOLERANCE)
    np.testing.assert_allclose(ours_low, their_low, atol=LOGIT_TOLERANCE)
    np.testing.assert_allclose(ours_scores, their_scores, atol=LOGIT_TOLERANCE)
    flat_ours = (ours_logits > 0).reshape(-1, *ours_logits.shape[-2:])
    flat_theirs = (their_logits > 0).reshape(-1, *their_logits.shape[-2:])
    for a, b in zip(flat_ours, flat_theirs, strict=True):
        assert iou(a, b) >= MIN_IOU


CASES = {
    "click": {"point_coords": np.array([[200, 130]]), "point_labels": np.array([1])},
    "clicks_with_negative": {"point_coords": np.array([[200, 130], [40, 260]]), "point_labels": np.array([1, 0])},
    "box": {"box": np.array([100, 60, 300, 200])},
    "box_and_click": {
        "box": np.array([100, 60, 300, 200]),
        "point_coords": np.array([[200, 130]]),
        "point_labels": np.array([1]),
    },
    "several_boxes": {"box": np.array([[100, 60, 300, 200], [10, 10, 90, 120], [250, 150, 410, 290]])},
}


@pytest.mark.parametrize("multimask_output", [True, False])
@pytest.mark.parametrize("case", list(CASES))
def test_prompts_agree_with_meta(predictors, case, multimask_output):
    ours, theirs = predictors
    kwargs = {**CASES[case], "multimask_output": multimask_output, "return_logits": True}
    assert_agree(ours.predict(**kwargs), theirs.predict(**kwargs))


def test_hole_and_speck_filling_agrees_with_meta(tiny_model, meta_model, image, meta_hole_filling):
    """max_hole_area / max_sprinkle_area: Meta fills on the low-res logits before upsampling (a CUDA kernel it skips
    on the CPU, run here on the CPU) and returns the low-res logits unfilled; so do we."""
    options = {"max_hole_area": 8.0, "max_sprinkle_area": 8.0}
    ours, theirs = ImagePredictor(tiny_model, **options), SAM2ImagePredictor(meta_model, **options)
    ours.set_image(image)
    theirs.set_image(image)
    plain = ImagePredictor(tiny_model)
    plain.set_image(image)
    kwargs = {**CASES["click"], "return_logits": True}
    ours_out = ours.predict(**kwargs)
    assert not np.array_equal(ours_out[0], plain.predict(**kwargs)[0]), "nothing was filled: the case is not covered"
    assert_agree(ours_out, theirs.predict(**kwargs))


def test_binary_masks_agree_with_meta(predictors):
    ours, theirs = predictors
    ours_masks, _, _ = ours.predict(**CASES["click"])
    their_masks, _, _ = theirs.predict(**CASES["click"])
    assert ours_masks.dtype == their_masks.dtype
    for a, b in zip(ours_masks, their_masks, strict=True):
        assert iou(a > 0, b > 0) >= MIN_IOU


def test_mask_input_refinement_agrees_with_meta(predictors):
    ours, theirs = predictors
    _, _, low_res = theirs.predict(**CASES["click"], multimask_output=False)
    kwargs = {**CASES["clicks_with_negative"], "mask_input": low_res, "multimask_output": False, "return_logits": True}
    assert_agree(ours.predict(**kwargs), theirs.predict(**kwargs))


def test_batch_agrees_with_meta(tiny_model, meta_model, image):
    images = [image, np.ascontiguousarray(image[::-1, :200])]
    ours, theirs = ImagePredictor(tiny_model), SAM2ImagePredictor(meta_model)
    ours.set_image_batch(images)
    theirs.set_image_batch(images)
    kwargs = {"box_batch": [np.array([100, 60, 300, 200]), np.array([10, 10, 150, 250])], "return_logits": True}
    for ours_out, theirs_out in zip(
        zip(*ours.predict_batch(**kwargs), strict=True), zip(*theirs.predict_batch(**kwargs), strict=True), strict=True
    ):
        assert_agree(ours_out, theirs_out)


@pytest.mark.parametrize("use_m2m", [False, True])
def test_automatic_masks_agree_with_meta(tiny_model, meta_model, image, use_m2m):
    options = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "use_m2m": use_m2m}
    ours = AutomaticMaskGenerator(tiny_model, output_mode="coco_rle", **options).generate(image)
    theirs = SAM2AutomaticMaskGenerator(meta_model, output_mode="coco_rle", **options).generate(image)
    assert len(ours) == len(theirs) > 0
    for a, b in zip(ours, theirs, strict=True):
        assert a["point_coords"] == b["point_coords"]
        assert a["bbox"] == b["bbox"] and a["crop_box"] == b["crop_box"]
        assert abs(a["predicted_iou"] - b["predicted_iou"]) < LOGIT_TOLERANCE
        assert abs(a["stability_score"] - b["stability_score"]) < 1e-2
        assert iou(rle_to_mask(a["segmentation"]), rle_to_mask(b["segmentation"])) >= MIN_IOU


def test_automatic_masks_with_small_region_cleanup_agree_with_meta(tiny_model, meta_model, image, meta_hole_filling):
    """min_mask_region_area: holes and specks up to that many low-res pixels are cleaned before upsampling (Meta's
    predictor does it in a CUDA kernel, run here on the CPU)."""
    options = {"points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0}
    ours = AutomaticMaskGenerator(tiny_model, output_mode="coco_rle", min_mask_region_area=25, **options)
    theirs = SAM2AutomaticMaskGenerator(meta_model, output_mode="coco_rle", min_mask_region_area=25, **options)
    cleaned, reference = ours.generate(image), theirs.generate(image)
    plain = AutomaticMaskGenerator(tiny_model, output_mode="coco_rle", **options).generate(image)
    assert [r["area"] for r in cleaned] != [r["area"] for r in plain], "nothing was cleaned: the case is not covered"
    assert len(cleaned) == len(reference) > 0
    for a, b in zip(cleaned, reference, strict=True):
        assert a["bbox"] == b["bbox"] and a["area"] == b["area"]
        assert iou(rle_to_mask(a["segmentation"]), rle_to_mask(b["segmentation"])) >= MIN_IOU
