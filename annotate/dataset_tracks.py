"""Track ids of a dataset's video frames, read from its track files (vis.json, MOT ground truth).

A dataset's track id is what its COCO file states: in the folder `auto_annotate` writes, the id unique in the dataset
(vis.json's annotation ``id``, COCO's ``track_id``), while MOT and vis.json's ``track_id`` number a video's tracks
from 1. Without a COCO file a frame's YOLO lines carry no track: each line gets the track whose MOT (else vis.json)
box on that frame overlaps its polygon's box most, its id turned into the dataset-wide one through vis.json.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .dataset_items import Annotation, Video
from .mot import gt_path, mot_line_to_row
from .video_outputs import VIS_FILE

Box = tuple[float, float, float, float]  # xywh pixels


@dataclass
class TrackIndex:
    """vis.json's tracks: video id by sequence name, and the dataset-wide id of each (video id, video track id)."""

    vis: dict[str, Any] | None
    video_ids: dict[str, int] = field(default_factory=dict)
    global_ids: dict[tuple[int, int], int] = field(default_factory=dict)

    @property
    def local_ids(self) -> dict[int, tuple[int, int]]:
        """(video id, video track id) by dataset-wide id."""
        return {v: k for k, v in self.global_ids.items()}


def read_track_index(root: Path) -> TrackIndex:
    """The track index of the dataset folder `root` (empty without a vis.json)."""
    path = root / VIS_FILE
    if not path.is_file():
        return TrackIndex(None)
    vis = json.loads(path.read_text(encoding="utf-8"))
    video_ids = {str(v["name"]): int(v["id"]) for v in vis.get("videos", [])}
    pairs = {(int(a["video_id"]), int(a["track_id"])): int(a["id"]) for a in vis.get("annotations", [])}
    return TrackIndex(vis, video_ids, pairs)


def video_track_boxes(root: Path, video: Video, index: TrackIndex) -> dict[int, list[tuple[int, Box]]]:
    """Each frame's tracks (frame index, 0-based -> [(dataset-wide track id, xywh box)]) from the video's MOT ground
    truth, else from vis.json's boxes; {} when the dataset has neither."""
    video_id = index.video_ids.get(video.sequence)
    by_frame: dict[int, list[tuple[int, Box]]] = {}

    def wide(track: int) -> int:
        return index.global_ids.get((video_id, track), track) if video_id is not None else track

    gt = gt_path(root, video.sequence)
    if gt.is_file():
        for line in gt.read_text(encoding="utf-8").splitlines():
            if line.strip():
                frame, track, box, _, _ = mot_line_to_row(line)
                by_frame.setdefault(frame - 1, []).append((wide(track), box))
    elif index.vis is not None and video_id is not None:
        for annotation in index.vis["annotations"]:
            if int(annotation["video_id"]) == video_id:
                for frame, box in enumerate(annotation.get("bboxes") or []):
                    if box is not None:
                        by_frame.setdefault(frame, []).append((wide(int(annotation["track_id"])), tuple(box)))
    return by_frame


def with_track_ids(annotations: tuple[Annotation, ...], boxes: list[tuple[int, Box]]) -> tuple[Annotation, ...]:
    """`annotations` of one frame, each without a track id given the track whose box overlaps its mask's box most
    (greedy, best overlap first; each track once); those that overlap none keep None."""
    if not boxes or all(a.track_id is not None for a in annotations):
        return annotations
    pairs = sorted(((box_iou(mask_box(a.mask), box), i, track) for i, a in enumerate(annotations)
                    if a.track_id is None for track, box in boxes), reverse=True)  # fmt: skip
    given: dict[int, int] = {}
    for overlap, i, track in pairs:
        if overlap > 0 and i not in given and track not in given.values():
            given[i] = track
    return tuple(replace(a, track_id=given[i], read_track_id=given[i]) if i in given else a
                 for i, a in enumerate(annotations))  # fmt: skip


def mask_box(mask: np.ndarray) -> Box:
    """An HxW bool mask's xywh box in pixels (zeros for an empty mask)."""
    ys, xs = np.nonzero(mask)
    if not len(xs):
        return (0.0, 0.0, 0.0, 0.0)
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min()))


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two xywh boxes."""
    width = min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0])
    height = min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1])
    inter = max(0.0, width) * max(0.0, height)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0
