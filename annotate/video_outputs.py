"""``vis.json``: every video's tracks in the YouTube-VIS 2019 layout, which VIS trainers and evaluators read.

- ``videos``: ``id`` (1, 2, ... as in COCO's ``videos``), ``name`` (the flat sequence name), ``width``, ``height``,
  ``length`` and ``file_names``: the frames relative to the dataset's ``mot/`` folder,
  ``<sequence>/img1/<N, 6 digits>.jpg`` (N 1-based: the MOT sequence's frames). Each video's first path part is its
  own name, as YouTube-VIS has it: TrackEval names a sequence by that part, and a shared first folder (two videos of
  ``clips/``) would merge them.
- ``annotations``: one per track with at least one mask written (a track whose masks all fell below
  ``min_mask_area`` is left out: ground truth that nothing could match); ``id`` 1, 2, ... in video order, then track
  order (the COCO file's ``track_id``), ``video_id``, ``track_id`` (its id in the video: the MOT id),
  ``category_id`` (YOLO class id + 1: YouTube-VIS ids start at 1), ``score``, ``segmentations`` (one RLE or null per
  frame), ``areas``, ``bboxes`` (xywh pixels).
- ``categories``: the classes the tracks use, ``{"id": class id + 1, "name"}``.

Masks are uncompressed RLEs (``counts`` a list): the YouTube-VIS tools pass segmentations to pycocotools'
``frPyObjects``, which takes only those. Built from one part per video under ``.auto_annotate/vis/``, so a resumed
run rebuilds it without redoing a video.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from sam2_model.rle import mask_to_uncompressed_rle, rle_area, rle_box, rle_to_mask

from .exporters.base import RUN_DIR, VideoEntry, categories, category_id_to_class_id
from .writers import open_atomic

VIS_FILE = "vis.json"


class VisTrackWriter:
    """Collects a video's masks track by track (each in its own file, so memory does not grow with the video), then
    writes the video's VIS part: its frames and one annotation per track."""

    def __init__(self) -> None:
        self._folder = Path(tempfile.mkdtemp(prefix="vis_tracks_"))
        self.file_names: list[str] = []

    def add_frame(self, file_name: str, masks: Mapping[int, dict[str, Any]]) -> None:
        """The next frame (its dataset file name) and its masks by track id (compressed RLEs)."""
        index = len(self.file_names)
        self.file_names.append(file_name)
        for track_id, rle in masks.items():
            with open(self._folder / f"{track_id}.jsonl", "a", encoding="utf-8") as file:
                file.write(json.dumps([index, rle]) + "\n")

    def write_part(self, path: Path, video: dict[str, Any], tracks: Mapping[int, dict[str, Any]]) -> None:
        """The VIS part at `path`: a line with the video (`video` plus its file names and length), then one line per
        track of `tracks` (id -> {"category_id", "score", ...}) that has a mask, in id order: its per-frame
        segmentations, areas and boxes."""
        length = len(self.file_names)
        with open_atomic(path) as part:
            part.write(json.dumps({**video, "length": length, "file_names": self.file_names}) + "\n")
            for track_id in sorted(tracks):
                if (self._folder / f"{track_id}.jsonl").is_file():  # else null on every frame: left out
                    self._write_track(part, track_id, tracks[track_id], length)

    def _write_track(self, part: IO[Any], track_id: int, fields: dict[str, Any], length: int) -> None:
        segmentations: list[Any] = [None] * length
        areas: list[Any] = [None] * length
        boxes: list[Any] = [None] * length
        with open(self._folder / f"{track_id}.jsonl", encoding="utf-8") as file:
            for line in file:
                index, rle = json.loads(line)
                segmentations[index] = mask_to_uncompressed_rle(rle_to_mask(rle))
                areas[index] = rle_area(rle)
                boxes[index] = [round(v, 2) for v in rle_box(rle)]
        annotation = {"track_id": track_id, **fields, "iscrowd": 0, "segmentations": segmentations}
        part.write(json.dumps({**annotation, "areas": areas, "bboxes": boxes}) + "\n")

    def close(self) -> None:
        shutil.rmtree(self._folder, ignore_errors=True)


def vis_part_path(output: Path, key: str) -> Path:
    return output / RUN_DIR / "vis" / f"{key}.jsonl"


def finish_vis(output: Path, videos: Sequence[VideoEntry], names: Mapping[int, str]) -> Path | None:
    """``vis.json`` from the parts of the finished `videos` (their ids as given; annotation ids in order), categories
    from `names` for every class used; None when no video has a part."""
    parts = [(v.video_id, vis_part_path(output, v.key)) for v in videos]
    parts = [(i, p) for i, p in parts if p.is_file()]
    if not parts:
        return None
    path = output / VIS_FILE
    used: set[int] = set()
    with open_atomic(path) as out:
        out.write('{"info": {"description": "auto_annotate (YOLO on keyframes -> SAM 2 tracks)"}, "videos": [')
        for n, (video_id, part) in enumerate(parts):
            with open(part, encoding="utf-8") as file:
                video = json.loads(file.readline())
            out.write(("," if n else "") + json.dumps({"id": video_id, **video}))
        out.write('], "annotations": [')
        annotation_id = 0
        for video_id, part in parts:
            with open(part, encoding="utf-8") as file:
                file.readline()
                for line in file:
                    annotation = json.loads(line)
                    annotation_id += 1
                    used.add(category_id_to_class_id(annotation["category_id"]))
                    out.write(("," if annotation_id > 1 else "") + json.dumps(
                        {"id": annotation_id, "video_id": video_id, **annotation}
                    ))  # fmt: skip
        out.write(f'], "categories": {json.dumps(categories(names, used))}}}')
    return path
