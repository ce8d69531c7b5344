"""Mask PNGs: ``masks/<key>/<instance>.png`` per image, one 0/255 PNG at the image's size per instance."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import cv2
import numpy as np

from .base import DatasetIndex, Exporter, ImageEntry, Instance


def mask_to_png(mask: np.ndarray) -> bytes:
    """HxW bool mask -> PNG bytes, 0 background and 255 foreground (one 8-bit channel)."""
    ok, png = cv2.imencode(".png", np.asarray(mask, dtype=bool).astype(np.uint8) * 255)
    if not ok:
        raise ValueError(f"OpenCV could not encode a mask of shape {np.shape(mask)} as PNG.")
    return png.tobytes()


class MaskPngExporter(Exporter):
    format = "masks"

    def folder(self, key: str) -> Path:
        return self.output / "masks" / key

    def write(self, image: ImageEntry, instances: Sequence[Instance]) -> None:
        """One image's PNGs, all or none: written into a temporary folder that then takes the image's place."""
        target = self.folder(image.key)
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        try:
            for index, instance in enumerate(instances):
                (staging / f"{instance.name or index}.png").write_bytes(mask_to_png(instance.mask))
            if target.exists():  # rewriting an image: the old folder goes first (a crash here leaves it undone)
                shutil.rmtree(target)
            os.replace(staging, target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def is_done(self, key: str) -> bool:
        return self.folder(key).is_dir()

    def finish(self, keys: Sequence[str], names: Mapping[int, str], index: DatasetIndex | None = None) -> Path:
        return self.output / "masks"
