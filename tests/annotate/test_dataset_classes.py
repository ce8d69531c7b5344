"""New classes in a reviewed dataset (`Dataset.add_class`, `annotate.dataset_classes`): a class added and used is saved
in every format the dataset holds and read back by the real readers (ultralytics for data.yaml, pycocotools for
COCO, our reader for every layout); names no format reads back the same are refused with what to change.

The datasets are `test_dataset`'s: an `auto_annotate` run, a YOLO-seg data.yaml (names as a mapping, or as a list
with ``nc``), a YOLO folder with classes.txt, and a COCO file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from annotate import auto_annotate
from annotate.dataset import open_dataset
from annotate.dataset_classes import MAX_CLASS_NAME, check_class_name, class_id_of

from .clips import ColourDetector, use_colour_tracker
from .test_dataset import auto_dataset, coco_file, copy_of, yolo_dataset  # noqa: F401 (fixtures)

# Names YAML would read as something else unquoted (a boolean, null, a number, a mapping, a comment, a list), and
# names beyond ASCII: each must come back as typed
TRICKY = ["bicycle", "yes", "null", "1.5", "a: b", "#tag", "- x", "red car", "Fahrrad (groß)", "自転車", "🚲"]


def dataset_of(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """What `open_dataset` opens for each layout: a copy of the fixture's files."""
    if kind == "auto_annotate":
        return copy_of(request.getfixturevalue("auto_dataset")[1], tmp_path)
    if kind == "coco":
        return request.getfixturevalue("coco_file")
    folder = request.getfixturevalue("yolo_dataset")
    if kind == "yaml_list":
        content = yaml.safe_load((folder / "data.yaml").read_text())
        content.update(names=["red", "green"], nc=2)
        (folder / "data.yaml").write_text(yaml.safe_dump(content))
    if kind == "classes_txt":
        (folder / "data.yaml").unlink()
        (folder / "classes.txt").write_text("red\ngreen\n")
        return folder
    return folder / "data.yaml"


def ultralytics_classes(data_yaml: Path, image: Path) -> tuple[dict[int, str], list[int]]:
    """(class names, the image's label classes) as ultralytics reads them for training."""
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    data = check_det_dataset(str(data_yaml))
    labels = {}
    for side in ("train", "val"):  # the image may be in either split (images are links: compare paths unresolved)
        reader = YOLODataset(img_path=data[side], data=data, task="segment", augment=False, imgsz=64, cache=False)
        labels.update({Path(label["im_file"]).absolute(): label for label in reader.labels})
    return data["names"], [int(c) for c in labels[image.absolute()]["cls"][:, 0]]


@pytest.mark.parametrize("kind", ["auto_annotate", "yaml_mapping", "yaml_list", "classes_txt", "coco"])
def test_a_new_class_is_saved_in_every_format_and_read_back_by_the_real_readers(kind, request, tmp_path):
    from pycocotools.coco import COCO

    path = dataset_of(kind, request, tmp_path)
    dataset = open_dataset(path)
    key = min((k for k in dataset.keys if dataset.item(k).kind == "image"), key=lambda k: len(dataset.instances(k)))
    before = dataset.names
    class_id = dataset.add_class(" 自転車 ")
    assert class_id == max(before) + 1 and dataset.names[class_id] == "自転車" and dataset.added_classes == ("自転車",)
    assert dataset.add_class("自転車") == class_id and dataset.add_class(before[0]) == 0  # known names: their ids
    mask = np.zeros(dataset.resolution_wh(key)[::-1], bool)
    mask[2:9, 3:12] = True
    dataset.add_instance(key, mask, "自転車")
    count = len(dataset.instances(key))
    summary = dataset.save()

    again = open_dataset(path)
    assert again.names == {**before, class_id: "自転車"}
    assert [a.class_name for a in again.instances(key)][-1] == "自転車" and len(again.instances(key)) == count
    image = again.item(key).image_path
    if kind in ("auto_annotate", "yaml_mapping", "yaml_list"):
        data_yaml = path / "data.yaml" if path.is_dir() else path
        names, classes = ultralytics_classes(data_yaml, image)
        assert names == again.names and classes[-1] == class_id and len(classes) == count
        assert str(data_yaml) in summary.written
        if kind == "yaml_list":  # the file's own form, with its count
            content = yaml.safe_load(data_yaml.read_text(encoding="utf-8"))
            assert content["names"] == ["red", "green", "自転車"] and content["nc"] == 3
    if kind == "classes_txt":
        assert (path / "classes.txt").read_text(encoding="utf-8") == "red\ngreen\n自転車\n"
    if kind in ("auto_annotate", "coco"):
        coco = COCO(str(path / "annotations.json" if path.is_dir() else path))
        assert coco.loadCats(class_id + 1)[0]["name"] == "自転車"
        image_id = next(i["id"] for i in coco.dataset["images"] if Path(i["file_name"]).name == image.name)
        added = coco.loadAnns(coco.getAnnIds(imgIds=image_id))[-1]
        assert added["category_id"] == class_id + 1 and coco.annToMask(added).sum() == mask.sum()


def test_names_yaml_would_misread_come_back_as_typed_in_ultralytics_and_pycocotools(request, tmp_path):
    from pycocotools.coco import COCO

    folder = dataset_of("auto_annotate", request, tmp_path)
    dataset = open_dataset(folder)
    ids = [dataset.add_class(name) for name in TRICKY]
    dataset.save()
    names, _ = ultralytics_classes(folder / "data.yaml", dataset.item("photo").image_path)
    assert [names[i] for i in ids] == TRICKY
    assert [c["name"] for c in COCO(str(folder / "annotations.json")).loadCats([i + 1 for i in ids])] == TRICKY
    assert [open_dataset(folder).names[i] for i in ids] == TRICKY


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("", "cannot be empty"),
        ("   ", "cannot be empty"),
        ("x" * (MAX_CLASS_NAME + 1), f"at most {MAX_CLASS_NAME}"),
        ("two\nlines", "a control character"),
        ("tab\there", "a control character"),
        ("next\x85line", "a control character"),  # NEL: a line break to YAML
        ("car\u200b", "an invisible character"),  # zero-width space: "car" twice
        ("line\u2028separator", "a line separator"),
        (3, "must be text"),
    ],
)
def test_bad_class_names_are_refused_with_what_to_change(name, message):
    with pytest.raises(ValueError, match=message):
        check_class_name(name)


def test_adding_needs_named_classes_and_undo_leaves_the_class(yolo_dataset):  # noqa: F811
    dataset = open_dataset(yolo_dataset)
    mask = np.zeros((48, 64), bool)
    mask[1:5, 1:5] = True
    dataset.add_instance("images/train/b", mask, dataset.add_class("blue"))
    dataset.undo()  # the instance goes; the class stays (it is not an edit), and is saved
    dataset.save()
    assert open_dataset(yolo_dataset).names == {0: "red", 1: "green", 2: "blue"}

    (yolo_dataset / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "val": "images/train"}))
    with pytest.raises(ValueError, match="names no class"):
        open_dataset(yolo_dataset).add_class("blue")


def test_a_class_added_in_review_stays_named_in_a_later_run(auto_dataset, tmp_path, small_model, monkeypatch):  # noqa: F811
    """auto_annotate into the reviewed folder again: its detector names red and green only; the class stays named."""
    from ultralytics.data.utils import check_det_dataset

    data, original = auto_dataset
    folder = copy_of(original, tmp_path)
    dataset = open_dataset(folder)
    class_id = dataset.add_class("bicycle")
    mask = np.zeros(dataset.resolution_wh("photo")[::-1], bool)
    mask[2:9, 3:12] = True
    dataset.add_instance("photo", mask, class_id)
    dataset.mark_reviewed("photo")
    dataset.save()
    use_colour_tracker(monkeypatch)  # the run's detector names only red and green
    auto_annotate(data, det_model=ColourDetector(), sam_model=small_model, output_dir=folder,
                  formats=["yolo", "coco", "masks"], keyframe_interval=3, progress=False)  # fmt: skip
    assert check_det_dataset(str(folder / "data.yaml"))["names"][class_id] == "bicycle"
    assert open_dataset(folder).names[class_id] == "bicycle"
    assert open_dataset(folder).instances("photo")[-1].class_name == "bicycle"


@pytest.mark.parametrize(
    ("new_class", "expected"),
    [(1, 1), ("crate", 1), ("ball", 0), (7, pytest.raises(ValueError, match=r"No class id 7; the dataset's classes")),
     ("tree", pytest.raises(ValueError, match=r"No class named 'tree'; the dataset's classes: \['ball', 'crate'\]"))],
)  # fmt: skip
def test_a_class_is_found_by_its_id_or_its_name(new_class, expected):
    names = {0: "ball", 1: "crate"}
    if isinstance(expected, int):
        assert class_id_of(names, new_class) == expected
    else:
        with expected:
            class_id_of(names, new_class)
