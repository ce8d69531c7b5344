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
