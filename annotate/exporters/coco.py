"""COCO instances: one JSON with RLE masks, assembled from one small part per image (so a resumed run can rebuild
it without redoing the images already written).

Conventions (the readers of the field: pycocotools, Datumaro and so CVAT's import, TAO, mmtracking's CocoVID):

- ``images[].file_name`` is relative to the dataset's ``images/`` folder (``clips/north/000003.jpg``).
- ``category_id`` is the YOLO class id + 1 (Datumaro/CVAT take 0 for background: class 0 would lose its label);
  ``categories`` lists every class the detector names, and any other class used.
- ``score`` is the detector's confidence; ``sam2_iou`` SAM 2's predicted IoU of the mask (its ``iou_predictions``:
  absent when the region fell back to the detector's box, and on video frames, whose tracker gives none). Readers
  keep or ignore extra annotation fields (pycocotools keeps them).
- Video frames (when the dataset has videos): ``videos`` (``id``, ``name`` = the sequence name, ``width``,
  ``height``, ``length``, ``fps``; ids as in vis.json), ``images[].video_id``, ``frame_id`` (0-based position among
  the video's written frames, as mmtracking counts) and ``frame_index`` (the frame's number in the video, as TAO
  counts); annotations carry ``video_id``, ``track_id`` and ``instance_id`` (one id per track, unique in the file:
  the vis.json annotation id of the track) and ``attributes.track_id`` (where Datumaro and CVAT read tracks), and
  ``tracks`` lists them (TAO). Still images of such a dataset are one-frame videos after the real ones
  (mmtracking's ``load_img_as_vid`` convention), so every image has a ``video_id``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sam2_model.rle import rle_area, rle_box

from ..writers import write_atomic
from .base import RUN_DIR, DatasetIndex, Exporter, ImageEntry, Instance, categories, class_id_to_category_id

COCO_FILE = "annotations.json"
DESCRIPTION = "auto_annotate (YOLO boxes -> SAM 2 masks)"


def instance_to_coco_annotation(instance: Instance) -> dict[str, Any]:
    """The fields of a COCO annotation for one instance: category_id (class id + 1), segmentation (compressed RLE),
    area (pixels), bbox (xywh pixels, pycocotools' box of the RLE) and, when the instance has them, score (the
    detector's confidence), sam2_iou (SAM 2's predicted IoU of the mask) and track_id (the track's id in its video;
    `CocoExporter.finish` makes it unique in the file)."""
    rle = instance.rle
    annotation: dict[str, Any] = {
        "category_id": class_id_to_category_id(instance.class_id),
        "segmentation": rle,
        "area": rle_area(rle),
        "bbox": [round(v, 2) for v in rle_box(rle)],
    }
    if instance.score is not None:
        annotation["score"] = round(float(instance.score), 5)
    if instance.sam2_iou is not None:
        annotation["sam2_iou"] = round(float(instance.sam2_iou), 5)
    if instance.track_id is not None:
        annotation["track_id"] = int(instance.track_id)
    return annotation


class CocoExporter(Exporter):
    """COCO instances with RLE masks in ``file_name`` (``annotations.json``); ``description`` goes in its info."""

    format = "coco"

    def __init__(self, output: Path, file_name: str = COCO_FILE, description: str | None = DESCRIPTION) -> None:
        super().__init__(output)
        self.file_name = file_name
        self.description = description

    def part_path(self, key: str) -> Path:
        return self.output / RUN_DIR / "coco" / f"{key}.json"

    def write(self, image: ImageEntry, instances: Sequence[Instance]) -> None:
        part = {"file_name": image.file_name, "width": image.width, "height": image.height}
        annotations = [instance_to_coco_annotation(instance) for instance in instances]
        write_atomic(self.part_path(image.key), json.dumps({**part, "annotations": annotations}))

    def is_done(self, key: str) -> bool:
        return self.part_path(key).is_file()

    def finish(self, keys: Sequence[str], names: Mapping[int, str], index: DatasetIndex | None = None) -> Path:
        """The COCO file of every written image of `keys` (image ids follow their order), categories from `names`
        and every class used; with `index`, the videos' structure (see the module's docstring)."""
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for image_id, key in enumerate(keys, start=1):
            if not self.is_done(key):
                continue
            part = json.loads(self.part_path(key).read_text(encoding="utf-8"))
            images.append({"id": image_id, **{k: part[k] for k in ("file_name", "width", "height")}, "key": key})
            for annotation in part["annotations"]:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "iscrowd": 0, **annotation})
        coco: dict[str, Any] = {"info": {"description": self.description}} if self.description else {}
        if index is not None and index.videos:
            coco.update(videos_to_coco(images, annotations, index))
        for image in images:
            del image["key"]
        used = {a["category_id"] - 1 for a in annotations}
        coco.update(images=images, annotations=annotations, categories=categories(names, set(names) | used))
        if "tracks" in coco:  # TAO's order: tracks after the annotations
            coco["tracks"] = coco.pop("tracks")
        path = self.output / self.file_name
        write_atomic(path, json.dumps(coco))
        return path


def videos_to_coco(
    images: list[dict[str, Any]], annotations: list[dict[str, Any]], index: DatasetIndex
) -> dict[str, list[dict[str, Any]]]:
    """Give `images` (each with its "key") and `annotations` their video fields, in place, and return the
    ``videos`` and ``tracks`` lists (see the module's docstring)."""
    frames = {k: (v, n) for v in index.videos for n, k in enumerate(v.frame_keys)}
    videos = [
        {"id": v.video_id, "name": v.sequence, "width": v.width, "height": v.height, "length": len(v.frame_keys),
         "fps": round(v.fps, 3)}
        for v in index.videos
    ]  # fmt: skip
    next_id = max((v.video_id for v in index.videos), default=0) + 1
    video_of: dict[int, int] = {}
    for image in images:
        found = frames.get(image["key"])
        if found is None:  # a still image: a video of one frame
            video_id, frame_id, frame_index = next_id, 0, 0
            next_id += 1
            videos.append({"id": video_id, "name": image["file_name"], "width": image["width"],
                           "height": image["height"], "length": 1})  # fmt: skip
        else:
            video, frame_id = found
            video_id, frame_index = video.video_id, video.frame_numbers[frame_id]
        image.update(video_id=video_id, frame_id=frame_id, frame_index=frame_index)
        video_of[image["id"]] = video_id
    tracked = sorted({(video_of[a["image_id"]], a["track_id"]) for a in annotations if "track_id" in a})
    track_ids = {pair: n for n, pair in enumerate(tracked, start=1)}  # video order, then track id: vis.json's ids
    tracks: dict[int, dict[str, Any]] = {}
    for annotation in annotations:
        annotation["video_id"] = video_of[annotation["image_id"]]
        if "track_id" in annotation:
            track_id = track_ids[(annotation["video_id"], annotation["track_id"])]
            annotation.update(track_id=track_id, instance_id=track_id)
            annotation["attributes"] = {"track_id": track_id, "keyframe": True}
            tracks.setdefault(track_id, {"id": track_id, "category_id": annotation["category_id"],
                                         "video_id": annotation["video_id"]})  # fmt: skip
    return {"videos": videos, "tracks": [tracks[i] for i in sorted(tracks)]}
