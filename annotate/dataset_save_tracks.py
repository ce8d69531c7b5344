"""Saving a video whose tracks were edited: its MOT ground truth, its vis.json tracks (and the run's VIS part), and
the COCO file's ``tracks`` list, each rewritten from the video's frames as they are now.

A region that was not redrawn (`Annotation.read_track_id` set) keeps the MOT box and VIS mask its files held under
its old id, so a rewritten file changes only where a track changed; new regions get the box and mask of their mask.
Other videos' files are not touched; vis.json (one file for all videos) is written in the layout `finish_vis` writes,
other videos' entries as they were, and every track keeps its annotation id (the COCO file's ``track_id``).
``tracks/`` (the run's tracker results) is kept: it is what the run found, to evaluate against the corrected
ground truth.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sam2_model.rle import mask_to_rle, mask_to_uncompressed_rle, rle_area, rle_box

from .dataset_items import Annotation, Video
from .dataset_readers import DatasetSource
from .dataset_tracks import TrackIndex, mask_box
from .exporters.base import categories, category_id_to_class_id, class_id_to_category_id
from .mot import gt_path, labels_text, mot_gt_line, mot_line_to_row
from .video_outputs import VIS_FILE, vis_part_path
from .writers import write_atomic

Frames = Sequence[tuple[Annotation, ...]]


def save_video_tracks(source: DatasetSource, video: Video, frames: Frames, index: TrackIndex) -> list[str]:
    """Rewrite `video`'s MOT ground truth and vis.json tracks (the formats `source` holds) from `frames` (its frames
    in order, each its instances now); returns the files written. `index.vis` is updated in place."""
    local = index.local_ids

    def local_id(track: int) -> int:
        return local[track][1] if track in local else track

    written: list[str] = []
    if "mot" in source.formats and gt_path(source.root, video.sequence).is_file():
        written += _write_mot(source, video, frames, local_id)
    video_id = index.video_ids.get(video.sequence)
    if "vis" in source.formats and index.vis is not None and video_id is not None:
        written += _write_vis(source, video, frames, index.vis, video_id, local_id)
    return written


def patch_coco_tracks(source: DatasetSource, video: Video, frames: Frames) -> None:
    """The COCO file's ``tracks`` entries of `video` (id, category_id, video_id) as its frames hold them now, in
    place; nothing for a file without ``tracks``."""
    coco = source.coco
    first = source.items[video.frame_keys[0]].coco_image_id
    if coco is None or not isinstance(coco.get("tracks"), list) or first is None:
        return
    image: dict[str, Any] = next((i for i in coco["images"] if int(i["id"]) == first), {})
    if "video_id" not in image:
        return
    video_id = image["video_id"]
    now: dict[int, int] = {}
    for frame in frames:
        for a in frame:
            if a.track_id is not None:
                now.setdefault(a.track_id, class_id_to_category_id(a.class_id))
    old = {int(t["id"]): t for t in coco["tracks"] if t.get("video_id") == video_id}
    kept = [t for t in coco["tracks"] if t.get("video_id") != video_id]
    mine = [{**old.get(i, {"id": i}), "category_id": c, "video_id": video_id} for i, c in now.items()]
    coco["tracks"] = sorted(kept + mine, key=lambda t: int(t["id"]))


def _write_mot(source: DatasetSource, video: Video, frames: Frames, local_id: Callable[[int], int]) -> list[str]:
    gt = gt_path(source.root, video.sequence)
    old: dict[tuple[int, int], tuple[float, float, float, float]] = {}
    for line in gt.read_text(encoding="utf-8").splitlines():
        if line.strip():
            number, track, box, _, _ = mot_line_to_row(line)
            old[(number, track)] = box
    lines, used = [], set()
    for number, frame in enumerate(frames, start=1):  # MOT frames: 1-based
        for a in frame:
            if a.track_id is None:
                continue
            was = old.get((number, local_id(a.read_track_id))) if a.read_track_id is not None else None
            lines.append(mot_gt_line(number, local_id(a.track_id), was or mask_box(a.mask), a.class_id))
            used.add(a.class_id)
    written = _write_if_changed(gt, "".join(lines))
    written += _write_if_changed(gt.parent / "labels.txt", labels_text(source.names, sorted(used)))
    return written


def _write_vis(
    source: DatasetSource,
    video: Video,
    frames: Frames,
    vis: dict[str, Any],
    video_id: int,
    local_id: Callable[[int], int],
) -> list[str]:
    annotations = vis["annotations"]
    mine = [a for a in annotations if int(a["video_id"]) == video_id]
    by_local = {int(a["track_id"]): a for a in mine}
    length = len(frames)
    tracks: dict[int, dict[str, Any]] = {}
    for index, frame in enumerate(frames):
        for a in frame:
            if a.track_id is None:
                continue
            track = tracks.get(a.track_id)
            if track is None:
                base = by_local.get(local_id(a.track_id)) or _new_track(a, video_id, local_id(a.track_id))
                track = {**base, "category_id": class_id_to_category_id(a.class_id)}
                track.update(segmentations=[None] * length, areas=[None] * length, bboxes=[None] * length)
                tracks[a.track_id] = track
            was = by_local.get(local_id(a.read_track_id)) if a.read_track_id is not None else None
            if was is not None and was["segmentations"][index] is not None:
                for name in ("segmentations", "areas", "bboxes"):
                    track[name][index] = was[name][index]
            else:
                rle = mask_to_rle(a.mask)
                track["segmentations"][index] = mask_to_uncompressed_rle(a.mask)
                track["areas"][index] = rle_area(rle)
                track["bboxes"][index] = [round(v, 2) for v in rle_box(rle)]
    new = [tracks[t] for t in sorted(tracks, key=local_id)]  # video order, then track order, as finish_vis
    at = next((i for i, a in enumerate(annotations) if int(a["video_id"]) == video_id), len(annotations))
    others = [a for a in annotations if int(a["video_id"]) != video_id]
    before = sum(int(a["video_id"]) != video_id for a in annotations[:at])
    vis["annotations"] = others[:before] + new + others[before:]
    used = {category_id_to_class_id(a["category_id"]) for a in vis["annotations"]}
    vis["categories"] = categories(source.names, used)
    written = _write_if_changed(source.root / VIS_FILE, vis_json_text(vis))
    part = vis_part_path(source.root, video.key)
    if part.is_file():
        head = part.read_text(encoding="utf-8").split("\n", 1)[0]
        lines = [head] + [json.dumps({k: v for k, v in a.items() if k not in ("id", "video_id")}) for a in new]
        written += _write_if_changed(part, "".join(f"{line}\n" for line in lines))
    return written


def vis_json_text(vis: Mapping[str, Any]) -> str:
    """vis.json's text in the layout `finish_vis` writes (so that unchanged entries keep their bytes)."""
    videos = ",".join(json.dumps(v) for v in vis["videos"])
    annotations = ",".join(json.dumps(a) for a in vis["annotations"])
    return (f'{{"info": {json.dumps(vis["info"])}, "videos": [{videos}], "annotations": [{annotations}], '
            f'"categories": {json.dumps(vis["categories"])}}}')  # fmt: skip


def _new_track(annotation: Annotation, video_id: int, track: int) -> dict[str, Any]:
    width, height = annotation.resolution_wh
    return {"id": annotation.track_id, "video_id": video_id, "track_id": track, "category_id": 0,
            "score": annotation.score, "width": width, "height": height, "iscrowd": 0}  # fmt: skip


def _write_if_changed(path: Path, text: str) -> list[str]:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return []
    write_atomic(path, text)
    return [str(path)]
