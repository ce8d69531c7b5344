"""SAM 2's predicted IoU per instance: `auto_annotate` writes it to COCO (``sam2_iou``) for images and video frames,
the dataset reads it back, `needs_a_look` puts the masks SAM 2 doubts first, and files written before the field still
open and resume."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
from pycocotools.coco import COCO

from annotate import auto_annotate
from annotate.batch import BatchAnnotator
from annotate.dataset import open_dataset
from annotate.exporters.base import RUN_DIR
from annotate.images import read_image
from annotate.previews import write_h264
from annotate.refine import mask_side, mask_to_mask_input
from annotate.review import LOW_SAM2_IOU, LookThresholds
from annotate.sam2_tracker import Sam2FrameTracker
from annotate.settings import OutputSettings
from sam2_model import ImagePredictor
from sam2_model.rle import mask_to_rle

from .clips import ColourDetector, clip_frames


class TwoBoxes:
    """Two fixed boxes (in fractions of the image) on every image, with confidences 0.9 and 0.8."""

    def __init__(self) -> None:
        self.names = {0: "square", 1: "disc"}

    def __call__(self, image: np.ndarray) -> sv.Detections:
        h, w = image.shape[:2]
        return sv.Detections(
            xyxy=np.array([[w * 0.1, h * 0.15, w * 0.5, h * 0.6], [w * 0.55, h * 0.45, w * 0.95, h * 0.95]]),
            class_id=np.array([0, 1]),
            confidence=np.array([0.9, 0.8]),
        )


@pytest.fixture
def annotated(tmp_path, scene_image, small_model) -> Path:
    """An auto_annotate dataset (YOLO + COCO) of two photos: the scene and its mirror image."""
    photos = tmp_path / "photos"
    photos.mkdir()
    cv2.imwrite(str(photos / "scene.png"), scene_image[:, :, ::-1])
    cv2.imwrite(str(photos / "mirror.png"), np.ascontiguousarray(scene_image[:, ::-1, ::-1]))
    summary = auto_annotate(photos, det_model=TwoBoxes(), sam_model=small_model, formats=["yolo", "coco"],
                            output_dir=tmp_path / "dataset", progress=False)  # fmt: skip
    return Path(summary.output_dir)


def expected_ious(folder: Path, file_name: str, predictor: ImagePredictor) -> np.ndarray:
    """What our ImagePredictor predicts for the detector's boxes on the dataset's image: 2 IoUs."""
    image = read_image(folder / "images" / file_name)
    predictor.set_image(image)
    boxes = TwoBoxes()(image).xyxy.astype(np.float32)
    _, ious, _ = predictor.predict(box=boxes, multimask_output=False)
    return np.asarray(ious)[:, 0]


def test_coco_holds_sam2s_predicted_iou_per_mask_and_pycocotools_loads_it(annotated, small_model):
    coco = COCO(str(annotated / "annotations.json"))
    predictor = ImagePredictor(small_model)
    for image in coco.loadImgs(coco.getImgIds()):
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
        assert [a["score"] for a in annotations] == [0.9, 0.8]  # the detector's confidence stays in `score`
        expected = expected_ious(annotated, image["file_name"], predictor)
        np.testing.assert_allclose([a["sam2_iou"] for a in annotations], expected, atol=1e-5)  # rounded to 5
        assert coco.annToMask(annotations[0]).sum() == annotations[0]["area"] > 0
    dataset = open_dataset(annotated)
    for key in dataset.keys:
        stated = [a["sam2_iou"] for a in coco.loadAnns(coco.getAnnIds(imgIds=[dataset.item(key).coco_image_id]))]
        assert [a.sam2_iou for a in dataset.instances(key)] == stated  # read back into the Annotation
    for lines in (p.read_text().splitlines() for p in (annotated / "labels").glob("*.txt")):
        assert all(len(line.split()) % 2 == 1 for line in lines)  # class + x y pairs: no room for it in YOLO


def test_a_box_fallback_has_no_sam2_iou(small_model, scene_image, tmp_path):
    annotator = BatchAnnotator(TwoBoxes(), ImagePredictor(small_model), OutputSettings(tmp_path, min_mask_area=10**6))
    detections = TwoBoxes()(scene_image)
    low_res, ious = annotator.segment(scene_image, detections)
    instances = list(annotator.instances(scene_image.shape[:2], detections, low_res, ious))
    assert [i.sam2_iou for i in instances] == [None, None]  # every mask is below min_mask_area: the boxes are used
    kept = BatchAnnotator(TwoBoxes(), ImagePredictor(small_model), OutputSettings(tmp_path))
    assert [i.sam2_iou for i in kept.instances(scene_image.shape[:2], detections, low_res, ious)] == ious.tolist()


def strip_sam2_iou(folder: Path) -> None:
    """Make the dataset as auto_annotate wrote it before the field existed."""
    for path in [folder / "annotations.json", *(folder / RUN_DIR / "coco").rglob("*.json")]:
        text = json.loads(path.read_text())
        for annotation in text["annotations"]:
            annotation.pop("sam2_iou")
        path.write_text(json.dumps(text))


def test_files_without_sam2_iou_open_and_resume(annotated, small_model):
    strip_sam2_iou(annotated)
    before = (annotated / "annotations.json").read_bytes()
    dataset = open_dataset(annotated)
    assert all(a.sam2_iou is None for k in dataset.keys for a in dataset.instances(k))
    assert not any(LOW_SAM2_IOU in e.reasons for e in dataset.needs_a_look())  # unknown: nothing to flag
    detector = TwoBoxes()
    summary = auto_annotate(annotated.parent / "photos", det_model=detector, sam_model=small_model,
                            formats=["yolo", "coco"], output_dir=annotated, progress=False)  # fmt: skip
    assert summary.skipped == 2 and (annotated / "annotations.json").read_bytes() == before  # nothing redone


def test_needs_a_look_puts_low_sam2_iou_first(tmp_path):
    mask = np.zeros((40, 50), bool)
    mask[5:15, 20:40] = True  # fills its box, inside its bbox: only the IoU can flag it
    images, annotations = [], []
    for n, iou in enumerate([0.95, None, 0.3, 0.6], start=1):  # a confident mask, an old file's, two doubted
        images.append({"id": n, "file_name": f"{n}.png", "width": 50, "height": 40})
        cv2.imwrite(str(tmp_path / f"{n}.png"), np.zeros((40, 50, 3), np.uint8))
        annotation = {"id": n, "image_id": n, "category_id": 1, "segmentation": mask_to_rle(mask), "area": 200,
                      "bbox": [20, 5, 20, 10], "iscrowd": 0}  # fmt: skip
        annotations.append(annotation if iou is None else {**annotation, "sam2_iou": iou})
    path = tmp_path / "instances.json"
    path.write_text(json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "x"}]}))
    order = open_dataset(path).needs_a_look()
    assert [(e.key, e.reasons) for e in order] == [("3", (LOW_SAM2_IOU,)), ("4", (LOW_SAM2_IOU,)), ("1", ()),
                                                   ("2", ())]  # fmt: skip
    assert [e.quality for e in order] == [0.3, 0.6, 0.95, 1.0]
    relaxed = open_dataset(path).needs_a_look(LookThresholds(min_sam2_iou=0.5))
    assert [(e.key, e.reasons) for e in relaxed][:2] == [("3", (LOW_SAM2_IOU,)), ("4", ())]
    with pytest.raises(ValueError, match="min_sam2_iou must be in"):
        LookThresholds(min_sam2_iou=1.5)


def test_a_refined_instance_carries_its_refinements_predicted_iou(tmp_path, small_model):
    image = np.full((48, 64, 3), 60, np.uint8)
    image[10:30, 8:40] = (220, 40, 40)
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    cv2.imwrite(str(tmp_path / "images" / "a.png"), image)
    (tmp_path / "labels" / "a.txt").write_text("0 0.125 0.208333 0.625 0.208333 0.625 0.625 0.125 0.625\n")
    dataset = open_dataset(tmp_path)
    predictor = ImagePredictor(small_model)
    clicks, labels = np.array([[20.0, 20.0]]), np.array([1])
    dataset.refine_instance("images/a", 0, predictor, clicks, labels)
    stored = dataset.instances("images/a")[0]
    predictor.set_image(dataset.image("images/a"))
    prompt = mask_to_mask_input(dataset.undo().before.instances[0].mask, mask_side(predictor))
    _, ious, _ = predictor.predict(clicks, labels, mask_input=prompt, multimask_output=False)
    assert stored.sam2_iou == pytest.approx(float(ious[0]))


def test_a_videos_frames_hold_sam2s_predicted_iou_of_each_tracked_mask(tmp_path, small_model, monkeypatch):
    """Each frame instance of a video run states in COCO the IoU SAM 2's tracker predicted for that very mask (the
    newest it gave the track there: a re-prompt or a backward pass replaces the forward one); the dataset reads it
    back, and `needs_a_look` flags frames by it."""
    predicted: dict[tuple[int, int], tuple[str, float]] = {}  # (frame, track) -> (mask's RLE counts, IoU)
    real_kept = Sam2FrameTracker._kept

    def recording_kept(self, frame, rles, ious):
        for track_id, rle in rles.items():
            predicted[(frame, int(track_id))] = (rle["counts"], ious[track_id])
        return real_kept(self, frame, rles, ious)

    monkeypatch.setattr(Sam2FrameTracker, "_kept", recording_kept)
    write_h264(clip_frames(8), tmp_path / "clips" / "street.mp4", fps=10)
    summary = auto_annotate(tmp_path / "clips", det_model=ColourDetector(), sam_model=small_model, formats=["coco"],
                            output_dir=tmp_path / "dataset", keyframe_interval=4, progress=False)  # fmt: skip
    output = Path(summary.output_dir)
    coco = COCO(str(output / "annotations.json"))
    annotations = coco.loadAnns(coco.getAnnIds())
    assert annotations, "the untrained model found no mask on any frame: nothing is checked"
    for annotation in annotations:
        frame = coco.loadImgs([annotation["image_id"]])[0]["frame_index"]
        counts, iou = predicted[(frame, annotation["track_id"])]
        assert annotation["segmentation"]["counts"] == counts  # the newest mask of the track there...
        assert annotation["sam2_iou"] == round(iou, 5)  # ...with its own predicted IoU
    dataset = open_dataset(output)
    stated = {(a["image_id"], a["track_id"]): a["sam2_iou"] for a in annotations}
    for key in dataset.keys:
        image_id = dataset.item(key).coco_image_id
        assert {(image_id, a.track_id): a.sam2_iou for a in dataset.instances(key)}.items() <= stated.items()
    flagged = [e for e in dataset.needs_a_look(LookThresholds(min_sam2_iou=1.0)) if LOW_SAM2_IOU in e.reasons]
    assert {e.key for e in flagged} == {key for key in dataset.keys if dataset.instances(key)}  # no IoU reaches 1
