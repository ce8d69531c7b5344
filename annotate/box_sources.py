"""Boxes you already have, as the detector: YOLO detection labels or a COCO file, matched to the images by name.

A box source stands where a detector stands (``auto_annotate(data, det_model=Path("labels/"))``, CLI
``--det-model labels/`` or ``--boxes labels/``): for each image it gives the boxes its labels state, and SAM 2 turns
each box into a mask, as ultralytics' ``yolo_bbox2segment`` does for a detection dataset (here with every output
format, resume, and videos).

Names. An image's name is its path under the input folder without its suffix (``sub/photo`` for
``photos/sub/photo.jpg``); a video frame's is ``<the video's name>/<frame number, 6 digits>``
(``clips/street/000120``), as the dataset names its frames.

- **YOLO labels** (a folder): ``<folder>/<name>.txt`` (the layout ultralytics reads: ``labels/`` mirrors
  ``images/``), one ``class cx cy w h`` line per box (normalised to 0..1 by the image's width and height), or
  ``class cx cy w h confidence`` (YOLO predictions saved with ``save_conf``), or ``class x1 y1 x2 y2 ...`` (a
  YOLO-seg polygon: its bounding box). Class names from ``classes.txt`` or ``obj.names`` (one per line, in id order)
  or a ``data.yaml`` (``names``), in the folder or its parent.
- **COCO** (a ``.json`` file): ``images`` (``id``, ``file_name``), ``annotations`` (``image_id``, ``bbox``
  ``[x, y, w, h]`` in pixels, ``category_id``, optional ``score``), ``categories`` (``id``, ``name``). An image
  matches the ``file_name`` that is its name with any suffix (``frames/000010.png`` matches ``frames/000010.jpg``).
  Categories become class ids 0, 1, ... in the order of their ids (1..N -> 0..N-1, as auto_annotate's own COCO
  files number them; COCO 2017's 91 ids -> its 80 classes).

An image with no label file (YOLO) or no entry (COCO) is skipped: not written, reported in the summary and the log,
and annotated by a later run once its boxes exist (an empty label file means "nothing here": written, empty). A
video is annotated when at least one of its keyframes has boxes (keyframes without them count as keyframes where
nothing was found, and are listed in its report); with none, it is skipped as an image is. Boxes are used as given:
the detector's conf, iou, imgsz and max_det do not apply; `classes` keeps the classes named or numbered.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar, TypeGuard

import numpy as np
import supervision as sv

from .settings import class_ids_by_name

NAME_FILES = ("classes.txt", "obj.names")  # ultralytics' and LabelImg's / CVAT's YOLO 1.1 class lists
_FRAME = re.compile(r"\d+")


class NoBoxes(LookupError):
    """The box source has no label file or entry for this image: it is skipped and reported, not written."""

    def __init__(self, name: str) -> None:
        super().__init__(f"no boxes for {name!r}")
        self.name = name


def is_box_source(det_model: object) -> TypeGuard[str | Path]:
    """Whether `det_model` names boxes rather than a detector: a folder (YOLO labels) or a ``.json`` file (COCO)."""
    if not isinstance(det_model, (str, Path)):
        return False
    path = Path(det_model)
    return path.is_dir() or (path.suffix.lower() == ".json" and path.is_file())


def open_box_source(path: str | Path) -> BoxSource:
    """A folder of YOLO labels or a COCO ``.json`` file as a box source; ValueError for anything else."""
    path = Path(path)
    if path.is_dir():
        return YoloLabels.open(path)
    if path.suffix.lower() == ".json" and path.is_file():
        return CocoBoxes.open(path)
    raise ValueError(
        f"{path} is not a box source: pass a folder of YOLO detection labels (<name>.txt per image) or a COCO .json "
        "file with boxes."
    )


@dataclass
class BoxSource:
    """Boxes by image name, as a detector (`annotate.detectors.Detector`) that is called with the images' names.

    names: class names by class id. keep: the class ids to keep (None: all).
    """

    names: dict[int, str] = field(default_factory=dict)
    keep: frozenset[int] | None = None
    batched: ClassVar[bool] = False  # one image per call: an image without boxes is skipped alone
    by_name: ClassVar[bool] = True

    def __call__(self, images: list[np.ndarray], names: Sequence[str] | None = None) -> list[sv.Detections]:
        """HxWx3 images and their names -> per image its boxes as `Detections` (xyxy pixels, class_id, confidence
        when the labels state one); raises NoBoxes for an image the source has nothing for."""
        if names is None or len(names) != len(images):
            raise ValueError("A box source finds boxes by image name: call it with one name per image.")
        return [
            self.detections(name, image.shape[1], image.shape[0]) for image, name in zip(images, names, strict=True)
        ]

    def detections(self, name: str, width: int, height: int) -> sv.Detections:
        """The boxes of image `name` (width x height pixels), clipped to it; NoBoxes when it has no entry."""
        found = self.boxes(name, width, height)
        if found is None:
            raise NoBoxes(name)
        xyxy, class_ids, confidence = found
        xyxy = np.clip(np.asarray(xyxy, np.float32).reshape(-1, 4), 0, [width, height, width, height])
        usable = (xyxy[:, 2] > xyxy[:, 0]) & (xyxy[:, 3] > xyxy[:, 1])  # boxes that lie outside the image: none
        if self.keep is not None:
            usable &= np.isin(class_ids, list(self.keep))
        if not usable.any():
            return sv.Detections.empty()
        return sv.Detections(
            xyxy=xyxy[usable],
            class_id=np.asarray(class_ids, int)[usable],
            confidence=None if confidence is None else np.asarray(confidence, np.float32)[usable],
        )

    def keep_classes(self, classes: tuple[int, ...] | tuple[str, ...] | None) -> None:
        """Keep only `classes` (ids, or names among `names`; see `DetectorSettings.classes`)."""
        if classes is None:
            self.keep = None
        elif classes and isinstance(classes[0], str):
            self.keep = frozenset(class_ids_by_name(self.names, [str(c) for c in classes]))
        else:
            self.keep = frozenset(int(c) for c in classes)

    def unmatched(self, image_names: Iterable[str], video_names: Iterable[str]) -> list[str]:
        """The label files or entries (as `entries` names them) that name no image of the run, nor a frame of
        one of its videos: a misspelt name, or labels of another folder."""
        images, videos = set(image_names), set(video_names)

        def matched(name: str) -> bool:
            folder, _, last = name.rpartition("/")
            return name in images or (folder in videos and bool(_FRAME.fullmatch(last)))

        return sorted(shown for name, shown in self.entries() if not matched(name))

    def boxes(self, name: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        """(Nx4 xyxy pixels, N class ids, N confidences or None) of image `name`; None when it has no entry."""
        raise NotImplementedError

    def has(self, name: str) -> bool:
        """Whether image `name` has a label file or entry (perhaps empty)."""
        raise NotImplementedError

    def entries(self) -> list[tuple[str, str]]:
        """(image name, how to show it: a label file or a COCO file_name) of every entry."""
        raise NotImplementedError


@dataclass
class YoloLabels(BoxSource):
    """A folder of YOLO detection labels, ``<folder>/<image name>.txt``, read when an image asks for its boxes."""

    folder: Path = Path()

    @classmethod
    def open(cls, folder: Path) -> YoloLabels:
        return cls(names=yolo_class_names(folder), folder=folder)

    def label_path(self, name: str) -> Path:
        return self.folder / f"{name}.txt"

    def has(self, name: str) -> bool:
        return self.label_path(name).is_file()

    def entries(self) -> list[tuple[str, str]]:
        files = (p for p in self.folder.rglob("*.txt") if p.name not in NAME_FILES and p.is_file())
        relative = (p.relative_to(self.folder) for p in files)
        return [(r.with_suffix("").as_posix(), r.as_posix()) for r in relative]

    def boxes(self, name: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        path = self.label_path(name)
        if not path.is_file():
            return None
        return yolo_lines_to_boxes(path.read_text(encoding="utf-8").splitlines(), (width, height), str(path))


def yolo_lines_to_boxes(
    lines: Sequence[str], resolution_wh: tuple[int, int], source: str = "labels"
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """YOLO label lines -> (Nx4 xyxy pixels float32, N class ids, N confidences or None).

    A line is ``class cx cy w h`` (normalised box), ``class cx cy w h confidence``, or ``class x1 y1 ... xn yn``
    (normalised polygon, n >= 3: its bounding box). Confidences are returned only when every line has one. Blank
    lines are skipped; anything else is a ValueError naming `source` and the line number.
    """
    width, height = resolution_wh
    boxes, class_ids, scores = [], [], []
    for number, line in enumerate(lines, start=1):
        values = line.split()
        if not values:
            continue
        try:
            numbers = [float(v) for v in values]
        except ValueError:
            numbers = []
        shape_ok = len(numbers) in (5, 6) or (len(numbers) >= 7 and len(numbers) % 2 == 1)
        if not shape_ok or numbers[0] < 0 or numbers[0] != int(numbers[0]):
            raise ValueError(
                f"{source}, line {number}: expected 'class cx cy w h' (a class id, then the box's centre and size "
                f"normalised to 0..1), optionally with a confidence, or a YOLO-seg polygon; got {line.strip()!r}."
            )
        if len(numbers) <= 6:
            cx, cy, w, h = numbers[1:5]
            boxes.append([(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height])
            scores.append(numbers[5] if len(numbers) == 6 else None)
        else:
            points = np.asarray(numbers[1:]).reshape(-1, 2) * (width, height)
            boxes.append([*points.min(axis=0), *points.max(axis=0)])
            scores.append(None)
        class_ids.append(int(numbers[0]))
    confidence = None if not scores or None in scores else np.asarray(scores, np.float32)
    return np.asarray(boxes, np.float32).reshape(-1, 4), np.asarray(class_ids, int), confidence


def yolo_class_names(folder: Path) -> dict[int, str]:
    """Class names of a YOLO labels folder: ``classes.txt`` / ``obj.names`` (one per line) or ``data.yaml``
    (``names``, a list or {id: name}), looked for in the folder, then its parent; {} when there is none."""
    import yaml

    for place in (folder, folder.parent):
        for file_name in NAME_FILES:
            path = place / file_name
            if path.is_file():
                lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
                return dict(enumerate(line for line in lines if line))
        path = place / "data.yaml"
        if path.is_file():
            names = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("names")
            if isinstance(names, dict):
                return {int(k): str(v) for k, v in names.items()}
            if isinstance(names, list):
                return dict(enumerate(str(n) for n in names))
    return {}


@dataclass
class CocoBoxes(BoxSource):
    """The boxes of a COCO file, by image name (``file_name`` without its suffix)."""

    by_image: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray | None]] = field(default_factory=dict)
    file_names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def open(cls, path: Path) -> CocoBoxes:
        try:
            coco = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise ValueError(f"{path} could not be read as a COCO JSON file: {error}") from error
        return coco_to_box_source(coco, str(path))

    def has(self, name: str) -> bool:
        return name in self.by_image

    def entries(self) -> list[tuple[str, str]]:
        return list(self.file_names.items())

    def boxes(self, name: str, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None] | None:
        return self.by_image.get(name)


def coco_to_box_source(coco: dict[str, Any], source: str = "COCO file") -> CocoBoxes:
    """A parsed COCO dict -> `CocoBoxes`: boxes xyxy in pixels (from ``bbox`` [x, y, w, h]), class ids 0, 1, ... by
    category id order, names from ``categories``; ValueError naming what is missing."""
    if not isinstance(coco, dict) or not isinstance(coco.get("images"), list):
        raise ValueError(f"{source}: expected a COCO object with 'images', 'annotations' and 'categories'.")
    categories = sorted(coco.get("categories") or [], key=lambda c: c["id"])
    class_of = {c["id"]: i for i, c in enumerate(categories)}
    names = {i: str(c.get("name", f"class_{i}")) for i, c in enumerate(categories)}
    file_names: dict[str, str] = {}
    by_id: dict[Any, str] = {}
    for image in coco["images"]:
        name = PurePosixPath(str(image["file_name"]).replace("\\", "/")).with_suffix("").as_posix()
        file_names[name], by_id[image["id"]] = str(image["file_name"]), name
    rows: dict[str, list[tuple[list[float], int, float | None]]] = {name: [] for name in file_names}
    for number, annotation in enumerate(coco.get("annotations") or []):
        try:
            x, y, w, h = (float(v) for v in annotation["bbox"])
            row = ([x, y, x + w, y + h], class_of[annotation["category_id"]], annotation.get("score"))
            rows[by_id[annotation["image_id"]]].append(row)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(
                f"{source}: annotation {number} needs a bbox [x, y, w, h] in pixels, a category_id among the "
                f"categories and an image_id among the images ({type(error).__name__}: {error})."
            ) from error
    by_image = {}
    for name, found in rows.items():
        scores = [score for _, _, score in found]
        confidence = None if not found or None in scores else np.asarray(scores, np.float32)
        boxes = np.asarray([box for box, _, _ in found], np.float32).reshape(-1, 4)
        by_image[name] = (boxes, np.asarray([c for _, c, _ in found], int), confidence)
    return CocoBoxes(names=names, by_image=by_image, file_names=file_names)
