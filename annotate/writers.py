"""Everything auto_annotate writes, each file atomically: labels, COCO parts and file, data.yaml, image links.

A file is written to a temporary name in its folder, flushed to disk, then renamed over the target (`os.replace` is
atomic on POSIX and Windows): a crash leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import yaml

from .images import ImageTask

COCO_FILE = "annotations.json"
DATA_YAML = "data.yaml"
SUMMARY_FILE = "summary.json"
PARTS_DIR = ".coco_parts"  # one small JSON per image: lets a resumed run rebuild the COCO file


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old content or all of the new, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


_link_lock = threading.Lock()


def link_image(task: ImageTask) -> None:
    """Show the source image at `task.image_link`: a symlink, else a hard link, else a copy (no extra disk space
    unless links are impossible, e.g. Windows without developer mode)."""
    link = task.image_link
    with _link_lock:
        if link.is_symlink() or link.exists():
            return
        link.parent.mkdir(parents=True, exist_ok=True)
        source = task.source.resolve()
        try:
            link.symlink_to(source)
        except OSError:
            try:
                os.link(source, link)
            except OSError:
                shutil.copy2(source, link)


def coco_part_path(output_dir: Path, task: ImageTask) -> Path:
    return output_dir / PARTS_DIR / task.label.relative_to(output_dir / "labels").with_suffix(".json")


def write_coco_part(output_dir: Path, task: ImageTask, width: int, height: int, annotations: list[dict]) -> None:
    part = {"file_name": task.image_link.relative_to(output_dir).as_posix(), "width": width, "height": height}
    write_atomic(coco_part_path(output_dir, task), json.dumps({**part, "annotations": annotations}))


def assemble_coco(output_dir: Path, tasks: list[ImageTask], names: dict[int, str]) -> Path:
    """Build the COCO instances file from the per-image parts of every finished image."""
    images, annotations = [], []
    for image_id, task in enumerate(tasks, start=1):
        part_path = coco_part_path(output_dir, task)
        if not part_path.exists() or not task.label.exists():
            continue
        part = json.loads(part_path.read_text(encoding="utf-8"))
        images.append(
            {"id": image_id, "file_name": part["file_name"], "width": part["width"], "height": part["height"]}
        )
        for annotation in part["annotations"]:
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "iscrowd": 0, **annotation})
    used = {a["category_id"] for a in annotations}
    categories = [{"id": i, "name": names.get(i, f"class_{i}")} for i in sorted(set(names) | used)]
    coco = {"info": {"description": "auto_annotate (YOLO boxes -> SAM 2 masks)"}, "images": images,
            "annotations": annotations, "categories": categories}  # fmt: skip
    path = output_dir / COCO_FILE
    write_atomic(path, json.dumps(coco))
    return path


def write_data_yaml(output_dir: Path, names: dict[int, str]) -> Path:
    """An ultralytics dataset file: images and labels of the output folder, the detector's class names."""
    content: dict[str, Any] = {
        "path": str(output_dir.resolve()),
        "train": "images",
        "val": "images",
        "names": {int(k): v for k, v in sorted(names.items())},
    }
    path = output_dir / DATA_YAML
    write_atomic(path, yaml.safe_dump(content, sort_keys=False, allow_unicode=True))
    return path
