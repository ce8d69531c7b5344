"""The app's downloads, written by the same exporters as `auto_annotate`: mask PNGs (zipped), COCO JSON and
YOLO-seg labels of the image tab, and per-frame mask PNGs and COCO JSON of the video tab."""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image

from annotate.exporters import ImageEntry, Instance
from annotate.exporters.base import RUN_DIR
from annotate.exporters.coco import CocoExporter
from annotate.exporters.mask_png import MaskPngExporter
from annotate.exporters.yolo import YoloExporter
from sam2_model import VideoSession
from sam2_model.rle import mask_to_rle


def fresh_folder(folder: Path) -> Path:
    """An empty `folder` (its old content removed)."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def zip_tree(root: Path, target: Path) -> Path:
    """Zip every file under `root`; a member's name is its path below `root` with "/" replaced by "_"."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            archive.write(path, "_".join(path.relative_to(root).parts))
    return target


def zip_dataset(dataset: Path, target: Path) -> Path:
    """Zip a dataset folder as it is laid out, without its working files (the run record, COCO parts)."""
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(dataset.rglob("*")):
            relative = path.relative_to(dataset)
            if path.is_file() and relative.parts[0] != RUN_DIR:
                archive.write(path, relative.as_posix())
    return target


def image_exports(
    image_hw: tuple[int, int], objects: Iterable[tuple[np.ndarray | None, str]], upload_name: str, folder: Path
) -> list[Path]:
    """Objects' (HxW bool mask, class name) on one image -> [<name>_masks.zip (object_N.png), <name>_coco.json,
    <name>.txt (YOLO-seg), <name>_classes.txt (the YOLO labels' class list: line N names class N)], named after the
    upload.

    Object N keeps its number in the image tab; objects without a mask are left out. COCO's image is the upload's
    file name and its categories the class names (ids from 1); YOLO class ids number the class names in alphabetical
    order from 0."""
    folder = fresh_folder(folder)
    height, width = image_hw
    stem = safe_stem(upload_name)
    kept = [(n, mask, name) for n, (mask, name) in enumerate(objects, start=1) if mask is not None and mask.any()]
    class_ids = {name: i for i, name in enumerate(sorted({name for _, _, name in kept}))}
    instances = [Instance(class_ids[name], mask_to_rle(mask), name=f"object_{n}") for n, mask, name in kept]
    entry = ImageEntry(stem, Path(upload_name).name, width, height)
    pngs, coco, yolo = MaskPngExporter(folder), CocoExporter(folder, f"{stem}_coco.json", None), YoloExporter(folder)
    for exporter in (pngs, coco, yolo):
        exporter.write(entry, instances)
    classes = folder / f"{stem}_classes.txt"
    classes.write_text("".join(f"{name}\n" for name in class_ids))  # class_ids is in id order
    return [
        zip_tree(pngs.folder(stem), folder / f"{stem}_masks.zip"),
        coco.finish([stem], {i: name for name, i in class_ids.items()}),
        yolo.label_path(stem),
        classes,
    ]


def safe_stem(file_name: str) -> str:
    """A file name's stem, reduced to letters, digits, '-', '_' and '.' (never a path), "image" if nothing is left."""
    stem = re.sub(r"[^\w.-]+", "_", Path(file_name).stem).strip("._")[:80]
    return stem or "image"


def video_exports(session: VideoSession, folder: Path, name: str = "video") -> list[Path]:
    """Every frame of a tracked video with its masks -> [<name>_masks.zip, <name>_coco.json].

    The zip holds each frame as frame_NNNNN.jpg (what the COCO file's images name, so COCO importers such as CVAT
    find them) and each object's mask as frame_NNNNN_object_ID.png. COCO: one image per frame; categories are the
    objects' labels (objects with the same label share one), numbered from 1 in alphabetical order."""
    folder = fresh_folder(folder)
    pngs, coco = MaskPngExporter(folder), CocoExporter(folder, f"{name}_coco.json", None)
    keys = [f"frame_{t:05d}" for t in range(session.num_frames)]
    objects = session.objects
    labels = {obj.obj_id: obj.label or f"object {obj.obj_id}" for obj in objects}
    class_ids = {label: i for i, label in enumerate(sorted(set(labels.values())))}  # COCO writes id + 1
    frames = folder / "masks"
    frames.mkdir(parents=True, exist_ok=True)
    for t, key in enumerate(keys):
        instances = [
            Instance(class_ids[labels[obj_id]], mask_to_rle(mask), name=f"object_{obj_id}")
            for obj_id, mask in session.frame_masks(t).items()
        ]
        Image.fromarray(session.frames.rgb(t)).save(frames / f"{key}.jpg", quality=95)
        entry = ImageEntry(key, f"{key}.jpg", session.video_width, session.video_height)
        pngs.write(entry, instances)  # every object's mask on every frame it has one, empty or not
        coco.write(entry, [i for i in instances if i.rle_area > 0])  # COCO has no empty instances
    names = {i: label for label, i in class_ids.items()}
    return [zip_tree(frames, folder / f"{name}_masks.zip"), coco.finish(keys, names)]
