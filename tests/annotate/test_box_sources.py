"""Boxes you already have become masks: YOLO detection labels and COCO boxes, matched to images and video keyframes by
name, as the detector of auto_annotate; what matches nothing is reported."""

from __future__ import annotations

import json
from contextlib import nullcontext as does_not_raise
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from annotate import auto_annotate
from annotate.__main__ import main as cli_main
from annotate.box_sources import (
    CocoBoxes,
    NoBoxes,
    YoloLabels,
    coco_to_box_source,
    open_box_source,
    yolo_class_names,
    yolo_lines_to_boxes,
)
from annotate.previews import write_h264
from annotate.settings import DetectorSettings

from .clips import FRAMES, HEIGHT, WIDTH, ColourDetector, clip_frames, use_colour_tracker


@pytest.mark.parametrize(
    ("lines", "expected_xyxy", "expected_classes", "expected_confidence", "raises"),
    [
        (["0 0.5 0.5 0.5 0.5"], [[25, 10, 75, 30]], [0], None, does_not_raise()),  # box on a 100x40 image
        (["2 0.5 0.5 0.5 0.5 0.8", "", "1 0.1 0.1 0.2 0.2 0.4"], [[25, 10, 75, 30], [0, 0, 20, 8]], [2, 1],
         [0.8, 0.4], does_not_raise()),  # predictions saved with their confidence; blank lines skipped
        (["3 0.1 0.25 0.9 0.25 0.5 0.75"], [[10, 10, 90, 30]], [3], None, does_not_raise()),  # a YOLO-seg polygon
        (["0 0.5 0.5 0.5 0.5", "1 0.5 0.5 0.5 0.5 0.9"], [[25, 10, 75, 30]] * 2, [0, 1], None, does_not_raise()),
        ([], np.zeros((0, 4)), [], None, does_not_raise()),  # an empty file: nothing here
        (["0 0.5 0.5 0.5"], None, None, None, pytest.raises(ValueError, match=r"labels.txt, line 1: expected")),
        (["cat 0.5 0.5 0.5 0.5"], None, None, None, pytest.raises(ValueError, match="line 1")),
        (["0 0.5 0.5 0.5 0.5", "1.5 0.5 0.5 0.5 0.5"], None, None, None, pytest.raises(ValueError, match="line 2")),
    ],
)  # fmt: skip
def test_yolo_lines_to_boxes(lines, expected_xyxy, expected_classes, expected_confidence, raises):
    with raises:
        xyxy, class_ids, confidence = yolo_lines_to_boxes(lines, (100, 40), "labels.txt")
        np.testing.assert_allclose(xyxy, np.asarray(expected_xyxy, np.float32).reshape(-1, 4), atol=1e-4)
        assert class_ids.tolist() == expected_classes
        if expected_confidence is None:
            assert confidence is None
        else:
            np.testing.assert_allclose(confidence, expected_confidence)


def test_class_names_from_classes_txt_obj_names_or_data_yaml(tmp_path):
    labels = tmp_path / "dataset" / "labels"
    labels.mkdir(parents=True)
    assert yolo_class_names(labels) == {}
    (tmp_path / "dataset" / "data.yaml").write_text(yaml.safe_dump({"names": {0: "person", 3: "car"}}))
    assert yolo_class_names(labels) == {0: "person", 3: "car"}  # ultralytics' layout: data.yaml beside labels/
    (labels / "data.yaml").write_text(yaml.safe_dump({"names": ["a", "b"]}))
    assert yolo_class_names(labels) == {0: "a", 1: "b"}
    (labels / "obj.names").write_text("cat\ndog\n\n")  # CVAT's YOLO 1.1
    assert yolo_class_names(labels) == {0: "cat", 1: "dog"}


COCO = {
    "images": [
        {"id": 10, "file_name": "a.jpg", "width": 100, "height": 40},
        {"id": 11, "file_name": "sub/b.png", "width": 100, "height": 40},
        {"id": 12, "file_name": "clip/000004.jpg", "width": 100, "height": 40},
    ],
    "annotations": [
        {"id": 1, "image_id": 10, "bbox": [10, 5, 20, 10], "category_id": 7},
        {"id": 2, "image_id": 10, "bbox": [50, 0, 60, 50], "category_id": 3},  # reaches past the image: clipped
        {"id": 3, "image_id": 12, "bbox": [0, 0, 5, 5], "category_id": 1},
    ],
    "categories": [{"id": 7, "name": "dog"}, {"id": 1, "name": "person"}, {"id": 3, "name": "cat"}],
}


def test_coco_boxes_are_xyxy_pixels_with_classes_in_category_order():
    source = coco_to_box_source(COCO)
    assert source.names == {0: "person", 1: "cat", 2: "dog"}  # ids 1, 3, 7 -> classes 0, 1, 2
    found = source.detections("a", 100, 40)
    np.testing.assert_allclose(found.xyxy, [[10, 5, 30, 15], [50, 0, 100, 40]])
    assert found.class_id.tolist() == [2, 1] and found.confidence is None
    assert len(source.detections("sub/b", 100, 40)) == 0  # listed without annotations: nothing there
    with pytest.raises(NoBoxes):
        source.detections("c", 100, 40)
    assert source.unmatched(["a"], ["clip"]) == ["sub/b.png"]  # clip/000004.jpg is a frame of the video "clip"


def test_coco_errors_name_the_problem(tmp_path):
    broken = {**COCO, "annotations": [{"image_id": 10, "bbox": [1, 2, 3], "category_id": 7}]}
    with pytest.raises(ValueError, match=r"annotation 0 needs a bbox \[x, y, w, h\]"):
        coco_to_box_source(broken, "boxes.json")
    with pytest.raises(ValueError, match="expected a COCO object"):
        coco_to_box_source({"annotations": []})
    path = tmp_path / "boxes.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="could not be read as a COCO JSON file"):
        open_box_source(path)
    with pytest.raises(ValueError, match="not a box source"):
        open_box_source(tmp_path / "weights.pt")


def test_the_shipped_examples_have_named_boxes():
    from app import examples_dir

    source = open_box_source(examples_dir() / "boxes")
    assert isinstance(source, YoloLabels) and source.names == {0: "ball", 1: "crate", 2: "tree"}
    scene = cv2.imread(str(examples_dir() / "scene.jpg"))
    boxes = source.detections("scene", scene.shape[1], scene.shape[0])
    np.testing.assert_allclose(boxes.xyxy[1], [94, 222, 209, 312], atol=1)  # the crate, as the README's box prompt
    assert source.unmatched(["scene", "scene_2"], ["video"]) == []
    assert all(source.has(f"video/{i:06d}") for i in range(24))


# ------------------------------------------------------------------------------------------------ end to end
def photo_folder(root: Path, scene_image: np.ndarray) -> Path:
    """photos/: a.jpg and sub/b.png (240x320 scenes), c.png (no labels)."""
    folder = root / "photos"
    (folder / "sub").mkdir(parents=True)
    bgr = scene_image[:, :, ::-1]
    cv2.imwrite(str(folder / "a.jpg"), bgr)
    cv2.imwrite(str(folder / "sub" / "b.png"), bgr)
    cv2.imwrite(str(folder / "c.png"), bgr)
    return folder


def test_yolo_labels_become_masks_missing_ones_are_reported_and_annotated_later(tmp_path, scene_image, small_model):
    photos = photo_folder(tmp_path, scene_image)
    labels = tmp_path / "labels"
    (labels / "sub").mkdir(parents=True)
    (labels / "classes.txt").write_text("square\ndisc\n")
    (labels / "a.txt").write_text("0 0.28 0.375 0.375 0.417\n1 0.72 0.667 0.3125 0.417\n")  # the two shapes
    (labels / "sub" / "b.txt").write_text("")  # labelled: nothing here
    (labels / "typo.txt").write_text("0 0.5 0.5 0.1 0.1\n")  # names no image
    output = tmp_path / "out"
    summary = auto_annotate(
        photos, det_model=labels, sam_model=small_model, output_dir=output, formats=["yolo", "coco", "masks"],
        progress=False,
    )  # fmt: skip
    assert (summary.images, summary.labelled, summary.no_detections, summary.failed) == (3, 1, 1, 0)
    assert summary.instances == {"square": 1, "disc": 1}
    assert summary.no_boxes == [str(photos / "c.png")] and summary.unmatched_boxes == ["typo.txt"]
    text = str(summary)
    assert "no boxes for 1 image(s) or video(s), skipped" in text and "c.png" in text and "typo.txt" in text
    assert [line.split()[0] for line in (output / "labels" / "a.txt").read_text().splitlines()] == ["0", "1"]
    assert (output / "labels" / "sub" / "b.txt").read_text() == ""
    assert not (output / "labels" / "c.txt").exists() and not (output / "images" / "c.png").exists()
    assert yaml.safe_load((output / "data.yaml").read_text())["names"] == {0: "square", 1: "disc"}
    coco = json.loads((output / "annotations.json").read_text())
    assert [c["name"] for c in coco["categories"]] == ["square", "disc"] and len(coco["annotations"]) == 2
    assert len(list((output / "masks" / "a").iterdir())) == 2
    summary_json = json.loads((output / "summary.json").read_text())
    assert summary_json["no_boxes"] == ["c.png"] and summary_json["unmatched_boxes"] == ["typo.txt"]

    (labels / "c.txt").write_text("1 0.72 0.667 0.3125 0.417\n")  # its boxes arrive: the rerun does c alone
    again = auto_annotate(photos, det_model=labels, sam_model=small_model, output_dir=output, progress=False)
    assert (again.skipped, again.labelled, again.no_boxes) == (2, 1, [])
    assert (output / "labels" / "c.txt").read_text().split()[0] == "1"


def test_coco_boxes_with_a_class_filter_by_name(tmp_path, scene_image, small_model):
    photos = photo_folder(tmp_path, scene_image)
    coco = {
        "images": [{"id": 1, "file_name": "a.jpg"}, {"id": 2, "file_name": "sub/b.jpg"},
                   {"id": 3, "file_name": "c.png"}],
        "annotations": [
            {"image_id": 1, "bbox": [30, 40, 120, 100], "category_id": 1, "score": 0.9},
            {"image_id": 1, "bbox": [180, 110, 100, 100], "category_id": 2, "score": 0.7},
            {"image_id": 2, "bbox": [180, 110, 100, 100], "category_id": 2},
            {"image_id": 3, "bbox": [30, 40, 120, 100], "category_id": 1},
        ],
        "categories": [{"id": 1, "name": "square"}, {"id": 2, "name": "disc"}],
    }  # fmt: skip
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps(coco))
    summary = auto_annotate(
        photos, det_model=path, sam_model=small_model, output_dir=tmp_path / "out", classes=["disc"], progress=False
    )
    assert summary.instances == {"disc": 2} and summary.no_boxes == [] and summary.unmatched_boxes == []
    assert (tmp_path / "out" / "labels" / "c.txt").read_text() == ""  # its only box is a square: filtered out
    assert (tmp_path / "out" / "labels" / "sub" / "b.txt").read_text().split()[0] == "1"  # b.jpg names b.png


def write_keyframe_labels(folder: Path, frames: list[int], height: int = HEIGHT, width: int = WIDTH) -> None:
    """The colour clip's boxes (red: class 0, green: class 1) for `frames`, as YOLO labels ``<frame>.txt``."""
    folder.mkdir(parents=True, exist_ok=True)
    detector = ColourDetector()
    for frame, image in enumerate(clip_frames()):
        if frame in frames:
            found = detector(image)
            lines = [
                f"{c} {(x1 + x2) / 2 / width} {(y1 + y2) / 2 / height} {(x2 - x1) / width} {(y2 - y1) / height}\n"
                for c, (x1, y1, x2, y2) in zip(found.class_id, found.xyxy, strict=True)
            ]
            (folder / f"{frame:06d}.txt").write_text("".join(lines))


def test_video_keyframes_take_their_boxes_by_frame_name(tmp_path, small_model, monkeypatch):
    use_colour_tracker(monkeypatch)
    media = tmp_path / "media"
    write_h264(clip_frames(), media / "clips" / "street.mp4", fps=10)
    write_h264(clip_frames(), media / "unlabelled.mp4", fps=10)
    labels = tmp_path / "labels"
    (labels / "classes.txt").parent.mkdir(parents=True)
    (labels / "classes.txt").write_text("red\ngreen\n")
    write_keyframe_labels(labels / "clips" / "street", [0, 4, 12, 13])  # keyframes 0, 4, 8, 12, 13: 8 missing
    summary = auto_annotate(
        media, det_model=labels, sam_model=small_model, output_dir=tmp_path / "out", keyframe_interval=4,
        progress=False,
    )  # fmt: skip
    (video,) = summary.videos
    assert video["key"] == "clips/street" and video["frames"] == FRAMES
    assert video["tracks_by_class"] == {"green": 1, "red": 1}  # the green square from frame 5, found on 12
    assert video["keyframes_without_boxes"] == [8]
    assert summary.no_boxes == [str(media / "unlabelled.mp4")]  # no keyframe has boxes: skipped, as an image
    assert not (tmp_path / "out" / "images" / "unlabelled").exists()
    assert "no boxes on keyframe(s) 8" in str(summary)
    first = (tmp_path / "out" / "labels" / "clips" / "street" / "000000.txt").read_text().split()
    assert first[0] == "0"  # red, as its label says


def test_cli_takes_boxes_as_the_detector(tmp_path, scene_image, checkpoints, capsys):
    photos = photo_folder(tmp_path, scene_image)
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.txt").write_text("0 0.28 0.375 0.375 0.417\n")
    code = cli_main([
        str(photos), "--boxes", str(labels), "--untrained", "--sam-model", "sam2.1_t.pt", "--device", "cpu",
        "--output", str(tmp_path / "out"), "--no-progress",
    ])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and "labelled 1" in out and "no boxes for 2 image(s)" in out


def test_a_box_source_is_a_detector_called_with_names():
    from annotate.detectors import make_detector

    source = make_detector(CocoBoxes(names={0: "cat"}), DetectorSettings(classes=["cat"]))
    assert source.keep == frozenset({0}) and source.batched is False and source.by_name is True
    with pytest.raises(ValueError, match="one name per image"):
        source([np.zeros((4, 4, 3), np.uint8)])
