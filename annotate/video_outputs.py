"""The files a video adds to a dataset beside its frames' labels: MOT-challenge tracks and YouTube-VIS instances.

- ``tracks/<video>.txt``: one line per object per frame, ``frame,id,left,top,width,height,score,class,1``
  (MOT16/17 ground-truth layout: frame 1-based, its number in the video + 1; box in pixels; the track's score where
  MOT ground truth has its "consider" flag, so TrackEval and motmetrics read it as ground truth or as results).
- ``vis.json``: the YouTube-VIS 2019 layout (``videos`` with their frames' ``file_names`` relative to ``images/``,
  as YouTube-VIS names them relative to its frames folder; ``annotations`` with one RLE or null per frame;
  ``categories``), which VIS trainers and evaluators read. Its masks are uncompressed RLEs (``counts`` a list):
  the YouTube-VIS tools pass segmentations to pycocotools' ``frPyObjects``, which takes only those. Built from one
  part per video under ``.auto_annotate/vis/``, so a resumed run rebuilds it without redoing a video.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

from sam2_model.formats import mask_to_uncompressed_rle, rle_area, rle_box, rle_to_mask

from .exporters.base import RUN_DIR
from .writers import open_atomic

VIS_FILE = "vis.json"


def mot_line(video_frame: int, track_id: int, box_xywh: Sequence[float], score: float, class_id: int) -> str:
    """One MOT-challenge row (see the module's docstring), newline-terminated."""
    left, top, width, height = (round(float(v), 2) for v in box_xywh)
    return f"{video_frame + 1},{track_id},{left:g},{top:g},{width:g},{height:g},{score:.4f},{class_id},1\n"


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
        track of `tracks` (id -> {"category_id", "score"}): its per-frame segmentations, areas and boxes."""
        length = len(self.file_names)
        with open_atomic(path) as part:
            part.write(json.dumps({**video, "length": length, "file_names": self.file_names}) + "\n")
            for track_id, fields in tracks.items():
                self._write_track(part, track_id, fields, length)

    def _write_track(self, part: IO[Any], track_id: int, fields: dict[str, Any], length: int) -> None:
        segmentations: list[Any] = [None] * length
        areas: list[Any] = [None] * length
        boxes: list[Any] = [None] * length
        source = self._folder / f"{track_id}.jsonl"
        if source.is_file():
            with open(source, encoding="utf-8") as file:
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


def finish_vis(output: Path, keys: Sequence[str], names: Mapping[int, str]) -> Path | None:
    """``vis.json`` from the parts of the videos `keys` (video ids follow their order; annotation ids in order),
    categories from `names` and every class used; None when no video has a part."""
    parts = [(i, vis_part_path(output, key)) for i, key in enumerate(keys, start=1)]
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
                    used.add(int(annotation["category_id"]))
                    out.write(("," if annotation_id > 1 else "") + json.dumps(
                        {"id": annotation_id, "video_id": video_id, **annotation}
                    ))  # fmt: skip
        categories = [{"id": i, "name": names.get(i, f"class_{i}")} for i in sorted(set(names) | used)]
        out.write(f'], "categories": {json.dumps(categories)}}}')
    return path
