"""Finding and reading the images of a folder, and where each one goes in the dataset.

`read_image` is the one guarded image opener of the project (the annotator and the app's uploads): it checks the
size from the file's header before decoding anything, so a small file that would decode to gigapixels costs nothing.
"""

from __future__ import annotations

import re
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePath, PurePosixPath

import numpy as np
from PIL import Image, ImageOps

# The image types ultralytics' dataset loader accepts (ultralytics.data.utils.IMG_FORMATS).
from ultralytics.data.utils import IMG_FORMATS

# A folder named images, images_, images__, ...: it gets one more "_" in the dataset (see `dataset_path`).
_IMAGES_FOLDER = re.compile(r"images_*")

# Refuse decompression bombs: a tiny file that expands to gigapixels would take the run down.
MAX_IMAGE_PIXELS = 200_000_000


class ImageReadError(ValueError):
    """An image that cannot be used. `reason` says why without the file's path (safe to show to a web user);
    the message names the file too."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class ImageTask:
    """One image of the run.

    source: the image file. key: its unique name in the dataset, a relative POSIX path without suffix
    (``sub/photo``): per-image outputs are named after it. image_link: where the dataset shows the image
    (``images/<relative path>``, renamed when two images share a stem). name: its path under the input folder
    without suffix, as the user named it (boxes you already have are found by it; the key may differ).
    """

    source: Path
    key: str
    image_link: Path
    name: str = ""

    def to_dict(self) -> dict[str, str]:
        return {"source": str(self.source), "key": self.key, "image_link": str(self.image_link), "name": self.name}

    @classmethod
    def from_dict(cls, values: dict[str, str]) -> ImageTask:
        return cls(Path(values["source"]), values["key"], Path(values["image_link"]), values.get("name", ""))


def find_images(folder: Path) -> list[Path]:
    """Every image file under `folder` (recursive, sorted); other files are ignored."""
    return find_files(folder, lambda p: p.suffix.lower().lstrip(".") in IMG_FORMATS)


def find_files(folder: Path, wanted: Callable[[Path], bool]) -> list[Path]:
    """Every file under `folder` (recursive, sorted) that `wanted` accepts, hidden files and folders left out."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and wanted(p) and not _hidden(p, folder))


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def dataset_path(relative: PurePath, folders_only: bool = True) -> PurePosixPath:
    """A path relative to the input folder -> its place in the dataset (under ``images/``, ``labels/``, ...).

    ultralytics finds an image's label by replacing the *last* ``/images/`` of the image's path with ``/labels/``:
    a source folder named ``images`` (``data/images/cam.mp4`` -> ``images/images/cam/...``) would send it to
    ``images/labels/cam/...``, where no label is. So a folder named ``images``, ``images_``, ``images__``, ... gets
    one more ``_`` (``images_/cam/...``): no dataset path has a second ``images`` part, and distinct folders stay
    distinct. `folders_only`: leave the last part (a file's name) as it is.
    """
    parts = relative.parts
    last = len(parts) - 1 if folders_only else len(parts)
    return PurePosixPath(*(f"{p}_" if i < last and _IMAGES_FOLDER.fullmatch(p) else p for i, p in enumerate(parts)))


def plan_tasks(folder: Path, images: list[Path], output_dir: Path) -> list[ImageTask]:
    """Map each image to its dataset key and link, so that two images never share a label file.

    ultralytics finds an image's label by swapping ``images/`` for ``labels/`` and the suffix for ``.txt``, so
    ``a.jpg`` and ``a.png`` in one folder would share ``a.txt``: such images keep their suffix in the name
    (``a_jpg.jpg``, ``a_png.png``). Folders named ``images`` are renamed (`dataset_path`).
    """
    by_stem: dict[tuple[PurePosixPath, str], list[Path]] = defaultdict(list)
    for image in images:
        relative = dataset_path(image.relative_to(folder))
        by_stem[(relative.parent, relative.stem.lower())].append(image)
    tasks = []
    for image in images:
        relative = dataset_path(image.relative_to(folder))
        stem = relative.stem
        if len(by_stem[(relative.parent, stem.lower())]) > 1:
            stem = f"{stem}_{relative.suffix.lstrip('.').lower()}"
        tasks.append(
            ImageTask(
                source=image,
                key=(relative.parent / stem).as_posix(),
                image_link=output_dir / "images" / relative.parent / f"{stem}{relative.suffix}",
                name=image.relative_to(folder).with_suffix("").as_posix(),
            )
        )
    return tasks


def read_image(path: str | Path, max_pixels: int = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Decode an image file as HxWx3 uint8 RGB with its EXIF orientation applied (as ultralytics does).

    Grayscale, palette, RGBA and CMYK images are converted; 16-bit images are scaled to 8 bits (not clipped).
    Raises ImageReadError naming the file for an empty, truncated, corrupt or non-image file, and for one over
    `max_pixels` pixels (checked from the header, before decoding).
    """
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise ImageReadError(path, "the file is empty (0 bytes): it could not be read as an image")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # `max_pixels` decides, not PIL's warning
            with Image.open(path) as image:
                if image.width * image.height > max_pixels:
                    raise ImageReadError(
                        path,
                        f"the image is {image.width}x{image.height} pixels; the limit is {max_pixels:,} pixels "
                        "(use a smaller image)",
                    )
                image.load()  # decode now: a truncated file fails here, not later in the model
                return _to_rgb(ImageOps.exif_transpose(image))
    except ImageReadError:
        raise
    except Image.DecompressionBombError as error:  # PIL's own hard limit (at twice its warning size), at open
        found = re.search(r"\((\d+) pixels\)", str(error))
        size = f"{int(found.group(1)):,} pixels" if found else "more pixels than can be decoded safely"
        reason = f"the image has {size}; the limit is {max_pixels:,} pixels (use a smaller image)"
        raise ImageReadError(path, reason) from error
    except (Image.UnidentifiedImageError, ImportError) as error:
        # ImportError: ultralytics' patched Image.open tries an optional HEIF plugin on unknown files
        reason = "the file could not be read as an image: not an image, or a format we cannot read (use JPEG or PNG)"
        raise ImageReadError(path, reason) from error
    except Exception as error:  # PIL raises OSError (truncated), SyntaxError, ValueError, ... on broken files
        raise ImageReadError(
            path, f"the image could not be read: the file is corrupt or truncated ({type(error).__name__})"
        ) from error


def read_image_at(path: Path, resolution_wh: tuple[int, int], key: str) -> np.ndarray:
    """`read_image`, checked to be at the (width, height) the labels of item `key` are for: ValueError otherwise."""
    image = read_image(path)
    if (image.shape[1], image.shape[0]) != resolution_wh:
        found, stated = f"{image.shape[1]}x{image.shape[0]}", "x".join(map(str, resolution_wh))
        raise ValueError(f"{key!r}'s image is {found} but its labels are for {stated}: fix the dataset's sizes.")
    return image


def _to_rgb(image: Image.Image) -> np.ndarray:
    """Any PIL mode -> HxWx3 uint8 RGB; 16- and 32-bit integer modes are scaled from 0..65535 to 0..255."""
    if image.mode.startswith("I"):  # I;16, I;16B, I;16L and I (PNG's 16-bit gray): PIL's convert would clip at 255
        values = np.asarray(image, dtype=np.int64)
        gray = (np.clip(values, 0, 65535) // 257).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    return np.array(image.convert("RGB"))
