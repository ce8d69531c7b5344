"""YOLO-seg: ``labels/<key>.txt`` per image, one ``class x1 y1 x2 y2 ...`` line per instance, and ``data.yaml``.

The dataset ultralytics trains on as it is: its loader finds an image's label by swapping ``images/`` for
``labels/`` in the image's path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..formats import polygon_to_yolo_line
from ..writers import write_atomic
from .base import Exporter, ImageEntry, Instance

DATA_YAML = "data.yaml"


class YoloExporter(Exporter):
    format = "yolo"

    def label_path(self, key: str) -> Path:
        return self.output / "labels" / f"{key}.txt"

    def write(self, image: ImageEntry, instances: Sequence[Instance]) -> None:
        size = (image.width, image.height)
        lines = [polygon_to_yolo_line(i.class_id, i.outline(), size) for i in instances]
        write_atomic(self.label_path(image.key), "".join(f"{line}\n" for line in lines))

    def is_done(self, key: str) -> bool:
        return self.label_path(key).is_file()

    def finish(self, keys: Sequence[str], names: Mapping[int, str]) -> Path:
        """``data.yaml``: the images and labels of the dataset folder and the class names.

        It names no absolute path: without a ``path`` key ultralytics takes the dataset root to be the folder that
        holds data.yaml, so the dataset trains wherever it is moved or unzipped."""
        content: dict[str, Any] = {
            "train": "images",
            "val": "images",
            "names": {int(k): v for k, v in sorted(names.items())},
        }
        path = self.output / DATA_YAML
        write_atomic(path, yaml.safe_dump(content, sort_keys=False, allow_unicode=True))
        return path
