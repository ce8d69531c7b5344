"""Finding and reading the images of a folder, and where each one's label goes."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

# The image types ultralytics' dataset loader accepts (ultralytics.data.utils.IMG_FORMATS).
from ultralytics.data.utils import IMG_FORMATS

# Refuse decompression bombs: a tiny file that expands to gigapixels would take the run down.
MAX_IMAGE_PIXELS = 200_000_000


@dataclass(frozen=True)
class ImageTask:
    """One image of the run.

    source: the image file. relative: its path under the input folder. image_link: where the dataset shows it
    (``images/<relative>``, renamed when two images share a stem). label: its YOLO label file (``labels/...txt``).
    """

    source: Path
    relative: Path
    image_link: Path
    label: Path


def find_images(folder: Path) -> list[Path]:
    """Every image file under `folder` (recursive, sorted); other files are ignored."""
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file() and p.suffix.lower().lstrip(".") in IMG_FORMATS and not _hidden(p, folder)
    )


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def plan_tasks(folder: Path, images: list[Path], output_dir: Path) -> list[ImageTask]:
    """Map each image to its dataset link and label file, so that two images never share a label file.

    ultralytics finds an image's label by swapping ``images/`` for ``labels/`` and the suffix for ``.txt``, so
    ``a.jpg`` and ``a.png`` in one folder would share ``a.txt``: such images keep their suffix in the name
    (``a_jpg.jpg``, ``a_png.png``).
    """
    by_stem: dict[tuple[Path, str], list[Path]] = defaultdict(list)
    for image in images:
        relative = image.relative_to(folder)
        by_stem[(relative.parent, relative.stem.lower())].append(image)
    tasks = []
    for image in images:
        relative = image.relative_to(folder)
        stem = relative.stem
        if len(by_stem[(relative.parent, stem.lower())]) > 1:
            stem = f"{stem}_{relative.suffix.lstrip('.').lower()}"
        tasks.append(
            ImageTask(
                source=image,
                relative=relative,
                image_link=output_dir / "images" / relative.parent / f"{stem}{relative.suffix}",
                label=output_dir / "labels" / relative.parent / f"{stem}.txt",
            )
        )
    return tasks


def read_image(path: Path) -> np.ndarray:
    """Decode an image file as HxWx3 uint8 RGB with its EXIF orientation applied (as ultralytics does).

    Raises ValueError naming the file for an empty, truncated, corrupt or oversized image.
    """
    if path.stat().st_size == 0:
        raise ValueError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as image:
            if image.width * image.height > MAX_IMAGE_PIXELS:
                raise ValueError(f"{path}: {image.width}x{image.height} is over the {MAX_IMAGE_PIXELS:,}-pixel limit")
            image.load()  # decode now: a truncated file fails here, not later in the model
            return np.array(ImageOps.exif_transpose(image).convert("RGB"))
    except ValueError:
        raise
    except Exception as error:  # PIL raises UnidentifiedImageError, OSError (truncated), DecompressionBombError...
        raise ValueError(f"{path}: not a readable image ({type(error).__name__}: {error})") from error
