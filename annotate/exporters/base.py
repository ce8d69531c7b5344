"""What every exporter takes: one image's entry and its instances; and the `Exporter` interface itself."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sam2_model.formats import mask_to_rle, rle_area, rle_to_mask

from ..formats import instance_polygon, polygon_to_mask

RUN_DIR = ".auto_annotate"  # a dataset's working files (per-image parts, the run record): not part of the dataset


@dataclass(frozen=True)
class ImageEntry:
    """One image of a dataset, as exporters see it.

    key: the image's unique name in the dataset, a relative POSIX path without suffix ("sub/photo"); per-image
    files are named after it. file_name: where the dataset shows the image, relative to the dataset folder
    ("images/sub/photo.jpg"). width, height: its size in pixels.
    """

    key: str
    file_name: str
    width: int
    height: int


@dataclass(frozen=True)
class Instance:
    """One object on an image, ready for every format.

    class_id: its class; rle: COCO RLE of its region at the image's size; polygon: its Kx2 float32 (x, y) pixel
    outline (K >= 3) when the producer chose one, else derived from the region on demand; score: the detector's
    confidence, if any; name: a file-name-safe name for per-instance files (default: its index); track_id: the
    object's id across a video's frames, for frames of a video.
    """

    class_id: int
    rle: dict[str, Any]
    polygon: np.ndarray | None = None
    score: float | None = None
    name: str | None = None
    track_id: int | None = None

    @classmethod
    def from_mask(
        cls,
        class_id: int,
        mask: np.ndarray | None,
        box_xyxy: np.ndarray | None = None,
        *,
        min_area: int = 0,
        simplify: float = 0.0,
        score: float | None = None,
        name: str | None = None,
        resolution_wh: tuple[int, int] | None = None,
    ) -> Instance:
        """An instance from an HxW bool mask, falling back to its xyxy pixel box when the mask is missing, empty or
        smaller than `min_area` pixels (the region is then the box). `simplify`: polygon tolerance in pixels.
        Without a box, the mask's own bounding box is the fallback. resolution_wh: the image's (width, height),
        needed only when `mask` is None."""
        if mask is not None:
            height, width = mask.shape
        elif resolution_wh is not None and box_xyxy is not None:
            width, height = resolution_wh
        else:
            raise ValueError("An instance needs a mask, or a box and the image's resolution_wh.")
        if box_xyxy is None:
            box_xyxy = _box_of(mask)
            if box_xyxy is None:
                raise ValueError("An empty mask needs a box_xyxy to fall back to.")
        polygon, from_mask = instance_polygon(mask, box_xyxy, min_area, simplify)
        region = mask if from_mask and mask is not None else polygon_to_mask(polygon, (width, height))
        return cls(int(class_id), mask_to_rle(region), polygon, score, name)

    @property
    def rle_area(self) -> int:
        """Pixels of the region."""
        return rle_area(self.rle)

    @property
    def mask(self) -> np.ndarray:
        """The instance's region, HxW bool."""
        return rle_to_mask(self.rle)

    def outline(self) -> np.ndarray:
        """The Kx2 float32 (x, y) pixel polygon a YOLO label holds."""
        if self.polygon is not None:
            return self.polygon
        mask = self.mask
        box = _box_of(mask)
        return instance_polygon(mask, np.zeros(4) if box is None else box)[0]


def _box_of(mask: np.ndarray | None) -> np.ndarray | None:
    """xyxy pixel box of a mask's pixels (inclusive), None for a missing or empty mask."""
    if mask is None or not mask.any():
        return None
    ys, xs = np.nonzero(mask)
    return np.array([xs.min(), ys.min(), xs.max(), ys.max()], float)


class Exporter(ABC):
    """A dataset format: writes each image's instances, knows whether an image is written, and finishes the dataset.

    Every file is written atomically (a crash leaves the old file or the new one), so `is_done` can be trusted and
    a resumed run redoes only what is missing. Subclasses set `format` and register themselves.
    """

    format: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.format:
            if cls.format in EXPORTERS:
                raise ValueError(f"Two exporters claim the format {cls.format!r}.")
            EXPORTERS[cls.format] = cls

    def __init__(self, output: Path) -> None:
        self.output = Path(output)

    @abstractmethod
    def write(self, image: ImageEntry, instances: Sequence[Instance]) -> None:
        """Write one image's instances (an empty sequence records "nothing found")."""

    @abstractmethod
    def is_done(self, key: str) -> bool:
        """Whether the image `key` is written in this format."""

    def finish(self, keys: Sequence[str], names: Mapping[int, str]) -> Path | None:
        """Complete the dataset for the images `keys` (dataset order) and class names; return its main file."""
        return None


EXPORTERS: dict[str, type[Exporter]] = {}
