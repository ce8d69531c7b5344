"""Review helpers: the "needs a look" order, and refinement with SAM 2 from the stored mask (Meta's mask_input)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from annotate.dataset import open_dataset
from annotate.refine import mask_side, mask_to_mask_input
from annotate.review import LOW_FILL, LOW_SCORE, NO_DETECTIONS, SPILL, LookThresholds, fill_and_spill
from sam2_model import ImagePredictor

SQUARE = "0 0.125 0.208333 0.625 0.208333 0.625 0.625 0.125 0.625"  # pixels 8..40 x 10..30 of 64x48
KEY = "images/a"  # keys are paths under the dataset folder, without suffix
THIN = "0 0.1 0.1 0.9 0.9 0.9 0.92"  # a sliver along the diagonal: it fills little of its box


def write_dataset(root, labels: dict[str, str]):
    image = np.full((48, 64, 3), 60, np.uint8)
    image[10:30, 8:40] = (220, 40, 40)
    for name, text in labels.items():
        (root / "images").mkdir(exist_ok=True)
        (root / "labels").mkdir(exist_ok=True)
        cv2.imwrite(str(root / "images" / f"{name}.png"), image)
        if text is not None:
            (root / "labels" / f"{name}.txt").write_text(text)
    return open_dataset(root)


def test_needs_a_look_order_no_detections_then_flagged_worst_first_then_the_rest_reviewed_last(tmp_path):
    dataset = write_dataset(tmp_path, {
        "a_good": f"{SQUARE}\n", "b_empty": "", "c_thin": f"{THIN}\n", "d_low_score": f"{SQUARE} 0.2\n",
        "e_reviewed_empty": "", "f_fine_score": f"{SQUARE} 0.9\n",
    })  # fmt: skip
    dataset.mark_reviewed("images/e_reviewed_empty")
    order = dataset.needs_a_look()
    keys = [entry.key.removeprefix("images/") for entry in order]
    # no detections; flagged, worst first (a sliver fills ~0.1 of its box; score 0.2); the rest by quality (0.9
    # before 1.0); reviewed last
    assert keys == ["b_empty", "c_thin", "d_low_score", "f_fine_score", "a_good", "e_reviewed_empty"]
    reasons = {entry.key.removeprefix("images/"): entry.reasons for entry in order}
    assert reasons["b_empty"] == reasons["e_reviewed_empty"] == (NO_DETECTIONS,)
    assert reasons["c_thin"] == (LOW_FILL,) and reasons["d_low_score"] == (LOW_SCORE,) and reasons["a_good"] == ()
    assert [e.key[7:] for e in dataset.needs_a_look(LookThresholds(min_score=0.95))][:4] == [
        "b_empty", "c_thin", "d_low_score", "f_fine_score"]  # fmt: skip
    with pytest.raises(ValueError, match="min_fill must be in"):
        LookThresholds(min_fill=2)


def test_fill_and_spill_of_a_mask_against_its_stated_box():
    mask = np.zeros((20, 20), bool)
    mask[2:6, 2:12] = True  # 40 pixels filling its box
    assert fill_and_spill(mask, None) == (1.0, 0.0)
    assert fill_and_spill(mask, (2.0, 2.0, 5.0, 4.0)) == (1.0, 0.5)  # half of it beyond the box
    mask[15, 15] = True  # a speck far away: the box grows, the fill drops
    fill, _ = fill_and_spill(mask, None)
    assert fill == pytest.approx(41 / (14 * 14))
    assert fill_and_spill(np.zeros((3, 3), bool), None) == (0.0, 0.0)
    assert SPILL == "spill"


def test_mask_to_mask_input_stretches_the_mask_to_the_square_frame_as_logits():
    mask = np.zeros((40, 100), bool)
    mask[:, :50] = True  # the left half of a wide image: the left half of the square frame
    logits = mask_to_mask_input(mask, 16)
    assert logits.shape == (1, 16, 16) and logits.dtype == np.float32
    np.testing.assert_allclose(logits[0, :, :7], 10.0, atol=1e-5)  # antialiased: exact up to float rounding
    np.testing.assert_allclose(logits[0, :, 9:], -10.0, atol=1e-5)
    with pytest.raises(ValueError, match="HxW mask"):
        mask_to_mask_input(np.zeros((2, 2, 2)), 16)


def test_refine_is_our_predictor_with_the_stored_mask_as_prompt_then_chains_its_logits(tmp_path, small_model):
    dataset = write_dataset(tmp_path, {"a": f"{SQUARE}\n"})
    predictor = ImagePredictor(small_model)
    stored = dataset.instances(KEY)[0]
    clicks, labels = np.array([[20.0, 20.0], [45.0, 40.0]]), np.array([1, 0])
    predictor.set_image(dataset.image(KEY))
    prompt = mask_to_mask_input(stored.mask, mask_side(predictor))
    expected, _, logits = predictor.predict(clicks, labels, mask_input=prompt, multimask_output=False)
    assert expected[0].any(), "the untrained model gives a mask for this prompt"
    dataset.refine_instance(KEY, 0, predictor, clicks, labels)
    refined = dataset.instances(KEY)[0]
    assert np.array_equal(refined.mask, expected[0] > 0) and refined.class_id == stored.class_id
    np.testing.assert_array_equal(refined.low_res_logits, logits)
    second, _, _ = predictor.predict(clicks[:1], labels[:1], mask_input=logits, multimask_output=False)
    dataset.refine_instance(KEY, 0, predictor, clicks[:1], labels[:1])  # the next click starts from SAM 2's logits
    assert np.array_equal(dataset.instances(KEY)[0].mask, second[0] > 0)
    assert [e.action for e in dataset.history] == ["refine", "refine"]
    dataset.undo()
    dataset.undo()
    assert dataset.instances(KEY)[0] is stored
    dataset.refine_instance(KEY, 0, predictor, clicks, labels)
    dataset.save()
    assert (tmp_path / "labels" / "a.txt").read_text() != f"{SQUARE}\n"  # the refined mask's outline
    assert open_dataset(tmp_path).instances(KEY)[0].area > 0
