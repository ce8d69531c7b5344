"""The dataset read back by the tools of the field, as their users run them: ultralytics (YOLO labels and the split),
TrackEval (MOT ground truth, YouTube-VIS), motmetrics (MOT ground truth), Datumaro, CVAT's format library (COCO
with tracks, MOT sequences) and pycocotools.

One dataset for the module: two videos in one folder (``clips/north``, ``clips/south``), a video and an image in a
source folder named ``images``, an image in one named ``labels``, and a photo. Videos are tracked by `ColourTracker`
(exact masks of the coloured squares, instantly), images segmented by an untrained SAM 2: the files are the real
ones, and the tracks' boxes are known exactly.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from annotate import auto_annotate
from annotate.mot import mot_line_to_row
from annotate.previews import write_h264

from .clips import ColourDetector, clip_frames, scripted_sam2_iou, use_colour_tracker

VIDEOS = {"clips/north.mp4": 10, "clips/south.mp4": 8, "images/cam.mp4": 6}  # source -> frames
PHOTOS = ("images/shot.png", "labels/pic.png", "photo.png")
SEQUENCES = {"clips__north": "clips/north", "clips__south": "clips/south", "images___cam": "images_/cam"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, small_model):
    """(summary, dataset folder) of one run over the module's media (see the module's docstring)."""
    data = tmp_path_factory.mktemp("readers") / "data"
    for name, frames in VIDEOS.items():
        write_h264(clip_frames(frames), data / name, fps=10)
    for name in PHOTOS:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(data / name), clip_frames(6)[5][:, :, ::-1])  # a red and a green square
    with pytest.MonkeyPatch.context() as patch:
        use_colour_tracker(patch)
        summary = auto_annotate(
            data, det_model=ColourDetector(), sam_model=small_model, output_dir=data.parent / "dataset",
            formats=["yolo", "coco"], keyframe_interval=4, val_fraction=0.5, progress=False,
        )  # fmt: skip
    assert summary.failed == summary.failed_videos == 0
    return summary, Path(summary.output_dir)


QUIET = {
    **dict.fromkeys(("PRINT_RESULTS", "PRINT_CONFIG", "OUTPUT_SUMMARY", "OUTPUT_DETAILED", "PLOT_CURVES"), False),
    **{"PRINT_ONLY_COMBINED": True, "TIME_PROGRESS": False, "DISPLAY_LESS_PROGRESS": True},
}


def red_box(video_frame: int) -> tuple[float, float, float, float]:
    """The red square's xywh box on a frame of `clip_frames` (exact: the colour tracker's mask)."""
    return (4.0 + 3 * video_frame, 10.0, 24.0, 24.0)


# ------------------------------------------------------------------------------------------------- 1. MOT
def test_mot_sequences_pair_with_their_frames(dataset):
    _, output = dataset
    assert sorted(p.name for p in (output / "mot").iterdir()) == sorted(SEQUENCES)
    for sequence, key in SEQUENCES.items():
        folder = output / "mot" / sequence
        info = (folder / "seqinfo.ini").read_text()
        length = VIDEOS[f"{key.replace('images_', 'images')}.mp4"]
        assert f"name={sequence}\n" in info and f"seqLength={length}\n" in info and "frameRate=10\n" in info
        assert "imDir=img1\n" in info and "imExt=.jpg\n" in info and "imWidth=96\nimHeight=72\n" in info
        assert (folder / "gt" / "labels.txt").read_text() == "red\ngreen\n"
        frames = sorted((folder / "img1").iterdir())
        assert [f.name for f in frames] == [f"{n:06d}.jpg" for n in range(1, length + 1)]  # MOT names frame N so
        for n, frame in enumerate(frames, start=1):
            assert os.path.samefile(frame, output / "images" / key / f"{n - 1:06d}.jpg")  # frame N: video frame N-1
        rows = [mot_line_to_row(line) for line in (folder / "gt" / "gt.txt").read_text().splitlines()]
        assert {consider for *_, consider, _ in rows} == {1.0}  # every row is ground truth to consider
        assert {category for *_, category in rows} == {1, 2}  # red (class 0) -> 1, green (class 1) -> 2
        red = [(frame, box) for frame, _, box, _, category in rows if category == 1]
        assert red == [(n, red_box(n - 1)) for n in range(1, length + 1)]


@pytest.mark.filterwarnings("ignore::DeprecationWarning:motmetrics.*")  # its pandas idioms, on pandas 3
def test_motmetrics_loads_every_ground_truth_row_and_scores_a_perfect_match(dataset, monkeypatch):
    import motmetrics as mm

    monkeypatch.setattr(np, "asfarray", lambda a, dtype=float: np.asarray(a, dtype=dtype), raising=False)  # 1.4.0
    _, output = dataset
    accumulators, names = [], []
    for sequence in SEQUENCES:
        gt_file = output / "mot" / sequence / "gt" / "gt.txt"
        gt = mm.io.loadtxt(str(gt_file), fmt="mot15-2D", min_confidence=1)  # as the MOTChallenge app loads gt
        assert len(gt) == len(gt_file.read_text().splitlines()) > 0
        results = mm.io.loadtxt(str(output / "tracks" / f"{sequence}.txt"), fmt="mot15-2D")
        assert len(results) == len(gt)
        accumulators.append(mm.utils.compare_to_groundtruth(gt, results, "iou", distth=0.5))
        names.append(sequence)
    metrics = mm.metrics.create().compute_many(accumulators, names=names, metrics=["mota", "idf1", "num_switches"])
    assert (metrics["mota"] == 1.0).all() and (metrics["idf1"] == 1.0).all() and (metrics["num_switches"] == 0).all()


def test_trackeval_reads_the_sequences_as_ground_truth_and_the_tracks_as_results(dataset, tmp_path):
    import trackeval

    _, output = dataset
    shutil.copytree(output / "tracks", tmp_path / "ours" / "data")  # a TrackEval tracker folder
    config = {"GT_FOLDER": str(output / "mot"), "TRACKERS_FOLDER": str(tmp_path), "SKIP_SPLIT_FOL": True,
              "SEQ_INFO": dict.fromkeys(SEQUENCES), "PRINT_CONFIG": False}  # fmt: skip
    dataset_reader = trackeval.datasets.MotChallenge2DBox(config)
    assert dataset_reader.seq_lengths == {s: VIDEOS[f"{k.replace('images_', 'images')}.mp4"] for s, k in
                                          SEQUENCES.items()}  # fmt: skip
    evaluator = trackeval.Evaluator(QUIET)
    scores, _ = evaluator.evaluate([dataset_reader], [trackeval.metrics.CLEAR({"PRINT_CONFIG": False})])
    clear = scores["MotChallenge2DBox"]["ours"]["COMBINED_SEQ"]["pedestrian"]["CLEAR"]
    assert clear["CLR_TP"] == sum(VIDEOS.values())  # class 1, MOT's pedestrian: the red square on every frame
    assert clear["MOTA"] == 1.0 and clear["IDSW"] == 0


def test_datumaro_imports_each_sequence_with_its_tracks_and_labels(dataset):
    import datumaro as dm

    _, output = dataset
    for sequence, key in SEQUENCES.items():
        imported = dm.Dataset.import_from(str(output / "mot" / sequence), "mot_seq")  # CVAT's "MOT 1.1"
        labels = [label.name for label in imported.categories()[dm.AnnotationType.label]]
        assert labels == ["red", "green"]
        items = sorted(imported, key=lambda item: int(item.id))
        assert len(items) == len(list((output / "images" / key).iterdir()))
        for item in items:
            assert Path(item.media.path).is_file()
            by_label = {labels[a.label]: a for a in item.annotations}
            assert by_label["red"].get_bbox() == list(red_box(int(item.id) - 1))
            assert by_label["red"].attributes["track_id"] == 1


# --------------------------------------------------------------------------------------------- 2. YouTube-VIS


def test_trackeval_youtube_vis_sees_two_videos_of_one_folder_as_two_sequences(dataset, tmp_path):
    import trackeval
    from pycocotools import mask as mask_utils

    _, output = dataset
    vis = json.loads((output / "vis.json").read_text())
    split = "youtube_vis_train_sub_split"
    (tmp_path / "gt" / split).mkdir(parents=True)
    shutil.copy(output / "vis.json", tmp_path / "gt" / split / "vis.json")
    results = [
        {"video_id": a["video_id"], "category_id": a["category_id"], "score": a["score"],
         "segmentations": [None if s is None else compressed(mask_utils, s) for s in a["segmentations"]]}
        for a in vis["annotations"]
    ]  # fmt: skip
    (tmp_path / "trackers" / split / "ours" / "data").mkdir(parents=True)
    (tmp_path / "trackers" / split / "ours" / "data" / "results.json").write_text(json.dumps(results))
    reader = trackeval.datasets.YouTubeVIS(
        {"GT_FOLDER": f"{tmp_path / 'gt'}/", "TRACKERS_FOLDER": f"{tmp_path / 'trackers'}/", "PRINT_CONFIG": False}
    )
    assert sorted(reader.seq_list) == sorted(SEQUENCES)  # clips/north and clips/south: two sequences
    assert vis["categories"] == [{"id": 1, "name": "red"}, {"id": 2, "name": "green"}]  # 1-based, names kept
    for video in vis["videos"]:
        assert all((output / "mot" / name).is_file() for name in video["file_names"])  # relative to mot/
    scores, _ = trackeval.Evaluator(QUIET).evaluate([reader], [trackeval.metrics.HOTA({"PRINT_CONFIG": False})])
    by_sequence = scores["YouTubeVIS"]["ours"]
    for sequence in SEQUENCES:  # every sequence evaluated once, both tracks found
        for name in ("red", "green"):
            assert np.mean(by_sequence[sequence][name]["HOTA"]["HOTA"]) == pytest.approx(1.0), (sequence, name)


def compressed(mask_utils, segmentation):
    rle = mask_utils.frPyObjects(segmentation, *segmentation["size"])
    return {"size": rle["size"], "counts": rle["counts"].decode("ascii")}


def test_vis_leaves_out_tracks_with_no_mask_and_lists_only_used_categories(tmp_path, small_model, monkeypatch):
    use_colour_tracker(monkeypatch)
    write_h264(clip_frames(6, green_from=0), tmp_path / "clip.mp4", fps=10)
    summary = auto_annotate(
        tmp_path / "clip.mp4", det_model=ColourDetector(), sam_model=small_model, output_dir=tmp_path / "out",
        min_mask_area=650, progress=False, keyframe_interval=3,
    )  # fmt: skip  # red squares (24x24 = 576 pixels) are below min_mask_area on every frame, green ones (728) not
    vis = json.loads((tmp_path / "out" / "vis.json").read_text())
    assert [a["category_id"] for a in vis["annotations"]] == [2]  # green only: no track null on every frame
    assert all(s is not None for s in vis["annotations"][0]["segmentations"])
    assert vis["categories"] == [{"id": 2, "name": "green"}]  # used classes only, 1-based
    assert summary.videos[0]["tracks_by_class"] == {"green": 1}


# ------------------------------------------------------------------------------------------- 3. COCO + video
def test_coco_carries_videos_frames_and_tracks(dataset):
    from pycocotools.coco import COCO

    _, output = dataset
    coco = COCO(str(output / "annotations.json"))
    raw = coco.dataset
    assert [c["id"] for c in raw["categories"]] == [1, 2]
    videos = {v["id"]: v for v in raw["videos"]}
    assert [videos[i]["name"] for i in (1, 2, 3)] == list(SEQUENCES)  # the videos first: vis.json's ids
    assert all(videos[i]["length"] == 1 for i in (4, 5, 6))  # the still images: one-frame videos
    vis = json.loads((output / "vis.json").read_text())
    vis_tracks = {(a["video_id"], a["id"]): a["category_id"] for a in vis["annotations"]}
    for image in raw["images"]:
        assert (output / "images" / image["file_name"]).is_file()  # relative to images/
        video = videos[image["video_id"]]
        if video["length"] > 1:
            assert image["file_name"] == f"{SEQUENCES[video['name']]}/{image['frame_index']:06d}.jpg"
            assert image["frame_id"] == image["frame_index"]  # frame_stride 1
        for annotation in coco.loadAnns(coco.getAnnIds(imgIds=image["id"])):
            assert coco.annToMask(annotation).sum() == annotation["area"] > 0
            assert annotation["video_id"] == image["video_id"]
            if video["length"] > 1:
                track = annotation["track_id"]
                assert annotation["instance_id"] == annotation["attributes"]["track_id"] == track
                assert vis_tracks[(image["video_id"], track)] == annotation["category_id"]  # vis.json's track ids
                # the tracker's predicted IoU of each frame's mask (the colour tracker's, by class)
                assert annotation["sam2_iou"] == scripted_sam2_iou(annotation["category_id"] - 1)
            else:
                assert 0.0 <= annotation["sam2_iou"] <= 1.0  # SAM 2's, on the photos
    assert [(t["id"], t["video_id"], t["category_id"]) for t in raw["tracks"]] == [
        (a["id"], a["video_id"], a["category_id"]) for a in vis["annotations"]
    ]


def test_datumaro_coco_keeps_every_label_and_track(dataset, tmp_path):
    """Datumaro's COCO importer (CVAT's) reads the file, with SAM 2's ``sam2_iou`` on frames and images, into the
    same instances: every mask on its item, with its label and area, and the tracks."""
    import datumaro as dm

    _, output = dataset
    (tmp_path / "annotations").mkdir()
    shutil.copy(output / "annotations.json", tmp_path / "annotations" / "instances_default.json")
    shutil.copytree(output / "images", tmp_path / "images")  # Datumaro refuses images reached through links
    imported = dm.Dataset.import_from(str(tmp_path), "coco_instances")
    labels = [label.name for label in imported.categories()[dm.AnnotationType.label]]
    assert labels == ["red", "green"]
    coco = json.loads((output / "annotations.json").read_text())
    expected = Counter(
        c["name"] for a in coco["annotations"] for c in coco["categories"] if c["id"] == a["category_id"]
    )
    masks = [a for item in imported for a in item.annotations if a.type == dm.AnnotationType.mask]
    assert Counter(labels[m.label] for m in masks if m.label is not None) == expected  # class 0 ("red") kept
    assert all("sam2_iou" in a for a in coco["annotations"])  # the extra key does not stop the import
    files = {image["id"]: image["file_name"].rsplit(".", 1)[0] for image in coco["images"]}
    written = Counter((files[a["image_id"]], a["category_id"] - 1, a["area"]) for a in coco["annotations"])
    found = Counter((item.id, m.label, int(m.image.sum())) for item in imported for m in item.annotations
                    if m.type == dm.AnnotationType.mask)  # fmt: skip
    assert found == written
    in_videos = [item for item in imported if item.id.rsplit("/", 1)[0] in SEQUENCES.values()]
    assert len(in_videos) == sum(VIDEOS.values())
    assert all("track_id" in a.attributes for item in in_videos for a in item.annotations)  # CVAT's tracks


# ------------------------------------------------------------------------------ 4 and 5. ultralytics, the split
def test_ultralytics_finds_every_label_with_source_folders_named_images_and_labels(dataset):
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset

    summary, output = dataset
    data = check_det_dataset(str(output / "data.yaml"))
    found: dict[str, Counter] = {}
    for side in ("train", "val"):
        reader = YOLODataset(img_path=data[side], data=data, task="segment", augment=False, imgsz=96, cache=False)
        for label in reader.labels:
            found[Path(label["im_file"]).relative_to(output / "images").as_posix()] = Counter(
                int(c) for c in label["cls"].reshape(-1)
            )
    ours = {
        p.relative_to(output / "labels").with_suffix("").as_posix(): Counter(int(line.split()[0]) for line in
                                                                              p.read_text().splitlines())
        for p in (output / "labels").rglob("*.txt")
    }  # fmt: skip
    assert {name.rsplit(".", 1)[0]: counts for name, counts in found.items()} == ours  # every label, each class
    assert {"images_/shot.png", "labels/pic.png", "images_/cam/000000.jpg"} <= set(found)
    assert sum(ours.values(), Counter()) == {0: summary.instances["red"], 1: summary.instances["green"]}


def test_the_split_holds_out_whole_videos_and_images(dataset):
    summary, output = dataset
    assert yaml.safe_load((output / "data.yaml").read_text())["val"] == "val.txt"
    train, val = ((output / name).read_text().splitlines() for name in ("train.txt", "val.txt"))
    assert train and val and not set(train) & set(val)
    assert {line.split("/", 2)[2] for line in train + val} == {
        *(p.replace("images/", "images_/", 1) for p in PHOTOS),
        *(f"{key}/{n:06d}.jpg" for key in SEQUENCES.values() for n in range(len(os.listdir(output / "images" / key)))),
    }
    for key in SEQUENCES.values():
        sides = {line in val for line in train + val if line.startswith(f"./images/{key}/")}
        assert len(sides) == 1, f"{key} is on both sides"

    def unit(line: str) -> str:
        name = line.split("/", 2)[2]
        return next((key for key in SEQUENCES.values() if name.startswith(f"{key}/")), name)

    assert len({unit(line) for line in val}) == (len(PHOTOS) + len(VIDEOS)) // 2  # val_fraction 0.5 of 6
    assert summary.split["val"] == len(val) and summary.split["train"] == len(train)


def test_no_split_only_when_asked_for_or_nothing_to_hold_out(tmp_path, small_model, monkeypatch, caplog):
    use_colour_tracker(monkeypatch)
    write_h264(clip_frames(4), tmp_path / "clips" / "a.mp4", fps=10)
    write_h264(clip_frames(4), tmp_path / "clips" / "b.mp4", fps=10)
    common = {"det_model": ColourDetector(), "sam_model": small_model, "progress": False}
    asked = auto_annotate(tmp_path / "clips", output_dir=tmp_path / "none", val_fraction=0, **common)
    assert yaml.safe_load((tmp_path / "none" / "data.yaml").read_text())["val"] == "train.txt"
    assert not (tmp_path / "none" / "val.txt").exists() and asked.split["val_is_train"]
    split = auto_annotate(tmp_path / "clips", output_dir=tmp_path / "split", **common)  # default 0.1: one of two
    assert (split.split["train_videos"], split.split["val_videos"]) == (1, 1) and not split.split["val_is_train"]
    one = auto_annotate(tmp_path / "clips" / "a.mp4", output_dir=tmp_path / "one", **common)
    assert one.split["val_is_train"] and "nothing to hold out" in caplog.text  # one video: still trains
    with pytest.raises(ValueError, match="val_fraction must be"):
        auto_annotate(tmp_path / "clips", output_dir=tmp_path / "bad", val_fraction=1.0, **common)


def test_the_apps_dataset_zip_holds_every_file_and_imports_unzipped(dataset, tmp_path):
    import zipfile

    import datumaro as dm

    from app.exports import zip_dataset

    _, output = dataset
    archive = zip_dataset(output, tmp_path / "dataset.zip")
    names = set(zipfile.ZipFile(archive).namelist())
    for sequence in SEQUENCES:
        assert {f"mot/{sequence}/gt/gt.txt", f"mot/{sequence}/gt/labels.txt", f"mot/{sequence}/seqinfo.ini",
                f"mot/{sequence}/img1/000001.jpg", f"tracks/{sequence}.txt"} <= names  # fmt: skip
    assert {"data.yaml", "train.txt", "val.txt", "annotations.json", "vis.json", "labels/images_/shot.txt"} <= names
    zipfile.ZipFile(archive).extractall(tmp_path / "unzipped")  # hard links and symlinks arrive as files
    imported = dm.Dataset.import_from(str(tmp_path / "unzipped" / "mot" / "clips__north"), "mot_seq")
    assert all(Path(item.media.path).is_file() for item in imported) and len(imported) == VIDEOS["clips/north.mp4"]
