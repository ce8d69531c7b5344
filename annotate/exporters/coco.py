"""COCO instances: one JSON with RLE masks, assembled from one small part per image (so a resumed run can rebuild
it without redoing the images already written)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sam2_model.formats import rle_area, rle_box

from ..writers import write_atomic
from .base import RUN_DIR, Exporter, ImageEntry, Instance

COCO_FILE = "annotations.json"
DESCRIPTION = "auto_annotate (YOLO boxes -> SAM 2 masks)"


def instance_to_coco_annotation(instance: Instance) -> dict[str, Any]:
    """The fields of a COCO annotation for one instance: category_id, segmentation (compressed RLE), area (pixels),
    bbox (xywh pixels, pycocotools' box of the RLE) and, when the instance has them, score and track_id."""
    rle = instance.rle
    annotation: dict[str, Any] = {
        "category_id": int(instance.class_id),
        "segmentation": rle,
        "area": rle_area(rle),
        "bbox": [round(v, 2) for v in rle_box(rle)],
    }
    if instance.score is not None:
        annotation["score"] = round(float(instance.score), 5)
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

    def finish(self, keys: Sequence[str], names: Mapping[int, str]) -> Path:
        """The COCO file of every written image of `keys` (image ids follow their order), categories from `names`
        and every class used."""
        images: list[dict[str, Any]] = []
        annotations: list[dict[str, Any]] = []
        for image_id, key in enumerate(keys, start=1):
            if not self.is_done(key):
                continue
            part = json.loads(self.part_path(key).read_text(encoding="utf-8"))
            images.append(
                {"id": image_id, "file_name": part["file_name"], "width": part["width"], "height": part["height"]}
            )
            for annotation in part["annotations"]:
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "iscrowd": 0, **annotation})
        used = {a["category_id"] for a in annotations}
        categories = [{"id": i, "name": names.get(i, f"class_{i}")} for i in sorted(set(names) | used)]
        coco: dict[str, Any] = {"info": {"description": self.description}} if self.description else {}
        coco.update(images=images, annotations=annotations, categories=categories)
        path = self.output / self.file_name
        write_atomic(path, json.dumps(coco))
        return path
