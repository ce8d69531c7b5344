"""What an opened dataset holds: items (images, or frames of a video), videos, and the instances of an item.

An `Annotation` keeps its geometry as the file stated it (a YOLO polygon, a COCO RLE or polygon list) and decodes
its mask only when asked (`Annotation.mask`), at the image's size; `origin` keeps the line or JSON object it was read
from, so that an item whose other instances change still writes this one back byte for byte.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pycocotools import mask as mask_utils

from sam2_model.rle import mask_to_rle, rle_for_pycocotools, rle_to_mask

from .exporters.base import Instance, class_id_to_category_id
from .polygons import polygon_to_mask

ItemKind = Literal["image", "frame"]


@dataclass(frozen=True, eq=False)
class Annotation:
    """One instance on an item. Compared by identity: an edit makes a new one, so "unchanged" is "the same object".

    class_id: 0-based (YOLO's; COCO's category_id - 1); class_name: its name in the dataset; resolution_wh: the
    image's (width, height) in pixels; polygon: Kx2 float32 (x, y) pixels (a YOLO line); segmentation: COCO's (an RLE
    dict, compressed or not, or a list of flat [x1, y1, ...] pixel polygons); exactly one of the two is set. score:
    the detector's confidence when the file has one; track_id: the object's id in its video (frames only);
    box_xywh: the box the file states (COCO ``bbox``, pixels), else None; origin: the YOLO line (str) or COCO
    annotation (dict) read, None for an instance made by an edit; low_res_logits: 1xMxM float32 SAM 2 logits of the
    last refinement (Meta's ``mask_input`` for the next one), never saved; read_track_id: the track id the files
    state for this region (kept through class and track edits, None for a new region), so that saving a video
    writes an unchanged region's MOT and VIS rows as they were; sam2_iou: SAM 2's predicted IoU of the mask (COCO
    ``sam2_iou``, which `auto_annotate` writes; a refinement's or an added instance's own), None when unknown.
    """

    class_id: int
    class_name: str
    resolution_wh: tuple[int, int]
    polygon: np.ndarray | None = field(default=None, repr=False)
    segmentation: Any = field(default=None, repr=False)
    score: float | None = None
    track_id: int | None = None
    box_xywh: tuple[float, float, float, float] | None = None
    origin: str | dict[str, Any] | None = field(default=None, repr=False)
    low_res_logits: np.ndarray | None = field(default=None, repr=False)
    read_track_id: int | None = None
    sam2_iou: float | None = None

    def __post_init__(self) -> None:
        if (self.polygon is None) == (self.segmentation is None):
            raise ValueError("An Annotation needs exactly one of polygon (YOLO) or segmentation (COCO).")
        if self.class_id < 0:
            raise ValueError(f"Class ids start at 0, got {self.class_id}.")

    @classmethod
    def from_mask(
        cls,
        mask: np.ndarray,
        class_id: int,
        class_name: str,
        score: float | None = None,
        track_id: int | None = None,
        low_res_logits: np.ndarray | None = None,
        sam2_iou: float | None = None,
    ) -> Annotation:
        """A new instance from an HxW bool mask (stored as a compressed RLE); ValueError for an empty mask."""
        mask = np.asarray(mask)
        if mask.ndim != 2 or not mask.any():
            raise ValueError(f"Expected a non-empty HxW mask, got shape {mask.shape} with {int(mask.sum())} pixels.")
        height, width = mask.shape
        return cls(int(class_id), class_name, (width, height), segmentation=mask_to_rle(mask), score=score,
                   track_id=track_id, low_res_logits=low_res_logits,
                   sam2_iou=None if sam2_iou is None else float(sam2_iou))  # fmt: skip

    @cached_property
    def mask(self) -> np.ndarray:
        """The instance's region, HxW bool at the image's size (decoded on first use, then kept; read-only)."""
        width, height = self.resolution_wh
        if self.polygon is not None:
            decoded = polygon_to_mask(self.polygon, (width, height))
        else:
            decoded = segmentation_to_mask(self.segmentation, (width, height))
        decoded.flags.writeable = False
        return decoded

    @property
    def area(self) -> int:
        """Pixels of the mask."""
        return int(self.mask.sum())

    def with_class(self, class_id: int, class_name: str) -> Annotation:
        """The same region and fields under another class; the origin follows, with only its class changed."""
        origin: str | dict[str, Any] | None = self.origin
        if isinstance(origin, str):
            origin = " ".join([str(int(class_id)), *origin.split()[1:]])
        elif isinstance(origin, dict):
            origin = {**origin, "category_id": class_id_to_category_id(class_id)}
        return replace(self, class_id=int(class_id), class_name=class_name, origin=origin)

    def with_track(self, track_id: int) -> Annotation:
        """The same region and fields under another track id; a COCO origin follows (``track_id``, and
        ``instance_id`` and ``attributes.track_id`` where it has them)."""
        origin = self.origin
        if isinstance(origin, dict):
            origin = {**origin, "track_id": int(track_id)}
            if "instance_id" in origin:
                origin["instance_id"] = int(track_id)
            if isinstance(origin.get("attributes"), dict):
                origin["attributes"] = {**origin["attributes"], "track_id": int(track_id)}
        return replace(self, track_id=int(track_id), origin=origin)

    def to_instance(self) -> Instance:
        """The instance as `annotate.exporters` write it (a compressed RLE, the YOLO polygon when it has one)."""
        if isinstance(self.segmentation, dict) and isinstance(self.segmentation.get("counts"), str):
            rle = self.segmentation
        else:
            rle = mask_to_rle(self.mask)
        return Instance(self.class_id, rle, self.polygon, self.score, None, self.track_id, self.sam2_iou)


def segmentation_to_mask(segmentation: Any, resolution_wh: tuple[int, int]) -> np.ndarray:
    """A COCO segmentation (RLE dict, compressed or not, or a list of flat pixel polygons) -> HxW bool mask at
    `resolution_wh` (width, height); ValueError for anything else or an RLE of another size."""
    width, height = resolution_wh
    if isinstance(segmentation, dict):
        if [int(s) for s in segmentation.get("size", ())] != [height, width]:
            raise ValueError(
                f"The RLE is {segmentation.get('size')} (height, width) but its image is {height}x{width}: fix the "
                "image's width and height, or the segmentation."
            )
        if isinstance(segmentation.get("counts"), str | bytes):
            return np.asarray(mask_utils.decode(rle_for_pycocotools(segmentation)), dtype=bool)
        return rle_to_mask(segmentation)
    if isinstance(segmentation, list) and all(isinstance(p, list) for p in segmentation):
        polygons = [p for p in segmentation if len(p) >= 6]
        if not polygons:
            return np.zeros((height, width), dtype=bool)
        rles = mask_utils.frPyObjects(polygons, height, width)
        return np.asarray(mask_utils.decode(mask_utils.merge(rles)), dtype=bool)
    raise ValueError(
        f"A COCO segmentation is an RLE dict or a list of [x1, y1, x2, y2, ...] polygons, got {type(segmentation)}."
    )


@dataclass(frozen=True)
class Item:
    """One image of the dataset, or one frame of one of its videos.

    key: its unique name in the dataset (a relative POSIX path without suffix); image_path: the image file; kind:
    "image" or "frame"; video: the key of its video (frames); frame_index: its position among the video's frames
    (0-based); resolution_wh: (width, height) in pixels when the index states it (COCO), else None (read from the
    file's header when its instances are loaded); label_path: its YOLO label file, when the dataset has one;
    coco_image_id: its ``id`` in the COCO file, when the dataset has one.
    """

    key: str
    image_path: Path
    kind: ItemKind = "image"
    video: str | None = None
    frame_index: int | None = None
    resolution_wh: tuple[int, int] | None = None
    label_path: Path | None = None
    coco_image_id: int | None = None


@dataclass(frozen=True)
class Video:
    """A video of the dataset: its key (``clips/north``), its flat sequence name (MOT, vis.json: ``clips__north``)
    and its frames' item keys in order."""

    key: str
    sequence: str
    frame_keys: tuple[str, ...]


@dataclass(frozen=True)
class ItemState:
    """An item's reviewable state at one moment: its instances (in file order) and whether a person accepted it."""

    instances: tuple[Annotation, ...]
    reviewed: bool = False


@dataclass(frozen=True)
class Edit:
    """One undoable change to one item: what it was (`before`) and what it became (`after`); `action` names it
    ("delete", "change_class", "add", "refine", "reviewed")."""

    key: str
    action: str
    before: ItemState
    after: ItemState


@dataclass(frozen=True)
class TrackEdit:
    """One undoable change to a video's tracks: the video's key, `action` ("track_class", "delete_track",
    "merge_tracks", "swap_tracks", "correct_track") and one `Edit` per frame it changed (undone together)."""

    video: str
    action: str
    edits: tuple[Edit, ...]


def check_instance_index(key: str, instances: list[Annotation], index: int) -> None:
    """ValueError when `index` is not one of the item `key`'s `instances`."""
    if not 0 <= index < len(instances):
        raise ValueError(f"{key!r} has {len(instances)} instances: index {index} is not one of them.")


def checked_mask(mask: Any, key: str, resolution_wh: tuple[int, int]) -> np.ndarray:
    """`mask` as the HxW bool mask of item `key` at its (width, height) `resolution_wh`; ValueError for another
    shape or an empty mask (an empty instance is a deleted one)."""
    width, height = resolution_wh
    if np.shape(mask) != (height, width) or not np.any(mask):
        raise ValueError(f"Give a non-empty {height}x{width} mask (HxW bool) for {key!r}, got shape {np.shape(mask)}.")
    return np.asarray(mask, bool)
