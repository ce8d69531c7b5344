"""Track ids and track edits on the videos of a dataset: ids read back without a COCO file (from MOT and vis.json),
and each track edit (class, delete from a frame on, merge, swap) undoable, saved to YOLO, COCO, VIS and MOT, read
back by pycocotools, motmetrics and TrackEval, the other video's files byte-identical.

One module-scoped `auto_annotate` run over two clips (a red square on every frame, a green one from frame 2; tracked
by colour), in every format, and one in YOLO only; tests edit copies.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from annotate import auto_annotate
from annotate.dataset import open_dataset
from annotate.dataset_tracks import mask_box
from annotate.previews import write_h264

from .clips import ColourDetector, clip_frames, use_colour_tracker

CLIPS = {"clips/north.mp4": 7, "clips/south.mp4": 5}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, small_model) -> dict[str, Path]:
    """{"all": a dataset with YOLO, COCO and mask PNGs (and vis.json, MOT), "yolo": one with YOLO labels only}."""
    data = tmp_path_factory.mktemp("tracks") / "data"
    for name, count in CLIPS.items():
        write_h264(clip_frames(count, green_from=2), data / name, fps=10)
    folders = {}
    for name, formats in (("all", ["yolo", "coco", "masks"]), ("yolo", ["yolo"])):
        with pytest.MonkeyPatch.context() as patch:
            use_colour_tracker(patch)
            auto_annotate(data, det_model=ColourDetector(), sam_model=small_model, output_dir=data.parent / name,
                          formats=formats, keyframe_interval=2, progress=False)  # fmt: skip
        folders[name] = data.parent / name
    return folders


@pytest.fixture
def copy_of(tmp_path):
    def copy(folder: Path) -> Path:
        target = tmp_path / folder.name
        shutil.copytree(folder, target, symlinks=True)
        return target

    return copy


def frame_tracks(dataset, video: str) -> list[dict[int, str]]:
    """Each frame's {track id: class name}."""
    return [{a.track_id: a.class_name for a in dataset.instances(k)} for k in dataset.video(video).frame_keys]


# ------------------------------------------------------------------------------------------------ 1. track ids
def test_frames_without_a_coco_file_get_the_track_ids_of_their_mot_and_vis_files(runs, copy_of):
    with_coco, yolo_only = open_dataset(runs["all"]), open_dataset(copy_of(runs["yolo"]))
    assert "coco" not in yolo_only.formats and {"vis", "mot"} <= set(yolo_only.formats)
    for video in ("clips/north", "clips/south"):
        expected = frame_tracks(with_coco, video)
        assert frame_tracks(yolo_only, video) == expected
        assert all(None not in frame for frame in expected) and sum(map(len, expected)) > len(expected)
    north = set().union(*frame_tracks(yolo_only, "clips/north"))
    south = set().union(*frame_tracks(yolo_only, "clips/south"))
    assert north.isdisjoint(south)  # ids unique in the dataset, as the COCO file and vis.json number them


def test_without_mot_files_the_ids_come_from_vis_json(runs, copy_of):
    folder = copy_of(runs["yolo"])
    shutil.rmtree(folder / "mot")
    vis = json.loads((folder / "vis.json").read_text())
    expected = {(a["video_id"], a["track_id"]): a["id"] for a in vis["annotations"]}
    assert frame_tracks(open_dataset(folder), "clips/south") == frame_tracks(open_dataset(runs["all"]), "clips/south")
    assert len(expected) == 4


# ------------------------------------------------------------------------------------------------ 2. track edits
NORTH, RED, GREEN = "clips/north", 1, 2  # the red square is track 1 on frames 0-6, the green one track 2 on 2-6
RED_CLASS, GREEN_CLASS = 0, 1
GREEN_BOX = [60.0, 40.0, 28.0, 26.0]


def red_box(frame: int) -> list[float]:
    return [4.0 + 3 * frame, 10.0, 24.0, 24.0]


def south_files(folder: Path) -> dict[str, bytes]:
    return {k: v for k, v in snapshot(folder).items() if "south" in k}


def mot_rows(folder: Path) -> dict[int, dict[int, tuple[list[float], int]]]:
    """The north sequence's ground truth as motmetrics loads it: frame (0-based) -> {id: (xywh box, class id)}."""
    import motmetrics as mm

    gt = mm.io.loadtxt(str(folder / "mot" / "clips__north" / "gt" / "gt.txt"), fmt="mot15-2D", min_confidence=1)
    rows: dict[int, dict[int, tuple[list[float], int]]] = {}
    for (frame, track), row in gt.iterrows():  # motmetrics makes boxes 0-based: MOTChallenge's are 1-based
        box = [row["X"] + 1, row["Y"] + 1, row["Width"], row["Height"]]
        rows.setdefault(int(frame) - 1, {})[int(track)] = (box, int(row["ClassId"]) - 1)
    return rows


def vis_tracks(folder: Path) -> dict[int, dict[int, tuple[list[float], int]]]:
    """vis.json's north tracks decoded with pycocotools: frame -> {annotation id: (mask's xywh box, class id)}."""
    from pycocotools import mask as mask_utils

    vis = json.loads((folder / "vis.json").read_text())
    north = next(v["id"] for v in vis["videos"] if v["name"] == "clips__north")
    frames: dict[int, dict[int, tuple[list[float], int]]] = {}
    for annotation in vis["annotations"]:
        if annotation["video_id"] != north:
            continue
        for frame, segmentation in enumerate(annotation["segmentations"]):
            if segmentation is not None:
                rle = mask_utils.frPyObjects(segmentation, *segmentation["size"])
                box = [float(v) for v in mask_utils.toBbox(rle)]
                frames.setdefault(frame, {})[annotation["id"]] = (box, annotation["category_id"] - 1)
    return frames


def coco_tracks(folder: Path) -> dict[int, dict[int, tuple[list[float], int]]]:
    """annotations.json's north frames read by pycocotools: frame -> {track_id: (mask's xywh box, class id)}."""
    from pycocotools import mask as mask_utils
    from pycocotools.coco import COCO

    coco = COCO(str(folder / "annotations.json"))
    frames: dict[int, dict[int, tuple[list[float], int]]] = {}
    for image in coco.dataset["images"]:
        if image["file_name"].startswith("clips/north/"):
            for annotation in coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]])):
                box = [float(v) for v in mask_utils.toBbox(coco.annToRLE(annotation))]
                assert annotation["attributes"]["track_id"] == annotation["track_id"]  # where CVAT reads it
                frames.setdefault(image["frame_id"], {})[annotation["track_id"]] = (box, annotation["category_id"] - 1)
    return frames


def yolo_classes(folder: Path) -> list[list[int]]:
    """Each north frame's YOLO label classes, line by line."""
    labels = sorted((folder / "labels" / "clips" / "north").glob("*.txt"))
    return [[int(line.split()[0]) for line in path.read_text().splitlines()] for path in labels]


def test_a_merge_after_a_cut_is_saved_as_the_expected_ids_in_every_format(runs, copy_of):
    """The id switch undone: the red track cut from frame 4, the green track merged into it from frame 4."""
    folder = copy_of(runs["all"])
    south = south_files(folder)
    dataset = open_dataset(folder)
    dataset.delete_track(NORTH, RED, from_frame=4)
    merged = dataset.merge_tracks(NORTH, keep=RED, absorb=GREEN, from_frame=4)
    assert merged.action == "merge_tracks" and len(merged.edits) == 3  # frames 4, 5, 6
    summary = dataset.save()
    assert summary.edited == 3
    expected = {f: {RED: (red_box(f), RED_CLASS)} for f in (0, 1)}
    expected |= {f: {RED: (red_box(f), RED_CLASS), GREEN: (GREEN_BOX, GREEN_CLASS)} for f in (2, 3)}
    expected |= {f: {RED: (GREEN_BOX, RED_CLASS)} for f in (4, 5, 6)}  # the green region, as track 1, red
    assert mot_rows(folder) == expected
    assert vis_tracks(folder) == expected
    assert coco_tracks(folder) == expected
    assert yolo_classes(folder) == [[0], [0], [0, 1], [0, 1], [0], [0], [0]]
    assert south_files(folder) == south  # the other video's files, byte for byte
    reopened = open_dataset(folder)
    assert frame_tracks(reopened, NORTH)[4:] == [{RED: "red"}] * 3


def test_track_edits_in_a_dataset_without_coco_are_saved_to_mot_and_vis(runs, copy_of):
    folder = copy_of(runs["yolo"])
    south = south_files(folder)
    dataset = open_dataset(folder)
    dataset.swap_tracks(NORTH, RED, GREEN, from_frame=5)
    dataset.save()
    expected = {f: {RED: (red_box(f), RED_CLASS)} for f in (0, 1)}
    expected |= {f: {RED: (red_box(f), RED_CLASS), GREEN: (GREEN_BOX, GREEN_CLASS)} for f in (2, 3, 4)}
    expected |= {f: {GREEN: (red_box(f), GREEN_CLASS), RED: (GREEN_BOX, RED_CLASS)} for f in (5, 6)}
    assert mot_rows(folder) == expected
    assert vis_tracks(folder) == expected
    assert yolo_classes(folder) == [[0], [0], [0, 1], [0, 1], [0, 1], [1, 0], [1, 0]]  # classes follow the ids
    assert south_files(folder) == south
    names = ["red", "green"]
    assert frame_tracks(open_dataset(folder), NORTH) == [
        {i: names[c] for i, (_, c) in f.items()} for f in expected.values()
    ]


def test_trackeval_sees_the_corrected_switch_against_the_runs_tracks(runs, copy_of, tmp_path):
    import trackeval

    folder = copy_of(runs["all"])
    dataset = open_dataset(folder)
    dataset.delete_track(NORTH, RED, from_frame=4)
    dataset.merge_tracks(NORTH, keep=RED, absorb=GREEN, from_frame=4)
    dataset.save()
    assert (folder / "tracks" / "clips__north.txt").read_bytes() == (
        runs["all"] / "tracks" / "clips__north.txt"
    ).read_bytes()
    shutil.copytree(folder / "tracks", tmp_path / "trackers" / "ours" / "data")
    config = {"GT_FOLDER": str(folder / "mot"), "TRACKERS_FOLDER": str(tmp_path / "trackers"), "SKIP_SPLIT_FOL": True,
              "SEQ_INFO": {"clips__north": None}, "PRINT_CONFIG": False}  # fmt: skip
    quiet = {**dict.fromkeys(("PRINT_RESULTS", "PRINT_CONFIG", "OUTPUT_SUMMARY", "OUTPUT_DETAILED", "PLOT_CURVES"),
                             False), "TIME_PROGRESS": False}  # fmt: skip
    scores, _ = trackeval.Evaluator(quiet).evaluate([trackeval.datasets.MotChallenge2DBox(config)],
                                                    [trackeval.metrics.CLEAR({"PRINT_CONFIG": False})])  # fmt: skip
    clear = scores["MotChallenge2DBox"]["ours"]["clips__north"]["pedestrian"]["CLEAR"]
    # ground truth track 1 (class 1, pedestrian) is the run's track 1 on frames 0-3 and its track 2 on 4-6
    assert (clear["CLR_TP"], clear["IDSW"]) == (7, 1)


def test_class_change_and_whole_track_delete_update_every_track_list(runs, copy_of):
    folder = copy_of(runs["all"])
    south = south_files(folder)
    dataset = open_dataset(folder)
    dataset.change_track_class(NORTH, RED, "green")
    dataset.delete_track(NORTH, GREEN)
    dataset.save()
    expected = {f: {RED: (red_box(f), GREEN_CLASS)} for f in range(7)}
    assert mot_rows(folder) == vis_tracks(folder) == coco_tracks(folder) == expected
    coco = json.loads((folder / "annotations.json").read_text())
    assert [(t["id"], t["category_id"]) for t in coco["tracks"]] == [(RED, 2), (3, 1), (4, 2)]  # south: 3 and 4
    vis = json.loads((folder / "vis.json").read_text())
    assert [a["id"] for a in vis["annotations"]] == [RED, 3, 4]  # ids kept: the COCO file's track ids
    assert (folder / "mot" / "clips__north" / "gt" / "labels.txt").read_text() == "red\ngreen\n"
    assert sorted(p.name for p in (folder / "masks" / "clips" / "north" / "000003").iterdir()) == ["track_1.png"]
    assert south_files(folder) == south


def test_track_edits_undo_frame_by_frame_together_and_say_what_is_wrong(runs, copy_of):
    folder = copy_of(runs["all"])
    before = snapshot(folder)
    dataset = open_dataset(folder)
    loaded = [dataset.instances(k) for k in dataset.video(NORTH).frame_keys]
    dataset.swap_tracks(NORTH, RED, GREEN, from_frame=2)
    assert dataset.change_track_class(NORTH, GREEN, "green").edits == ()  # already green: nothing to undo
    dataset.change_track_class(NORTH, GREEN, "red")
    assert frame_tracks(dataset, NORTH)[3] == {GREEN: "red", RED: "red"}
    assert [e.action for e in dataset.history] == ["track_class", "swap_tracks"]
    dataset.undo()
    assert frame_tracks(dataset, NORTH)[3] == {GREEN: "green", RED: "red"}  # each region took its new track's class
    dataset.undo()
    assert [dataset.instances(k) for k in dataset.video(NORTH).frame_keys] == loaded
    assert not any(dataset.is_changed(k) for k in dataset.keys)
    frames = dataset.video(NORTH).frame_keys
    dataset.mark_reviewed(frames[1])
    accepted = dataset.mark_reviewed(NORTH)  # a video's key: every frame accepted, one edit
    assert accepted.action == "reviewed" and [e.key for e in accepted.edits] == [k for k in frames if k != frames[1]]
    assert all(dataset.is_reviewed(k) for k in frames) and dataset.mark_reviewed(NORTH).edits == ()  # nothing new
    dataset.undo()
    assert [dataset.is_reviewed(k) for k in frames] == [k == frames[1] for k in frames]  # one undo, all of it
    dataset.undo()
    with pytest.raises(ValueError, match=r"both on frames \[2, 3, 4, 5, 6\]"):
        dataset.merge_tracks(NORTH, keep=RED, absorb=GREEN, from_frame=0)
    with pytest.raises(ValueError, match="No track 9 on this video; its tracks: \\[1, 2\\]"):
        dataset.delete_track(NORTH, 9)
    with pytest.raises(ValueError, match="give 0 to 6"):
        dataset.swap_tracks(NORTH, RED, GREEN, from_frame=7)
    with pytest.raises(ValueError, match="No video 'clips/east'"):
        dataset.delete_track("clips/east", RED)
    dataset.swap_tracks(NORTH, RED, GREEN, from_frame=4)
    dataset.swap_tracks(NORTH, RED, GREEN, from_frame=4)  # back as it was: the files keep their bytes
    dataset.save()
    after = snapshot(folder)
    assert sorted(k for k in after if after[k] != before.get(k)) == ["review.json"]


def test_a_resumed_run_keeps_the_track_edits(runs, copy_of, small_model):
    folder = copy_of(runs["all"])
    dataset = open_dataset(folder)
    dataset.delete_track(NORTH, RED, from_frame=4)
    dataset.merge_tracks(NORTH, keep=RED, absorb=GREEN, from_frame=4)
    dataset.save()
    saved = snapshot(folder)
    with pytest.MonkeyPatch.context() as patch:
        use_colour_tracker(patch)
        detector = ColourDetector()
        auto_annotate(runs["all"].parent / "data", det_model=detector, sam_model=small_model, output_dir=folder,
                      formats=["yolo", "coco", "masks"], keyframe_interval=2, progress=False)  # fmt: skip
    assert detector.calls == 0  # nothing redone: the edited video is a person's work
    resumed = snapshot(folder)
    assert (
        mot_rows(folder)
        == vis_tracks(folder)
        == coco_tracks(folder)
        == mot_rows(runs["all"]) | {f: {RED: (GREEN_BOX, RED_CLASS)} for f in (4, 5, 6)}
    )
    assert sorted(k for k in resumed if resumed[k] != saved.get(k)) == ["summary.json"]  # the run's new summary
    # annotations.json and vis.json, rebuilt from the run's parts, are the bytes the save wrote


# ------------------------------------------------------------------------------------ 3. correct and re-propagate
def test_a_corrected_track_is_repropagated_by_sam2_over_its_range_only(runs, copy_of, small_model):
    import numpy as np

    from sam2_model import VideoPredictor

    folder = copy_of(runs["all"])
    dataset = open_dataset(folder)
    keys = dataset.video(NORTH).frame_keys
    loaded = [dataset.instances(k) for k in keys]
    mask = np.zeros((72, 96), bool)
    mask[36:70, 56:92] = True  # a looser green region on frame 4
    predictor = VideoPredictor(small_model)
    edit = dataset.correct_track(NORTH, GREEN, 4, mask, predictor, forward=1, backward=1)
    # what our VideoPredictor gives for that prompt on those frames, run directly
    session = predictor.init_state([dataset.image(k) for k in keys[3:6]])
    predictor.add_new_mask(session, 1, 1, mask)
    direct = {4: mask}
    for reverse in (False, True):
        for index, _, logits in predictor.propagate_in_video(session, 1, 1, reverse=reverse):
            if index != 1:  # the corrected frame keeps the person's mask
                direct[3 + index] = (logits[0, 0] > 0).cpu().numpy()
    predictor.close_state(session)
    now = [dataset.instances(k) for k in keys]
    for f in range(7):
        red_now, red_then = ([a for a in frame if a.track_id == RED] for frame in (now[f], loaded[f]))
        assert red_now == red_then  # the same objects: the other track is untouched
        green = [a for a in now[f] if a.track_id == GREEN]
        if f in (3, 4, 5):
            assert [g.mask.tolist() for g in green] == ([direct[f].tolist()] if direct[f].any() else [])
            assert all(g.class_name == "green" and g.read_track_id is None for g in green)
        else:
            assert now[f] is loaded[f]  # frames out of the range: untouched
    assert edit.action == "correct_track" and {e.key for e in edit.edits} <= set(keys[3:6])
    assert keys[4] in {e.key for e in edit.edits}
    dataset.save()
    rows, then = mot_rows(folder), mot_rows(runs["all"])
    assert [rows.get(f, {}).get(RED) for f in range(7)] == [then[f][RED] for f in range(7)]
    for f in (3, 4, 5):
        assert rows.get(f, {}).get(GREEN) == ((list(mask_box(direct[f])), GREEN_CLASS) if direct[f].any() else None)
    assert vis_tracks(folder) == coco_tracks(folder) == rows
    dataset.undo()
    assert [dataset.instances(k) for k in keys] == loaded
