"""What every exporter takes: one image's entry and its instances; and the `Exporter` interface itself."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sam2_model.rle import mask_to_rle, rle_area, rle_to_mask

from ..polygons import instance_polygon, polygon_to_mask

RUN_DIR = ".auto_annotate"  # a dataset's working files (per-image parts, the run record): not part of the dataset


@dataclass(frozen=True)
class ImageEntry:
    """One image of a dataset, as exporters see it.

    key: the image's unique name in the dataset, a relative POSIX path without suffix ("sub/photo"); per-image
    files are named after it. file_name: the image's file, relative to the dataset's ``images/`` folder
    ("sub/photo.jpg"; COCO's ``file_name``, as COCO, Datumaro and CVAT read it). width, height: its size in pixels.
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
    object's id across a video's frames, for frames of a video; sam2_iou: SAM 2's predicted IoU of the mask (its
    ``iou_predictions``), when the region is SAM 2's mask (None when it fell back to the box, or is not SAM 2's).
    """

    class_id: int
    rle: dict[str, Any]
    polygon: np.ndarray | None = None
    score: float | None = None
    name: str | None = None
    track_id: int | None = None
    sam2_iou: float | None = None

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
        sam2_iou: float | None = None,
    ) -> Instance:
        """An instance from an HxW bool mask, falling back to its xyxy pixel box when the mask is missing, empty or
        smaller than `min_area` pixels (the region is then the box). `simplify`: polygon tolerance in pixels.
        Without a box, the mask's own bounding box is the fallback. resolution_wh: the image's (width, height),
        needed only when `mask` is None. sam2_iou: SAM 2's predicted IoU of `mask`, kept only when the region is
        that mask (not the box fallback)."""
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
        iou = None if sam2_iou is None or not from_mask else float(sam2_iou)
        return cls(int(class_id), mask_to_rle(region), polygon, score, name, sam2_iou=iou)

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


def class_id_to_category_id(class_id: int) -> int:
    """A class id (0-based: YOLO labels, ``data.yaml``, the detector) -> its category id in COCO, YouTube-VIS and MOT
    (1-based: their readers take 0 for background or "no class", e.g. Datumaro and so CVAT, TrackEval)."""
    if int(class_id) < 0:
        raise ValueError(f"Class ids start at 0, got {class_id}.")
    return int(class_id) + 1


def category_id_to_class_id(category_id: int) -> int:
    """A COCO, YouTube-VIS or MOT category id (1-based) -> the class id of YOLO labels (0-based)."""
    if int(category_id) < 1:
        raise ValueError(f"Category ids start at 1 (0 is background), got {category_id}.")
    return int(category_id) - 1


def class_name(names: Mapping[int, str], class_id: int) -> str:
    """The name of a class id, ``class_<id>`` when `names` has none."""
    return names.get(int(class_id), f"class_{int(class_id)}")


def categories(names: Mapping[int, str], class_ids: Iterable[int]) -> list[dict[str, Any]]:
    """COCO/YouTube-VIS ``categories`` for the class ids `class_ids` (0-based): ``[{"id": class id + 1, "name"}]``,
    sorted by id."""
    return [{"id": class_id_to_category_id(i), "name": class_name(names, i)} for i in sorted(set(class_ids))]


@dataclass(frozen=True)
class VideoEntry:
    """A finished video of the dataset, as `Exporter.finish` sees it.

    video_id: 1, 2, ... in dataset order (the same id in COCO's and vis.json's ``videos``); key: its dataset key
    (``clips/north``: frames at ``images/clips/north/``); sequence: its flat name (``clips__north``: its MOT folder
    ``mot/clips__north/``, ``tracks/clips__north.txt``, the first part of its vis.json ``file_names``); frame_keys:
    its frames' dataset keys in order; frame_numbers: each frame's number in the video (0-based; every
    `frame_stride`-th); fps: the written frames' rate; width, height: frame size in pixels.
    """

    video_id: int
    key: str
    sequence: str
    frame_keys: tuple[str, ...]
    frame_numbers: tuple[int, ...]
    fps: float
    width: int
    height: int


@dataclass(frozen=True)
class DatasetIndex:
    """What a finished dataset holds beyond its keys, for formats that need more than one image at a time.

    files: each written key's image file, relative to ``images/``; videos: the finished videos, in order;
    val_keys: the keys held out for validation (None: no split, validation is the training set).
    """

    files: Mapping[str, str] = field(default_factory=dict)
    videos: tuple[VideoEntry, ...] = ()
    val_keys: frozenset[str] | None = None


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

    def finish(self, keys: Sequence[str], names: Mapping[int, str], index: DatasetIndex | None = None) -> Path | None:
        """Complete the dataset for the images `keys` (dataset order) and class names (by class id); `index` says
        where the images are, which are video frames and which are held out for validation (None: images only,
        no split). Return the format's main file."""
        return None


EXPORTERS: dict[str, type[Exporter]] = {}
