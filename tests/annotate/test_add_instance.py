"""`Dataset.add_instance_with_sam2`: a new instance from clicks or a box is our ImagePredictor's mask for that
prompt, one undoable edit, saved in every format the dataset holds and read back by pycocotools."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
from pycocotools.coco import COCO

from annotate import auto_annotate
from annotate.dataset import open_dataset
from annotate.exporters.base import RUN_DIR
from sam2_model import ImagePredictor

KEY = "scene"
BOX = np.array([30.0, 40.0, 150.0, 140.0])  # the red rectangle of the scene (xyxy pixels)


class OneBox:
    """One box on the right of every image, class 0."""

    def __init__(self) -> None:
        self.names = {0: "thing", 1: "ball"}

    def __call__(self, image: np.ndarray) -> sv.Detections:
        h, w = image.shape[:2]
        return sv.Detections(xyxy=np.array([[w * 0.55, h * 0.45, w * 0.95, h * 0.95]]), class_id=np.array([0]),
                             confidence=np.array([0.9]))  # fmt: skip


@pytest.fixture
def dataset_folder(tmp_path, scene_image, small_model) -> Path:
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "scene.png"), scene_image[:, :, ::-1])
    summary = auto_annotate(photos, det_model=OneBox(), sam_model=small_model, formats=["yolo", "coco", "masks"],
                            output_dir=tmp_path / "dataset", progress=False)  # fmt: skip
    return Path(summary.output_dir)


def test_a_box_gives_our_predictors_mask_and_undo_restores_the_item(dataset_folder, small_model):
    dataset = open_dataset(dataset_folder)
    before = dataset.instances(KEY)
    predictor = ImagePredictor(small_model)
    predictor.set_image(dataset.image(KEY))
    masks, ious, logits = predictor.predict(box=BOX, multimask_output=False)
    assert masks[0].any(), "the untrained model gives a mask for this box"
    edit = dataset.add_instance_with_sam2(KEY, ImagePredictor(small_model), "ball", box=BOX)
    added = dataset.instances(KEY)[-1]
    assert edit.action == "add" and dataset.instances(KEY)[:-1] == before
    assert np.array_equal(added.mask, masks[0] > 0) and (added.class_id, added.class_name) == (1, "ball")
    assert added.sam2_iou == pytest.approx(float(ious[0])) and added.score is None
    np.testing.assert_array_equal(added.low_res_logits, logits)  # a later refinement starts from SAM 2's logits
    dataset.undo()
    assert dataset.instances(KEY) == before and not dataset.is_changed(KEY)


def test_clicks_add_an_instance_saved_in_every_format(dataset_folder, small_model):
    dataset = open_dataset(dataset_folder)
    clicks, labels = np.array([[90.0, 90.0], [230.0, 160.0]]), np.array([1, 0])
    predictor = ImagePredictor(small_model)
    predictor.set_image(dataset.image(KEY))
    masks, ious, _ = predictor.predict(clicks, labels, multimask_output=True)
    best = int(np.argmax(ious))  # one candidate of three: the one SAM 2 rates highest
    dataset.add_instance_with_sam2(KEY, predictor, 1, clicks, labels, multimask_output=True)
    assert np.array_equal(dataset.instances(KEY)[-1].mask, masks[best] > 0)
    dataset.save()

    coco = COCO(str(dataset_folder / "annotations.json"))
    annotations = coco.loadAnns(coco.getAnnIds())
    assert [a["category_id"] for a in annotations] == [1, 2]
    assert np.array_equal(coco.annToMask(annotations[-1]).astype(bool), masks[best] > 0)
    assert annotations[-1]["sam2_iou"] == pytest.approx(float(ious[best]), abs=1e-5)
    part = json.loads((dataset_folder / RUN_DIR / "coco" / f"{KEY}.json").read_text())
    assert len(part["annotations"]) == 2  # a resumed run rebuilds the COCO file with it
    lines = (dataset_folder / "labels" / f"{KEY}.txt").read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("1 ")
    png = cv2.imread(str(dataset_folder / "masks" / KEY / "1.png"), cv2.IMREAD_GRAYSCALE)
    assert np.array_equal(png > 0, masks[best] > 0)
    reopened = open_dataset(dataset_folder).instances(KEY)[-1]
    assert np.array_equal(reopened.mask, masks[best] > 0) and reopened.sam2_iou == annotations[-1]["sam2_iou"]


def test_a_prompt_is_required(dataset_folder, small_model):
    dataset = open_dataset(dataset_folder)
    with pytest.raises(ValueError, match="Give clicks"):
        dataset.add_instance_with_sam2(KEY, ImagePredictor(small_model), 0)
    with pytest.raises(ValueError, match="No class named"):
        dataset.add_instance_with_sam2(KEY, ImagePredictor(small_model), "dog", box=BOX)
    assert dataset.history == []
