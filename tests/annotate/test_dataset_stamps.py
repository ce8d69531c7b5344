"""`Dataset.save` never overwrites what another program saved since the dataset read it (`annotate.dataset_stamps`).

Two `Dataset`s on one folder stand for two browser tabs (or the app and a script). The datasets are written here: a
YOLO-seg folder (``a``: two squares, ``b``: none) and a COCO file with two images.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from annotate.dataset import DatasetChangedOnDisk, open_dataset
from annotate.dataset_stamps import stamp_of
from sam2_model.rle import mask_to_rle

LEFT, RIGHT = "0 0.1 0.1 0.4 0.1 0.4 0.4 0.1 0.4", "1 0.6 0.6 0.9 0.6 0.9 0.9 0.6 0.9"
A, B = "images/a", "images/b"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def yolo_folder(tmp_path) -> Path:
    (tmp_path / "images").mkdir()
    (tmp_path / "labels").mkdir()
    for name in "ab":
        cv2.imwrite(str(tmp_path / "images" / f"{name}.png"), np.zeros((40, 50, 3), np.uint8))
    (tmp_path / "labels" / "a.txt").write_text(f"{LEFT}\n{RIGHT}\n")
    (tmp_path / "data.yaml").write_text(yaml.safe_dump({"train": "images", "names": {0: "red", 1: "green"}}))
    return tmp_path


@pytest.fixture
def coco_file(tmp_path) -> Path:
    (tmp_path / "images").mkdir()
    mask = np.zeros((40, 50), bool)
    mask[5:15, 20:40] = True
    images, annotations = [], []
    for number, name in enumerate(("one", "two"), start=1):
        cv2.imwrite(str(tmp_path / "images" / f"{name}.png"), np.zeros((40, 50, 3), np.uint8))
        images.append({"id": number, "file_name": f"{name}.png", "width": 50, "height": 40})
        annotations.append({"id": number, "image_id": number, "category_id": 1, "segmentation": mask_to_rle(mask),
                            "area": 200, "bbox": [20, 5, 20, 10], "iscrowd": 0})  # fmt: skip
    path = tmp_path / "instances.json"
    path.write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "cat"}]})
    )
    return path


def test_a_second_dataset_on_the_folder_refuses_to_overwrite_the_first_ones_save(yolo_folder):
    first, second = open_dataset(yolo_folder), open_dataset(yolo_folder)
    assert len(first.instances(A)) == len(second.instances(A)) == 2  # both read a.txt before either saves
    first.delete_instance(A, 0)
    first.save()
    saved = snapshot(yolo_folder)
    second.change_class(A, 1, "red")
    with pytest.raises(DatasetChangedOnDisk, match=r"Nothing was saved: labels/a\.txt, review\.json changed") as error:
        second.save()
    assert error.value.paths == (yolo_folder / "labels" / "a.txt", yolo_folder / "review.json")
    assert snapshot(yolo_folder) == saved  # the first save's files, byte for byte
    assert second.is_changed(A) and [e.action for e in second.history] == ["change_class"]  # nothing lost
    second.save(force=True)  # asked for: the second's edits win
    assert (yolo_folder / "labels" / "a.txt").read_text() == f"{LEFT}\n0 0.6 0.6 0.9 0.6 0.9 0.9 0.6 0.9\n"


def test_the_same_dataset_saves_again_after_its_own_save(yolo_folder):
    dataset = open_dataset(yolo_folder)
    dataset.change_class(A, 0, "green")
    dataset.save()
    dataset.delete_instance(A, 1)
    dataset.mark_reviewed(B)
    summary = dataset.save()  # its own files: the stamps it recorded when it wrote them
    assert (summary.reviewed, summary.edited) == (1, 1)
    assert (yolo_folder / "labels" / "a.txt").read_text() == f"1{LEFT[1:]}\n"


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda folder: (folder / "labels" / "a.txt").write_text(f"{LEFT}\n"), "labels/a.txt"),  # edited by hand
        (lambda folder: (folder / "labels" / "b.txt").write_text(f"{RIGHT}\n"), "labels/b.txt"),  # created since
        (lambda folder: (folder / "review.json").write_text('{"version": 1, "items": {}}\n'), "review.json"),
    ],
)
def test_a_file_changed_since_it_was_read_is_named_and_nothing_is_written(yolo_folder, change, named):
    dataset = open_dataset(yolo_folder)
    dataset.delete_instance(A, 0)
    dataset.add_instance(B, np.ones((40, 50), bool), "red")
    change(yolo_folder)
    changed = snapshot(yolo_folder)
    with pytest.raises(DatasetChangedOnDisk, match=rf"Nothing was saved: {named} changed on disk since") as error:
        dataset.save()
    assert "open the dataset again" in str(error.value) and snapshot(yolo_folder) == changed


def test_an_untouched_file_changed_elsewhere_does_not_stop_a_save(yolo_folder):
    dataset = open_dataset(yolo_folder)
    dataset.instances(B)
    dataset.delete_instance(A, 0)
    (yolo_folder / "labels" / "b.txt").write_text(f"{RIGHT}\n")  # b was read, but this save does not write it
    dataset.save()
    assert (yolo_folder / "labels" / "b.txt").read_text() == f"{RIGHT}\n"


def test_two_datasets_on_one_coco_file_edit_other_images_but_share_the_file(coco_file):
    first, second = open_dataset(coco_file), open_dataset(coco_file)
    first.delete_instance("one", 0)
    first.save()
    second.delete_instance("two", 0)
    with pytest.raises(DatasetChangedOnDisk, match=r"instances\.json"):
        second.save()
    assert [a["image_id"] for a in json.loads(coco_file.read_text())["annotations"]] == [2]  # the first's save


def test_a_folders_stamp_changes_with_any_of_its_files(tmp_path):
    (tmp_path / "masks").mkdir()
    (tmp_path / "masks" / "0.png").write_bytes(b"one")
    before = stamp_of(tmp_path / "masks")
    assert stamp_of(tmp_path / "masks") == before and stamp_of(tmp_path / "none") is None
    (tmp_path / "masks" / "1.png.tmp").write_bytes(b"two")
    os.replace(tmp_path / "masks" / "1.png.tmp", tmp_path / "masks" / "0.png")  # same size, new inode
    assert stamp_of(tmp_path / "masks") != before
