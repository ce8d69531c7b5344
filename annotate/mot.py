"""MOTChallenge files of a video: a ground-truth sequence that MOT tools and CVAT import, and tracker results.

Per video, named by its flat sequence name (``clips__north`` for ``clips/north.mp4``)::

    mot/<sequence>/seqinfo.ini    [Sequence] name, imDir=img1, frameRate, seqLength, imWidth, imHeight, imExt=.jpg
    mot/<sequence>/gt/gt.txt      ground truth: frame,id,left,top,width,height,1,class,1
    mot/<sequence>/gt/labels.txt  class names, line N naming class N (CVAT's "MOT 1.1")
    mot/<sequence>/img1/000001.jpg ...   frame N of the sequence (hard links to the dataset's frames)
    tracks/<sequence>.txt         tracker results: frame,id,left,top,width,height,score,-1,-1,-1

- Frames are 1-based and consecutive over the *written* frames: sequence frame N is the N-th written frame,
  ``images/<video>/<(N - 1) * frame_stride, 6 digits>.jpg``, shown as ``img1/<N, 6 digits>.jpg``; ``seqLength`` is
  the number of written frames and ``frameRate`` their rate (video fps / frame_stride), rounded to an integer as
  the MOT readers parse it.
- Ground truth column 7 is the "consider" flag (1: every row counts; motmetrics loads ground truth with
  ``min_confidence=1`` and TrackEval drops 0s); column 8 the class, YOLO class id + 1 (MOT classes start at 1;
  class 1 is MOT17's "pedestrian", which is also COCO's "person", YOLO class 0); column 9 the visibility (1: we do
  not estimate occlusion).
- Boxes are in pixels, left/top counted from 0 (as Datumaro and CVAT read and write MOT; MOTChallenge's own files
  count from 1, which motmetrics' loader undoes for both sides of a comparison).
- ``tracks/`` is a TrackEval tracker ``data`` folder: the same tracks with each track's score, for evaluating this
  run's tracking against ground truth you corrected.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from .exporters.base import class_id_to_category_id, class_name
from .writers import hard_link, write_atomic

MOT_DIR = "mot"
TRACKS_DIR = "tracks"
IMAGE_DIR = "img1"
IMAGE_EXT = ".jpg"


def mot_gt_line(frame: int, track_id: int, box_xywh: Sequence[float], class_id: int) -> str:
    """One ground-truth row (newline-terminated): `frame` 1-based, box xywh in pixels, `class_id` 0-based (YOLO's;
    written + 1)."""
    left, top, width, height = _box(box_xywh)
    return f"{frame},{track_id},{left},{top},{width},{height},1,{class_id_to_category_id(class_id)},1\n"


def mot_result_line(frame: int, track_id: int, box_xywh: Sequence[float], score: float) -> str:
    """One tracker-results row (newline-terminated): `frame` 1-based, box xywh in pixels, the track's score."""
    left, top, width, height = _box(box_xywh)
    return f"{frame},{track_id},{left},{top},{width},{height},{score:.4f},-1,-1,-1\n"


def mot_line_to_row(line: str) -> tuple[int, int, tuple[float, float, float, float], float, int]:
    """A ground-truth or results row -> (frame, track id, box xywh, column 7, column 8: class or -1)."""
    values = line.strip().split(",")
    if len(values) < 8:
        raise ValueError(f"Not a MOT row (frame,id,left,top,width,height,conf,class,...): {line!r}")
    left, top, width, height = (float(v) for v in values[2:6])
    return int(values[0]), int(values[1]), (left, top, width, height), float(values[6]), int(float(values[7]))


def _box(box_xywh: Sequence[float]) -> tuple[str, ...]:
    return tuple(f"{round(float(v), 2):g}" for v in box_xywh)


def seqinfo_text(name: str, fps: float, length: int, width: int, height: int) -> str:
    """``seqinfo.ini`` of a sequence: exactly the keys MOTChallenge writes (Datumaro accepts no other), the frame
    rate rounded to an integer (>= 1)."""
    if length < 0 or width < 1 or height < 1:
        raise ValueError(f"A sequence needs a length >= 0 and a size, got {length} frames of {width}x{height}.")
    return (
        f"[Sequence]\nname={name}\nimDir={IMAGE_DIR}\nframeRate={max(1, round(fps))}\nseqLength={length}\n"
        f"imWidth={width}\nimHeight={height}\nimExt={IMAGE_EXT}\n"
    )


def labels_text(names: Mapping[int, str], class_ids: Sequence[int] = ()) -> str:
    """``gt/labels.txt``: line N names class id N - 1, for every class id from 0 to the largest of `names` and
    `class_ids` (MOT classes are line numbers, so none can be left out)."""
    last = max([*names, *class_ids], default=-1)
    return "".join(f"{' '.join(class_name(names, i).split())}\n" for i in range(last + 1))


def sequence_folder(output: Path, sequence: str) -> Path:
    return output / MOT_DIR / sequence


def gt_path(output: Path, sequence: str) -> Path:
    return sequence_folder(output, sequence) / "gt" / "gt.txt"


def results_path(output: Path, sequence: str) -> Path:
    return output / TRACKS_DIR / f"{sequence}.txt"


def forget_sequence(output: Path, sequence: str) -> None:
    """Remove a video's MOT files (before it is redone)."""
    shutil.rmtree(sequence_folder(output, sequence), ignore_errors=True)
    results_path(output, sequence).unlink(missing_ok=True)


def write_sequence(output: Path, sequence: str, frames: Sequence[Path], fps: float, width: int, height: int) -> None:
    """A sequence's ``seqinfo.ini`` and ``img1/``: `frames` are the written frames' files in order (sequence frames
    1, 2, ...), `fps` their rate, `width` x `height` their size in pixels."""
    folder = sequence_folder(output, sequence)
    write_atomic(folder / "seqinfo.ini", seqinfo_text(sequence, fps, len(frames), width, height))
    for number, frame in enumerate(frames, start=1):
        hard_link(frame, folder / IMAGE_DIR / f"{number:06d}{IMAGE_EXT}")


def finish_mot(output: Path, sequences: Sequence[str], names: Mapping[int, str]) -> None:
    """Each finished sequence's ``gt/labels.txt`` from the run's class names (known only when the run ends: the
    user's names override the detector's), covering every class its ground truth uses."""
    for sequence in sequences:
        gt = gt_path(output, sequence)
        if not gt.is_file():
            continue
        with open(gt, encoding="utf-8") as rows:
            used = {mot_line_to_row(line)[4] - 1 for line in rows if line.strip()}
        write_atomic(gt.parent / "labels.txt", labels_text(names, sorted(used)))
