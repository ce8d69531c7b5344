"""`open_dataset` and `Dataset`: open -> save is byte-identical, each edit and its undo, files after edits read back
by ultralytics and pycocotools, and a resumed `auto_annotate` keeps every edit and redoes nothing.

Three small datasets: one `auto_annotate` run (three photos segmented by an untrained SAM 2, one clip tracked by
colour; YOLO, COCO and mask PNGs), an ultralytics YOLO-seg dataset with a data.yaml, and a COCO file with polygons
and RLEs, each written by hand.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from annotate import auto_annotate
from annotate.dataset import NothingToUndo, open_dataset
from annotate.exporters.base import RUN_DIR
from annotate.previews import write_h264
from sam2_model.rle import mask_to_rle

from .clips import ColourDetector, clip_frames, use_colour_tracker

PHOTOS = ("shot.png", "sub/pic.png", "photo.png")
SQUARE = "0 0.125 0.208333 0.625 0.208333 0.625 0.625 0.125 0.625"  # pixels 8..40 x 10..30 of 64x48
BOX_WITH_SCORE = "1 0.5 0.5 0.2 0.2 0.3"  # a box label (x y w h) with ultralytics' trailing confidence


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def auto_dataset(tmp_path_factory, small_model) -> tuple[Path, Path]:
    """(input folder, dataset folder) of one auto_annotate run; tests edit copies (`copy_of`)."""
    data = tmp_path_factory.mktemp("review") / "data"
    write_h264(clip_frames(6), data / "clips" / "north.mp4", fps=10)
    for name in PHOTOS:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(data / name), clip_frames(6)[5][:, :, ::-1])
    with pytest.MonkeyPatch.context() as patch:
        use_colour_tracker(patch)
        auto_annotate(data, det_model=ColourDetector(), sam_model=small_model, output_dir=data.parent / "dataset",
                      formats=["yolo", "coco", "masks"], keyframe_interval=3, progress=False)  # fmt: skip
    return data, data.parent / "dataset"


def copy_of(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / folder.name
    shutil.copytree(folder, target, symlinks=True)  # the images stay links to the inputs, as the run wrote them
    return target


@pytest.fixture
def yolo_dataset(tmp_path) -> Path:
    """images/train/{a,b,c}.png with labels/train/a.txt (a square, a box with a score), b.txt empty, c none."""
    image = np.full((48, 64, 3), 60, np.uint8)
    image[10:30, 8:40] = (220, 40, 40)
    for name in "abc":
        (tmp_path / "images" / "train").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(tmp_path / "images" / "train" / f"{name}.png"), image)
    (tmp_path / "labels" / "train").mkdir(parents=True)
    (tmp_path / "labels" / "train" / "a.txt").write_text(f"{SQUARE}\n{BOX_WITH_SCORE}\n")
    (tmp_path / "labels" / "train" / "b.txt").write_text("")
    names = {0: "red", 1: "green"}
    content = {"train": "images/train", "val": "images/train", "names": names}
    (tmp_path / "data.yaml").write_text(yaml.safe_dump(content))
    return tmp_path


@pytest.fixture
def coco_file(tmp_path) -> Path:
    """A COCO file (indented, as other tools write it) with a polygon and an RLE, images beside it in images/."""
    cv2.imwrite(str(tmp_path / "one.png"), np.zeros((40, 50, 3), np.uint8))
    (tmp_path / "images").mkdir()
    shutil.move(tmp_path / "one.png", tmp_path / "images" / "one.png")
    cv2.imwrite(str(tmp_path / "images" / "two.png"), np.zeros((40, 50, 3), np.uint8))
    mask = np.zeros((40, 50), bool)
    mask[5:15, 20:40] = True
    coco = {
        "images": [{"id": 7, "file_name": "one.png", "width": 50, "height": 40},
                   {"id": 9, "file_name": "two.png", "width": 50, "height": 40}],
        "annotations": [
            {"id": 11, "image_id": 7, "category_id": 3, "segmentation": [[2, 2, 12, 2, 12, 12, 2, 12]],
             "area": 100, "bbox": [2, 2, 10, 10], "iscrowd": 0},
            {"id": 12, "image_id": 7, "category_id": 1, "segmentation": mask_to_rle(mask), "area": 200,
             "bbox": [20, 5, 20, 10], "iscrowd": 0, "score": 0.9},
            {"id": 13, "image_id": 9, "category_id": 1, "segmentation": mask_to_rle(mask), "area": 200,
             "bbox": [20, 5, 20, 10], "iscrowd": 0},
        ],
        "categories": [{"id": 1, "name": "cat"}, {"id": 3, "name": "dog"}],
    }  # fmt: skip
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(coco, indent=2))
    return path


def load_everything(dataset) -> None:
    for key in dataset.keys:
        for annotation in dataset.instances(key):
            assert annotation.mask.shape == dataset.resolution_wh(key)[::-1]
    dataset.needs_a_look()


# ---------------------------------------------------------------------------------------- open -> save, no edit
def test_auto_annotate_dataset_opens_with_its_formats_videos_and_saves_byte_identical(auto_dataset, tmp_path):
    folder = copy_of(auto_dataset[1], tmp_path)
    before = snapshot(folder)
    dataset = open_dataset(folder)
    assert dataset.formats == ("yolo", "coco", "masks", "vis", "mot")
    assert [(v.key, v.sequence, len(v.frame_keys)) for v in dataset.videos] == [("clips/north", "clips__north", 6)]
    frames = [item for item in dataset if item.kind == "frame"]
    assert [item.frame_index for item in frames] == list(range(6)) and {i.video for i in frames} == {"clips/north"}
    assert {item.key for item in dataset if item.kind == "image"} == {"shot", "sub/pic", "photo"}
    red = dataset.instances("clips/north/000002")[0]
    assert (red.class_name, red.track_id, red.area) == ("red", 1, 24 * 24)  # the colour tracker's exact square
    load_everything(dataset)
    summary = dataset.save()
    assert (summary.reviewed, summary.edited, summary.untouched, summary.written) == (0, 0, len(dataset), ())
    assert snapshot(folder) == before and not (folder / "review.json").exists()


def test_the_apps_download_of_a_run_opens_as_the_run_without_its_working_files(auto_dataset, tmp_path):
    """The Auto-annotate tab's zip leaves out .auto_annotate: unzipped, it is still the run's dataset (every format,
    the same keys, the videos from vis.json with their tracks), not a bare YOLO folder whose save would leave the
    COCO file and the masks behind."""
    folder = copy_of(auto_dataset[1], tmp_path)
    shutil.rmtree(folder / RUN_DIR)
    before = snapshot(folder)
    dataset = open_dataset(folder)
    assert dataset.formats == ("yolo", "coco", "masks", "vis", "mot")
    assert [(v.key, len(v.frame_keys)) for v in dataset.videos] == [("clips/north", 6)]
    assert {item.key for item in dataset if item.kind == "image"} == {"shot", "sub/pic", "photo"}
    assert dataset.instances("clips/north/000002")[0].track_id == 1
    load_everything(dataset)
    assert dataset.save().written == () and snapshot(folder) == before
    dataset.delete_instance("shot", 0)
    dataset.delete_track("clips/north", 1, from_frame=3)
    written = {Path(p).relative_to(folder).as_posix() for p in dataset.save().written}
    assert {"labels/shot.txt", "annotations.json", "vis.json"} <= written  # every format kept in step
    assert not (folder / RUN_DIR).exists()  # no working files made up
    again = open_dataset(folder)
    assert len(again.instances("shot")) == len(dataset.instances("shot"))
    tracks = [{a.track_id for a in again.instances(k)} for k in again.video("clips/north").frame_keys]
    assert [1 in ids for ids in tracks] == [True] * 3 + [False] * 3 and tracks[5]  # the other track stays


def test_a_yolo_dataset_with_someone_elses_coco_file_beside_it_stays_a_yolo_dataset(yolo_dataset):
    """Only the COCO file auto_annotate wrote makes a folder its run: another one is not read, nor rewritten."""
    other = {"info": {"description": "exported by another tool"}, "images": [{"id": 7, "file_name": "x.jpg"}]}
    (yolo_dataset / "annotations.json").write_text(json.dumps(other))
    dataset = open_dataset(yolo_dataset)
    assert dataset.formats == ("yolo",) and dataset.keys
    labelled = next(key for key in dataset.keys if dataset.instances(key))
    dataset.delete_instance(labelled, 0)
    assert dataset.save().edited == 1
    assert json.loads((yolo_dataset / "annotations.json").read_text()) == other


def test_yolo_dataset_opens_from_data_yaml_and_saves_byte_identical(yolo_dataset):
    before = snapshot(yolo_dataset)
    dataset = open_dataset(yolo_dataset / "data.yaml")
    assert dataset.keys == ("images/train/a", "images/train/b", "images/train/c") and dataset.formats == ("yolo",)
    square, box = dataset.instances("images/train/a")
    assert (square.class_name, square.score, square.area) == ("red", None, 33 * 21)  # corners included
    assert (box.class_name, box.score) == ("green", pytest.approx(0.3))
    assert dataset.instances("images/train/b") == dataset.instances("images/train/c") == ()  # no label: background
    load_everything(dataset)
    assert dataset.save().written == () and snapshot(yolo_dataset) == before
    assert open_dataset(yolo_dataset).keys == dataset.keys  # the folder finds its data.yaml


def test_coco_file_opens_with_its_images_and_saves_byte_identical(coco_file):
    before = snapshot(coco_file.parent)
    dataset = open_dataset(coco_file)
    assert dataset.keys == ("one", "two") and dataset.names == {0: "cat", 2: "dog"}
    polygon, rle = dataset.instances("one")
    assert (polygon.class_id, polygon.class_name, rle.class_name, rle.score) == (2, "dog", "cat", 0.9)
    assert rle.area == 200 and polygon.mask[2:12, 2:12].all()
    load_everything(dataset)
    assert dataset.save().written == () and snapshot(coco_file.parent) == before


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "Dataset not found"), ("[1, 2]", "not a COCO instances file"), ("{", "not a JSON file"),
     ({"images": [{"id": 1, "file_name": "gone.png", "width": 2, "height": 2}], "annotations": []}, "images=")],
)  # fmt: skip
def test_bad_datasets_say_what_was_expected(tmp_path, content, message):
    path = tmp_path / "data.json"
    if content is not None:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(ValueError, match=message):
        open_dataset(path)
    with pytest.raises(ValueError, match="holds no dataset we know"):
        open_dataset(tmp_path)


# --------------------------------------------------------------------------------------------- edits and undo
def test_each_edit_and_its_undo(yolo_dataset):
    dataset = open_dataset(yolo_dataset)
    key = "images/train/a"
    original = dataset.instances(key)
    mask = np.zeros((48, 64), bool)
    mask[40:46, 50:60] = True
    dataset.delete_instance(key, 1)
    assert dataset.instances(key) == original[:1] and dataset.is_changed(key)
    dataset.change_class(key, 0, "green")
    assert (dataset.instances(key)[0].class_id, dataset.instances(key)[0].area) == (1, original[0].area)
    dataset.add_instance(key, mask, 0, score=0.8)
    assert dataset.instances(key)[1].mask.sum() == 60
    dataset.mark_reviewed(key)
    assert dataset.is_reviewed(key)
    assert [e.action for e in dataset.history] == ["reviewed", "add", "change_class", "delete"]  # most recent first
    for action, count in (("reviewed", 2), ("add", 1), ("change_class", 1), ("delete", 2)):
        assert dataset.undo().action == action and len(dataset.instances(key)) == count
    assert dataset.instances(key) == original and not dataset.is_reviewed(key) and not dataset.is_changed(key)
    with pytest.raises(NothingToUndo):
        dataset.undo()
    with pytest.raises(ValueError, match="has 2 instances"):
        dataset.delete_instance(key, 2)
    with pytest.raises(ValueError, match="No class named"):
        dataset.change_class(key, 0, "blue")
    with pytest.raises(ValueError, match="non-empty 48x64 mask"):
        dataset.add_instance(key, mask[:10], 0)


def test_saved_edits_change_only_their_lines_and_are_recorded(yolo_dataset):
    dataset = open_dataset(yolo_dataset)
    dataset.change_class("images/train/a", 1, 0)
    dataset.mark_reviewed("images/train/c")
    summary = dataset.save()
    assert (yolo_dataset / "labels" / "train" / "a.txt").read_text() == f"{SQUARE}\n0 0.5 0.5 0.2 0.2 0.3\n"
    assert not (yolo_dataset / "labels" / "train" / "c.txt").exists()  # reviewed, not edited: nothing to write
    assert (summary.reviewed, summary.edited, summary.untouched) == (1, 1, 1)
    record = json.loads((yolo_dataset / "review.json").read_text())["items"]
    assert record == {"images/train/a": {"reviewed": False, "edited": True},
                      "images/train/c": {"reviewed": True, "edited": False}}  # fmt: skip
    reopened = open_dataset(yolo_dataset)
    assert reopened.is_edited("images/train/a") and reopened.is_reviewed("images/train/c")


def test_frames_are_reviewed_but_not_edited_one_by_one(auto_dataset, tmp_path):
    dataset = open_dataset(copy_of(auto_dataset[1], tmp_path))
    with pytest.raises(ValueError, match="is a frame of the video 'clips/north'"):
        dataset.delete_instance("clips/north/000001", 0)
    dataset.mark_reviewed("clips/north/000001")
    assert dataset.save().reviewed == 1


# --------------------------------------------------------------------- files after edits, read by real readers
def edit_auto_dataset(folder: Path) -> dict[str, int]:
    """Delete, relabel and add on the photos; returns each edited photo's instance count."""
    dataset = open_dataset(folder)
    counts = {key: len(dataset.instances(key)) for key in ("shot", "sub/pic", "photo")}
    assert counts["shot"] >= 2, "the detector finds both squares"
    dataset.delete_instance("shot", 0)
    dataset.change_class("sub/pic", 0, "green")
    mask = np.zeros(dataset.resolution_wh("photo")[::-1], bool)
    mask[2:8, 2:12] = True
    dataset.add_instance("photo", mask, "red")
    dataset.mark_reviewed("photo")
    dataset.save()
    return {"shot": counts["shot"] - 1, "sub/pic": counts["sub/pic"], "photo": counts["photo"] + 1}


def test_edited_files_are_read_back_by_ultralytics_and_pycocotools(auto_dataset, tmp_path):
    from pycocotools.coco import COCO
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    folder = copy_of(auto_dataset[1], tmp_path)
    before = snapshot(folder)
    counts = edit_auto_dataset(folder)
    after = snapshot(folder)
    changed = {name for name in after if before.get(name) != after[name]}
    assert {n for n in changed if n.startswith("labels/")} == {"labels/shot.txt", "labels/sub/pic.txt",
                                                               "labels/photo.txt"}  # fmt: skip
    assert not {n for n in changed if n.startswith(("mot/", "vis.json", "images/", "masks/clips"))}
    data = check_det_dataset(str(folder / "data.yaml"))
    found = {}
    for side in ("train", "val"):
        reader = YOLODataset(img_path=data[side], data=data, task="segment", augment=False, imgsz=96, cache=False)
        found.update({Path(label["im_file"]).relative_to(folder / "images").with_suffix("").as_posix(): label
                      for label in reader.labels})  # fmt: skip
    assert {key: len(found[key]["cls"]) for key in counts} == counts
    assert found["sub/pic"]["cls"][0, 0] == 1  # relabelled green
    coco = COCO(str(folder / "annotations.json"))
    by_name = {image["file_name"]: image["id"] for image in coco.dataset["images"]}
    for key, count in counts.items():
        annotations = coco.loadAnns(coco.getAnnIds(imgIds=by_name[f"{key}.png"]))
        assert len(annotations) == count and all(coco.annToMask(a).sum() == a["area"] for a in annotations)
    assert [a["id"] for a in coco.dataset["annotations"]] == list(range(1, len(coco.dataset["annotations"]) + 1))
    assert len(list((folder / "masks" / "photo").iterdir())) == counts["photo"]


def test_edits_in_a_coco_file_keep_other_annotations_and_ids(coco_file):
    from pycocotools.coco import COCO

    dataset = open_dataset(coco_file)
    dataset.delete_instance("one", 0)
    mask = np.zeros((40, 50), bool)
    mask[30:35, 1:6] = True
    dataset.add_instance("one", mask, "dog")
    dataset.save()
    coco = COCO(str(coco_file))
    assert [a["id"] for a in coco.dataset["annotations"]] == [12, 14, 13]  # kept in place, new id after the last
    new = coco.loadAnns([14])[0]
    assert (new["category_id"], new["area"], coco.annToMask(new).sum()) == (3, 25, 25)


# ----------------------------------------------------------------------------------------- resume after review
@pytest.mark.parametrize("overwrite", [False, True])
def test_resume_after_review_redoes_nothing_reviewed_and_keeps_every_edit(auto_dataset, tmp_path, small_model,
                                                                           monkeypatch, overwrite):  # fmt: skip
    data, original = auto_dataset
    folder = copy_of(original, tmp_path)
    edit_auto_dataset(folder)
    saved = snapshot(folder)
    use_colour_tracker(monkeypatch)
    detector = ColourDetector()
    summary = auto_annotate(data, det_model=detector, sam_model=small_model, output_dir=folder,
                            formats=["yolo", "coco", "masks"], keyframe_interval=3, progress=False,
                            overwrite=overwrite)  # fmt: skip
    resumed = snapshot(folder)
    for name in ("labels/shot.txt", "labels/sub/pic.txt", "labels/photo.txt", "annotations.json", "review.json"):
        assert resumed[name] == saved[name], name  # every edit kept, COCO rebuilt from the edited parts
    if overwrite:  # the unreviewed video is redone; the three edited photos are not
        assert summary.skipped == 3 and summary.images == 3
    else:
        assert detector.calls == 0 and summary.skipped == 4  # three photos and the video


def test_replace_mask_gives_an_instance_a_region_refined_elsewhere_undoably(yolo_dataset):
    dataset = open_dataset(yolo_dataset / "data.yaml")
    key = next(k for k in dataset.keys if k.endswith("/a"))
    old, other = dataset.instances(key)
    mask = np.zeros((48, 64), bool)
    mask[5:20, 5:25] = True
    logits = np.zeros((1, 256, 256), np.float32)
    edit = dataset.replace_mask(key, 0, mask, logits)
    new = dataset.instances(key)[0]
    assert edit.action == "refine" and (new.class_name, new.score) == (old.class_name, old.score)
    np.testing.assert_array_equal(new.mask, mask)
    assert new.low_res_logits is logits and dataset.instances(key)[1] is other  # the other instance is kept
    for bad in (np.zeros((48, 64), bool), np.ones((10, 10), bool)):
        with pytest.raises(ValueError, match="non-empty 48x64 mask"):
            dataset.replace_mask(key, 0, bad)
    dataset.undo()
    assert dataset.instances(key)[0] is old
