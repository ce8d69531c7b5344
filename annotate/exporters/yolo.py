"""YOLO-seg: ``labels/<key>.txt`` per image, one ``class x1 y1 x2 y2 ...`` line per instance (class ids 0-based,
coordinates normalised), and ``data.yaml`` with the training and validation lists.

The dataset ultralytics trains on as it is: its loader finds an image's label by swapping the *last* ``/images/`` of
the image's path for ``/labels/`` (dataset keys never hold a folder named ``images``: see `annotate.images`), and it
reads ``train.txt`` / ``val.txt``, one ``./images/<file>`` line per image, relative to the list's folder.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..polygons import polygon_to_yolo_line
from ..writers import write_atomic
from .base import DatasetIndex, Exporter, ImageEntry, Instance

DATA_YAML = "data.yaml"
TRAIN_LIST = "train.txt"
VAL_LIST = "val.txt"


def image_list(files: Sequence[str]) -> str:
    """Image files relative to ``images/`` -> the lines of an ultralytics image list (``./images/<file>``, which
    ultralytics resolves against the list's own folder, so the dataset can move)."""
    return "".join(f"./images/{name}\n" for name in files)


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

    def finish(self, keys: Sequence[str], names: Mapping[int, str], index: DatasetIndex | None = None) -> Path:
        """``data.yaml``: the training and validation images and the class names.

        With `index`: ``train.txt`` lists the written images of `keys` not held out, ``val.txt`` the held-out ones
        (``val: train.txt`` when there is no split); without it, both are the ``images`` folder. It names no
        absolute path: without a ``path`` key ultralytics takes the dataset root to be the folder that holds
        data.yaml, so the dataset trains wherever it is moved or unzipped."""
        train: Any = "images"
        val: Any = "images"
        if index is not None:
            written = [k for k in keys if k in index.files and self.is_done(k)]
            held_out = index.val_keys or frozenset()
            write_atomic(self.output / TRAIN_LIST, image_list([index.files[k] for k in written if k not in held_out]))
            train = val = TRAIN_LIST
            if index.val_keys is not None:
                write_atomic(self.output / VAL_LIST, image_list([index.files[k] for k in written if k in held_out]))
                val = VAL_LIST
            else:
                (self.output / VAL_LIST).unlink(missing_ok=True)  # an earlier run's split is not this one's
        content: dict[str, Any] = {"train": train, "val": val, "names": {int(k): v for k, v in sorted(names.items())}}
        path = self.output / DATA_YAML
        write_atomic(path, yaml.safe_dump(content, sort_keys=False, allow_unicode=True))
        return path
