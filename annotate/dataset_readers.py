"""Reading a dataset's index: the folder `auto_annotate` writes, an ultralytics YOLO-seg dataset, a COCO instances file.

Opening reads the index only (which images, which label file or COCO image each has, the videos, the class names);
an item's instances are parsed when it is shown (`load_annotations`), and their masks decoded when drawn.
"""

from __future__ import annotations

import json
import os
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
import yaml
from PIL import Image

from .dataset_items import Annotation, Item, Video
from .exporters.base import RUN_DIR, category_id_to_class_id, class_name
from .exporters.coco import DESCRIPTION as COCO_DESCRIPTION
from .images import find_images
from .polygons import box_to_polygon
from .run_record import REVIEW_FILE
from .videos import sequence_name

Layout = Literal["auto_annotate", "yolo", "coco"]
COCO_FILE = "annotations.json"
LAYOUTS_HELP = (
    "the folder auto_annotate writes, an ultralytics YOLO-seg dataset (data.yaml, or a folder with images/ and "
    "labels/), or a COCO instances .json (with its images folder)"
)


@dataclass
class DatasetSource:
    """A dataset's index as read: layout, root folder, items by key (dataset order), videos, class names by class id,
    the formats it holds, its COCO file (parsed, with annotations by image id), where its review record goes, and the
    file besides the COCO file that names its classes (``data.yaml``, ``classes.txt``; None when there is none)."""

    layout: Layout
    root: Path
    items: dict[str, Item]
    names: dict[int, str]
    formats: tuple[str, ...]
    review_path: Path
    videos: tuple[Video, ...] = ()
    coco_path: Path | None = None
    coco: dict[str, Any] | None = None
    coco_annotations: dict[int, list[dict[str, Any]]] = field(default_factory=dict)
    names_file: Path | None = None


def read_source(path: str | Path, images: str | Path | None = None) -> DatasetSource:
    """The index of the dataset at `path` (see `LAYOUTS_HELP`); `images`: a COCO file's images folder when it is not
    ``images/`` beside the file (or its folder's parent), nor the file's own folder. ValueError for anything else."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"Dataset not found: {path}. Pass {LAYOUTS_HELP}.")
    if path.is_file():
        if path.suffix.lower() == ".json":
            return read_coco(path, images)
        if path.suffix.lower() in (".yaml", ".yml"):
            return read_yolo(path)
        raise ValueError(f"{path} is neither a COCO .json nor a data.yaml. Pass {LAYOUTS_HELP}.")
    if is_auto_annotate_folder(path):
        return read_auto_annotate(path)
    if (path / "data.yaml").is_file():
        return read_yolo(path / "data.yaml")
    if (path / "images").is_dir() and (path / "labels").is_dir():
        return read_yolo_folder(path)
    if (path / COCO_FILE).is_file():
        return read_coco(path / COCO_FILE, images)
    raise ValueError(f"{path} holds no dataset we know (no data.yaml, images/ + labels/, or {COCO_FILE}). "
                     f"Pass {LAYOUTS_HELP}.")  # fmt: skip


def is_auto_annotate_folder(path: Path) -> bool:
    """Whether `path` is a folder `auto_annotate` wrote: labels/ and its working files, or — as the app's download
    and any zip without hidden folders hold it, the working files left out — labels/, data.yaml and the COCO file
    that `auto_annotate` wrote (read as one dataset, so that a save keeps every format in step). Another YOLO
    dataset with a COCO file beside it stays a YOLO dataset."""
    if not (path / "labels").is_dir():
        return False
    if (path / RUN_DIR).is_dir():
        return True
    if not ((path / "data.yaml").is_file() and (path / COCO_FILE).is_file()):
        return False
    with open(path / COCO_FILE, "rb") as file:  # our exporter writes its "info" first: no need to parse it all
        return json.dumps(COCO_DESCRIPTION).encode() in file.read(4096)


def read_auto_annotate(root: Path) -> DatasetSource:
    """The folder `auto_annotate` writes: items from ``annotations.json`` when it holds COCO (exact masks, scores,
    track ids), else from ``labels/``; videos from the run's records (else vis.json's or COCO's sequence names)."""
    names = _names(_load_yaml(root / "data.yaml").get("names")) if (root / "data.yaml").is_file() else {}
    formats = ["yolo"]
    formats += [name for name, file in (("coco", COCO_FILE), ("masks", "masks")) if (root / file).exists()]
    formats += [name for name, file in (("vis", "vis.json"), ("mot", "mot")) if (root / file).exists()]
    review = root / REVIEW_FILE
    if "coco" in formats:
        source = read_coco(root / COCO_FILE, root / "images", "auto_annotate", review)
        labels = {key: root / "labels" / f"{key}.txt" for key in source.items}
        source.items = {key: replace(item, label_path=labels[key]) for key, item in source.items.items()}
        source.root, source.formats = root, tuple(formats)
        source.names = {**source.names, **names}
    else:
        files = {_key(p.relative_to(root / "images")): p for p in find_images(root / "images")}
        labelled = {_key(p.relative_to(root / "labels")) for p in (root / "labels").rglob("*.txt")}
        items = {k: Item(k, p, label_path=root / "labels" / f"{k}.txt") for k, p in files.items() if k in labelled}
        source = DatasetSource("auto_annotate", root, items, names, tuple(formats), review)
    records = sorted((root / RUN_DIR / "videos").rglob("*.json"))
    if records:
        videos = [_video_record(record) for record in records]
        source.videos = tuple(v for v in videos if v.frame_keys)
    elif not source.videos and (root / "vis.json").is_file():
        sequences = [v["name"] for v in json.loads((root / "vis.json").read_text(encoding="utf-8"))["videos"]]
        source.videos = _videos_by_folder(source.items, sequences)
    source.items = _mark_frames(source.items, source.videos)
    source.names_file = root / "data.yaml" if (root / "data.yaml").is_file() else None
    return source


def read_yolo(yaml_path: Path) -> DatasetSource:
    """An ultralytics dataset from its data.yaml: ``path`` (default: the yaml's folder), ``train`` / ``val`` /
    ``test`` (folders of images, .txt image lists, or lists of those) and ``names``; each image's label is where
    ultralytics looks (the last ``/images/`` of its path swapped for ``/labels/``, the suffix for ``.txt``)."""
    data = _load_yaml(yaml_path)
    root = Path(data["path"]) if data.get("path") else yaml_path.parent
    if not root.is_absolute():
        root = (yaml_path.parent / root).resolve() if (yaml_path.parent / root).exists() else root.resolve()
    found: dict[Path, None] = {}
    for side in ("train", "val", "test"):
        entries = data.get(side) or []
        for entry in [entries] if isinstance(entries, str) else entries:
            found.update(dict.fromkeys(_split_images(root, str(entry))))
    if not found:
        raise ValueError(f"{yaml_path} names no images: set train/val to folders of images or .txt image lists.")
    items = _yolo_items(root, list(found))
    return DatasetSource("yolo", root, items, _names(data.get("names")), ("yolo",), root / REVIEW_FILE,
                         names_file=yaml_path)  # fmt: skip


def read_yolo_folder(root: Path) -> DatasetSource:
    """A folder with ``images/`` and ``labels/`` and no data.yaml; class names from ``classes.txt`` if present."""
    images = find_images(root / "images")
    if not images:
        raise ValueError(f"{root / 'images'} holds no images (.jpg, .png, ...).")
    classes = root / "classes.txt"
    names = dict(enumerate(classes.read_text(encoding="utf-8").split("\n"))) if classes.is_file() else {}
    names = {i: n.strip() for i, n in names.items() if n.strip()}
    return DatasetSource("yolo", root, _yolo_items(root, images), names, ("yolo",), root / REVIEW_FILE,
                         names_file=classes)  # fmt: skip


def read_coco(
    path: Path, images: str | Path | None = None, layout: Layout = "coco", review: Path | None = None
) -> DatasetSource:
    """A COCO instances file: ``images`` (id, file_name, width, height), ``annotations`` (RLE or polygons), and
    ``categories`` (category id N is class id N - 1); its videos (``videos`` of more than one frame: our files,
    TAO, mmtracking) group their frames."""
    try:
        coco = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is not a JSON file ({error}). Pass a COCO instances .json.") from error
    if not isinstance(coco, dict) or not all(isinstance(coco.get(k), list) for k in ("images", "annotations")):
        raise ValueError(f"{path} is not a COCO instances file: expected a JSON object with 'images' and "
                         "'annotations' lists (and 'categories').")  # fmt: skip
    folder = _coco_images_folder(path, coco["images"], images)
    names = {category_id_to_class_id(c["id"]): str(c["name"]) for c in coco.get("categories", [])}
    items: dict[str, Item] = {}
    for image in coco["images"]:
        key = _key(Path(image["file_name"]))
        if key in items:  # a.jpg and a.png: the suffix keeps them apart
            key = Path(image["file_name"]).as_posix()
        size = (int(image["width"]), int(image["height"]))
        items[key] = Item(key, folder / image["file_name"], resolution_wh=size, coco_image_id=int(image["id"]))
    by_image: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for annotation in coco["annotations"]:
        by_image[int(annotation["image_id"])].append(annotation)
    review = review or path.with_name(f"{path.stem}.review.json")
    source = DatasetSource(layout, path.parent, items, names, ("coco",), review, coco_path=path, coco=coco,
                           coco_annotations=dict(by_image))  # fmt: skip
    source.videos = _coco_videos(coco, items)
    source.items = _mark_frames(items, source.videos)
    return source


def load_annotations(source: DatasetSource, item: Item, resolution_wh: tuple[int, int]) -> tuple[Annotation, ...]:
    """An item's instances as its file states them (COCO when the dataset has it, else its YOLO label; a missing
    label file is an image with nothing on it, as ultralytics reads it)."""
    if item.coco_image_id is not None and source.coco is not None:
        raw = source.coco_annotations.get(item.coco_image_id, [])
        return tuple(coco_to_annotation(a, source.names, resolution_wh) for a in raw)
    if item.label_path is None or not item.label_path.is_file():
        return ()
    lines = item.label_path.read_text(encoding="utf-8").splitlines()
    try:
        return tuple(yolo_line_to_annotation(line, source.names, resolution_wh) for line in lines if line.strip())
    except ValueError as error:
        raise ValueError(f"{item.label_path}: {error}") from error


def yolo_line_to_annotation(line: str, names: dict[int, str], resolution_wh: tuple[int, int]) -> Annotation:
    """``class x1 y1 x2 y2 ...`` (a polygon, normalised), or ``class x y w h`` (a box: its corners), each with an
    optional trailing confidence (ultralytics' ``save_conf``) -> an Annotation whose origin is the line."""
    values = line.split()
    try:
        class_id, numbers = int(values[0]), [float(v) for v in values[1:]]
    except (IndexError, ValueError) as error:
        raise ValueError(f"not a YOLO label line (class, then numbers): {line!r}") from error
    score = numbers.pop() if len(numbers) % 2 else None
    width, height = resolution_wh
    if len(numbers) == 4:
        x, y, w, h = numbers
        polygon = box_to_polygon(np.array([(x - w / 2) * width, (y - h / 2) * height, (x + w / 2) * width,
                                           (y + h / 2) * height]))  # fmt: skip
    elif len(numbers) >= 6:
        polygon = (np.array(numbers).reshape(-1, 2) * np.array([width, height])).astype(np.float32)
    else:
        raise ValueError(f"a YOLO-seg line has a class and a box (4 numbers) or 3+ x y pairs: {line!r}")
    return Annotation(class_id, class_name(names, class_id), resolution_wh, polygon=polygon, score=score,
                      origin=line.rstrip("\r\n"))  # fmt: skip


def coco_to_annotation(raw: dict[str, Any], names: dict[int, str], resolution_wh: tuple[int, int]) -> Annotation:
    """A COCO annotation -> an Annotation whose origin is the annotation (an empty segmentation: its bbox; its
    ``score`` and ``sam2_iou`` when it has them)."""
    class_id = category_id_to_class_id(raw["category_id"])
    box = None
    if raw.get("bbox"):
        x, y, w, h = (float(v) for v in raw["bbox"])
        box = (x, y, w, h)
    segmentation = raw.get("segmentation")
    polygon = None
    if not segmentation:
        x, y, w, h = box or (0.0, 0.0, 0.0, 0.0)
        polygon, segmentation = box_to_polygon(np.array([x, y, x + w, y + h])), None
    track = raw.get("track_id", (raw.get("attributes") or {}).get("track_id"))
    return Annotation(class_id, class_name(names, class_id), resolution_wh, polygon=polygon,
                      segmentation=segmentation, score=raw.get("score"), track_id=None if track is None else int(track),
                      box_xywh=box, origin=raw, read_track_id=None if track is None else int(track),
                      sam2_iou=_optional_float(raw.get("sam2_iou")))  # fmt: skip


def _optional_float(value: Any) -> float | None:
    """A number a file states, or None when it states none (files written before the field existed)."""
    return None if value is None else float(value)


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of an image file from its header, after its EXIF rotation (as ultralytics and
    `annotate.images.read_image` see it); nothing is decoded."""
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: not a readable image ({type(error).__name__}: {error}).") from error
    return (height, width) if orientation in (5, 6, 7, 8) else (width, height)


def _key(relative: Path) -> str:
    return relative.with_suffix("").as_posix()


def _load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise ValueError(f"{path} is not valid YAML ({error}).") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path} is not an ultralytics data.yaml: expected a mapping with train, val and names.")
    return data


def _names(names: Any) -> dict[int, str]:
    if isinstance(names, dict):
        return {int(k): str(v) for k, v in names.items()}
    if isinstance(names, list):
        return {i: str(v) for i, v in enumerate(names)}
    return {}


def _split_images(root: Path, entry: str) -> list[Path]:
    """The images of one data.yaml split entry: a folder (recursive) or a .txt list (``./`` lines are relative to
    the list's folder, as ultralytics reads them; others to the root)."""
    target = Path(entry) if Path(entry).is_absolute() else root / entry
    if target.is_dir():
        return find_images(target)
    if target.suffix == ".txt" and target.is_file():
        lines = [line.strip() for line in target.read_text(encoding="utf-8").splitlines() if line.strip()]
        return [target.parent / line[2:] if line.startswith("./") else root / line for line in lines]
    raise ValueError(f"The data.yaml entry {entry!r} is neither a folder nor a .txt image list under {root}.")


def label_path_of(image: Path) -> Path:
    """Where ultralytics looks for an image's label: the last ``/images/`` of its path -> ``/labels/``, .txt."""
    images, labels = f"{os.sep}images{os.sep}", f"{os.sep}labels{os.sep}"
    return Path(labels.join(str(image).rsplit(images, 1))).with_suffix(".txt")


def _yolo_items(root: Path, images: Iterable[Path]) -> dict[str, Item]:
    items: dict[str, Item] = {}
    for image in images:
        relative = image.relative_to(root) if image.is_relative_to(root) else image
        key = _key(relative) if _key(relative) not in items else relative.as_posix()
        items[key] = Item(key, image, label_path=label_path_of(image))
    return items


def _coco_images_folder(path: Path, images: list[dict[str, Any]], given: str | Path | None) -> Path:
    candidates = [Path(given)] if given is not None else [path.parent / "images", path.parent.parent / "images",
                                                          path.parent]  # fmt: skip
    if not images:
        return candidates[0]
    first = images[0]["file_name"]
    for folder in candidates:
        if (folder / first).exists():
            return folder
    raise ValueError(f"The COCO file's first image {first!r} is in none of {[str(c) for c in candidates]}: pass "
                     "images=<the folder its file_name entries are relative to>.")  # fmt: skip


def _video_record(record: Path) -> Video:
    """A video from the run's record of it (``.auto_annotate/videos/<key>.json``)."""
    values = json.loads(record.read_text(encoding="utf-8"))
    key = values["key"]
    return Video(key, values.get("sequence") or sequence_name(key), tuple(values.get("frame_keys", ())))


def _videos_by_folder(items: dict[str, Item], sequences: Iterable[str]) -> tuple[Video, ...]:
    """Videos named by their flat sequence names: the items of the folder whose `sequence_name` is each one."""
    folders: dict[str, list[str]] = defaultdict(list)
    for key in items:
        folders[key.rpartition("/")[0]].append(key)
    by_sequence = {sequence_name(folder): folder for folder in folders if folder}
    return tuple(Video(by_sequence[s], s, tuple(sorted(folders[by_sequence[s]]))) for s in sequences
                 if s in by_sequence)  # fmt: skip


def _coco_videos(coco: dict[str, Any], items: dict[str, Item]) -> tuple[Video, ...]:
    """COCO's videos of more than one frame, their frames in ``frame_id`` order (the video key: their folder)."""
    keys = {item.coco_image_id: key for key, item in items.items()}
    frames: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for image in coco["images"]:
        if "video_id" in image:
            frames[int(image["video_id"])].append((int(image.get("frame_id", 0)), keys[int(image["id"])]))
    videos = []
    for video in coco.get("videos", []):
        found = [key for _, key in sorted(frames.get(int(video["id"]), []))]
        if len(found) > 1:
            videos.append(Video(found[0].rpartition("/")[0], str(video.get("name", "")), tuple(found)))
    return tuple(videos)


def _mark_frames(items: dict[str, Item], videos: Iterable[Video]) -> dict[str, Item]:
    for video in videos:
        for index, key in enumerate(video.frame_keys):
            if key in items:
                items[key] = replace(items[key], kind="frame", video=video.key, frame_index=index)
    return items
