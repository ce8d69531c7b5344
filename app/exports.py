"""The app's downloads, written by the same exporters as `auto_annotate`: mask PNGs (zipped), COCO JSON and
YOLO-seg labels of the image tab, and per-frame mask PNGs and COCO JSON of the video tab."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from annotate.exporters import ImageEntry, Instance
from annotate.exporters.base import RUN_DIR
from annotate.exporters.coco import CocoExporter
from annotate.exporters.mask_png import MaskPngExporter
from annotate.exporters.yolo import YoloExporter
from sam2_model import VideoSession
from sam2_model.formats import mask_to_rle

IMAGE_KEY = "image"


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


def image_exports(image_hw: tuple[int, int], masks: Iterable[np.ndarray | None], folder: Path) -> list[Path]:
    """Objects' HxW bool masks on one image -> [masks.zip (object_N.png), coco.json, image.txt (YOLO-seg)].

    Object N keeps its number in the image tab; objects without a mask are left out; every object is class 0
    ("object")."""
    folder = fresh_folder(folder)
    height, width = image_hw
    instances = [
        Instance(0, mask_to_rle(mask), name=f"object_{number}")
        for number, mask in enumerate(masks, start=1)
        if mask is not None and mask.any()
    ]
    entry = ImageEntry(IMAGE_KEY, "image.png", width, height)
    pngs, coco, yolo = MaskPngExporter(folder), CocoExporter(folder, "coco.json", None), YoloExporter(folder)
    for exporter in (pngs, coco, yolo):
        exporter.write(entry, instances)
    return [
        zip_tree(pngs.folder(IMAGE_KEY), folder / "masks.zip"),
        coco.finish([IMAGE_KEY], {0: "object"}),
        yolo.label_path(IMAGE_KEY),
    ]


def video_exports(session: VideoSession, folder: Path) -> list[Path]:
    """Every frame's masks of a tracked video -> [masks.zip (frame_NNNNN_object_ID.png), coco.json (one image per
    frame; each object's category is its class id, else its place in the session, named by its label)]."""
    folder = fresh_folder(folder)
    pngs, coco = MaskPngExporter(folder), CocoExporter(folder, "coco.json", None)
    keys = [f"frame_{t:05d}" for t in range(session.num_frames)]
    objects = session.objects
    category = {obj.obj_id: obj.class_id if obj.class_id is not None else n for n, obj in enumerate(objects, 1)}
    for t, key in enumerate(keys):
        instances = [
            Instance(category[obj_id], mask_to_rle(mask), name=f"object_{obj_id}")
            for obj_id, mask in session.frame_masks(t).items()
        ]
        entry = ImageEntry(key, f"{key}.png", session.video_width, session.video_height)
        pngs.write(entry, instances)  # every object's mask on every frame it has one, empty or not
        coco.write(entry, [i for i in instances if i.rle_area > 0])  # COCO has no empty instances
    names = {category[obj.obj_id]: obj.label or f"object {obj.obj_id}" for obj in objects}
    return [zip_tree(folder / "masks", folder / "masks.zip"), coco.finish(keys, names)]
