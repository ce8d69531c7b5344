"""Saving a reviewed dataset: the changed items written back in every format it holds, nothing else touched.

Every file is replaced atomically (written to a temporary name, then `os.replace`). An unchanged instance of a changed
item is written as it was read (its YOLO line, its COCO annotation), so only what a person changed changes. In the
folder `auto_annotate` writes, the run's per-image COCO parts are rewritten too, so that a resumed run, which
rebuilds ``annotations.json`` from them, keeps every edit; its COCO ids stay consecutive, as a run numbers them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from .dataset_items import Annotation, Item, ItemState
from .dataset_readers import DatasetSource, image_size
from .exporters.base import ImageEntry, Instance
from .exporters.coco import CocoExporter, instance_to_coco_annotation
from .exporters.mask_png import MaskPngExporter
from .polygons import polygon_to_yolo_line
from .writers import write_atomic

# What `CocoExporter.finish` adds to a part's annotation in annotations.json (the part keeps none of them)
_FINISH_FIELDS = frozenset({"id", "image_id", "iscrowd", "video_id", "instance_id", "attributes"})


@dataclass(frozen=True)
class ReviewSummary:
    """What `Dataset.save` did: items reviewed, edited (by a person, this save or earlier: the review record) and
    untouched (neither), and the files it wrote (paths)."""

    reviewed: int
    edited: int
    untouched: int
    written: tuple[str, ...] = ()

    def __str__(self) -> str:
        return (f"{self.reviewed} reviewed, {self.edited} edited, {self.untouched} untouched; "
                f"{len(self.written)} files written")  # fmt: skip


def save_dataset(
    source: DatasetSource,
    before: Mapping[str, ItemState],
    after: Mapping[str, ItemState],
    flags: Mapping[str, Mapping[str, bool]],
    video_track_ids: Mapping[int, int] | None = None,
) -> ReviewSummary:
    """Write the changed items (`after`, by key; `before`: as their files held them) in each format of `source`;
    `flags`: every item's review flags, for the counts; `video_track_ids`: each dataset-wide track id's id in its
    video (what auto_annotate's per-image COCO parts hold). Returns the summary (the review record is the
    caller's)."""
    written: list[str] = []
    for key, state in after.items():
        item = source.items[key]
        if "yolo" in source.formats and item.label_path is not None:
            text = yolo_label_text(item, before[key].instances, state.instances)
            write_atomic(item.label_path, text)
            written.append(str(item.label_path))
        if "masks" in source.formats:
            pngs = [_png_instance(item, a, video_track_ids or {}) for a in state.instances]
            MaskPngExporter(source.root).write(_entry(source, item), pngs)
            written.append(str(MaskPngExporter(source.root).folder(key)))
        exporter = CocoExporter(source.root)
        if source.layout == "auto_annotate" and "coco" in source.formats and exporter.part_path(key).is_file():
            # the run's per-image part, which a resumed run merges again (none in a download: no run to resume)
            part = json.loads(exporter.part_path(key).read_text(encoding="utf-8"))
            part["annotations"] = [_part_annotation(a, video_track_ids or {}) for a in state.instances]
            write_atomic(exporter.part_path(key), json.dumps(part))
            written.append(str(exporter.part_path(key)))
    if after and source.coco is not None and source.coco_path is not None:
        patch_coco(source, after)
        write_atomic(source.coco_path, json.dumps(source.coco))
        written.append(str(source.coco_path))
    reviewed = sum(f["reviewed"] for f in flags.values())
    edited = sum(f["edited"] for f in flags.values())
    touched = sum(f["reviewed"] or f["edited"] for f in flags.values())
    return ReviewSummary(reviewed, edited, len(source.items) - touched, tuple(written))


def yolo_label_text(item: Item, before: tuple[Annotation, ...], after: tuple[Annotation, ...]) -> str:
    """An item's YOLO label: each instance read from this file keeps its line; others (new, refined, or read from
    COCO in a dataset that holds both) get the line `annotate.exporters.yolo` writes for their mask. An instance read
    from COCO that is unchanged keeps its line of the label file too (auto_annotate writes both in one order)."""
    old_lines: list[str] = []
    if item.label_path is not None and item.label_path.is_file():
        old_lines = [line for line in item.label_path.read_text(encoding="utf-8").splitlines() if line.strip()]
    by_instance = {id(a): old_lines[i] for i, a in enumerate(before) if len(old_lines) == len(before)}
    lines = []
    for annotation in after:
        if isinstance(annotation.origin, str):
            lines.append(annotation.origin)
        elif id(annotation) in by_instance:
            lines.append(by_instance[id(annotation)])
        else:
            outline = annotation.to_instance().outline()
            lines.append(polygon_to_yolo_line(annotation.class_id, outline, annotation.resolution_wh))
    return "".join(f"{line}\n" for line in lines)


def patch_coco(source: DatasetSource, after: Mapping[str, ItemState]) -> None:
    """Replace the changed images' annotations in `source.coco` (in place): unchanged instances keep their
    annotation, new ones get the next free id. auto_annotate's file keeps its order (by image) and consecutive ids;
    another file keeps every other annotation, id and position (an image's new annotations where its first was)."""
    if source.coco is None:
        raise RuntimeError("patch_coco needs a dataset that holds a COCO file.")
    images = {int(image["id"]): image for image in source.coco["images"]}
    replaced: dict[int, list[dict[str, Any]]] = {}
    next_id = max((int(a["id"]) for a in source.coco["annotations"]), default=0) + 1
    for key, state in after.items():
        image_id = source.items[key].coco_image_id
        if image_id is None:
            continue
        annotations = []
        for annotation in state.instances:
            if isinstance(annotation.origin, dict):
                annotations.append(annotation.origin)
                continue
            fresh = {"id": next_id, "image_id": image_id, "iscrowd": 0,
                     **instance_to_coco_annotation(annotation.to_instance())}  # fmt: skip
            if "video_id" in images[image_id]:
                fresh["video_id"] = images[image_id]["video_id"]
                if source.layout == "auto_annotate" and "track_id" in fresh:  # what `CocoExporter.finish` adds
                    fresh["instance_id"] = fresh["track_id"]
                    fresh["attributes"] = {"track_id": fresh["track_id"], "keyframe": True}
            annotations.append(fresh)
            next_id += 1
        replaced[image_id] = annotations
    old = source.coco["annotations"]
    if source.layout == "auto_annotate":
        by_image = {**{i: [a for a in old if int(a["image_id"]) == i] for i in images}, **replaced}
        new = [{**a, "id": n} for n, a in enumerate((a for i in images for a in by_image[i]), start=1)]
    else:
        new, placed = [], set()
        for raw in old:
            image_id = int(raw["image_id"])
            if image_id not in replaced:
                new.append(raw)
            elif image_id not in placed:
                new.extend(replaced[image_id])
                placed.add(image_id)
        new.extend(a for i, annotations in replaced.items() if i not in placed for a in annotations)
    source.coco["annotations"] = new
    grouped: dict[int, list[dict[str, Any]]] = {}
    for raw in new:
        grouped.setdefault(int(raw["image_id"]), []).append(raw)
    source.coco_annotations = grouped


def _part_annotation(annotation: Annotation, video_track_ids: Mapping[int, int]) -> dict[str, Any]:
    """An instance as auto_annotate's per-image COCO part holds it (what `instance_to_coco_annotation` gives; its
    track id the one in its video, which `CocoExporter.finish` turns into the dataset-wide one)."""
    if isinstance(annotation.origin, dict):
        part = {k: v for k, v in annotation.origin.items() if k not in _FINISH_FIELDS}
    else:
        part = instance_to_coco_annotation(annotation.to_instance())
    if "track_id" in part:
        part["track_id"] = video_track_ids.get(int(part["track_id"]), part["track_id"])
    return part


def _png_instance(item: Item, annotation: Annotation, video_track_ids: Mapping[int, int]) -> Instance:
    """An instance for its mask PNG: a frame's named after its track as the run names it (``track_<id in video>``)."""
    instance = annotation.to_instance()
    if item.kind != "frame" or annotation.track_id is None:
        return instance
    return replace(instance, name=f"track_{video_track_ids.get(annotation.track_id, annotation.track_id)}")


def _entry(source: DatasetSource, item: Item) -> ImageEntry:
    width, height = item.resolution_wh or image_size(item.image_path)
    return ImageEntry(item.key, item.image_path.relative_to(source.root / "images").as_posix(), width, height)
