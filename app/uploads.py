"""Uploaded files for auto-annotation: images, and the images inside zips, copied under names we choose.

Everything is decided from the zip's directory before a byte is extracted: how many entries, how long their names,
how much they expand to and by what ratio. A zip bomb is refused at the cost of reading its directory.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from ultralytics.data.utils import IMG_FORMATS

from .settings import Limits

MAX_NAME_CHARS = 255  # longer names are refused (file systems refuse them too)
BOMB_RATIO = 100  # a member larger than BOMB_MIN_BYTES that expands more than this is refused
BOMB_MIN_BYTES = 1 << 20


class UploadError(ValueError):
    """An upload we refuse; the message names the limit and is safe to show to the user."""


def is_image_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower().lstrip(".") in IMG_FORMATS


def collect_uploads(files: Sequence[str], target: Path, limits: Limits) -> int:
    """Copy uploaded images, and the images inside uploaded zips, into `target` under their own names (`safe_name`;
    a zip's images under a folder named after the zip; a name taken twice gets a number), so the dataset keeps the
    user's names and no name from an upload becomes a path outside `target`.
    Other files are ignored. Returns the number of images.

    Raises UploadError, before writing anything, for too many images, a zip with too many entries, overlong names,
    too many bytes once expanded, or a member that expands like a zip bomb; and for an unreadable zip.
    """
    plan: list[tuple[Path, zipfile.ZipInfo | None, Path]] = []  # (upload, member or None, destination)
    expanded, taken = 0, set()

    def place(*parts: str) -> Path:
        path = target.joinpath(*(safe_name(part) for part in parts))
        stem, number = path.with_suffix(""), 2
        while path in taken:
            path, number = stem.with_name(f"{stem.name}_{number}").with_suffix(path.suffix), number + 1
        taken.add(path)
        return path

    for file in files:
        path = Path(file)
        if zipfile.is_zipfile(path):
            members = _zip_members(path, limits)
            expanded += sum(info.file_size for info in members)
            for info in members:
                plan.append((path, info, place(path.stem, *PurePosixPath(info.filename).parts)))
        elif is_image_name(path.name):
            expanded += path.stat().st_size
            plan.append((path, None, place(path.name)))
        if len(plan) > limits.max_annotate_images:
            raise UploadError(
                f"The upload holds more than {limits.max_annotate_images} images; the limit is "
                f"{limits.max_annotate_images} per run."
            )
    if expanded > limits.max_expanded_mb * 2**20:
        raise UploadError(f"The upload expands to {expanded / 2**20:.0f} MB; the limit is {limits.max_expanded_mb} MB.")
    for source, member, destination in plan:
        destination.parent.mkdir(parents=True, exist_ok=True)
        if member is None:
            shutil.copy(source, destination)
            continue
        with zipfile.ZipFile(source) as archive, archive.open(member) as data, open(destination, "wb") as out:
            shutil.copyfileobj(data, out)  # zipfile stops at the declared size and checks the CRC
    return len(plan)


def safe_name(name: str) -> str:
    """A file or folder name as the user gave it, without what no file system takes (control characters, and
    < > : " / \\ | ? * that Windows refuses); never empty, '.' or '..'."""
    cleaned = re.sub(r'[\x00-\x1f<>:"/\\|?*]+', "_", name).strip(". ") or "file"
    return cleaned[:MAX_NAME_CHARS]


def _zip_members(path: Path, limits: Limits) -> list[zipfile.ZipInfo]:
    """The image members of a zip to extract, after checking the whole directory against the limits."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise UploadError("A zip file could not be read (corrupt or not a zip).") from error
    if len(entries) > limits.max_zip_entries:
        raise UploadError(f"A zip holds {len(entries)} entries; the limit is {limits.max_zip_entries}.")
    members = []
    for entry in entries:
        name = PurePosixPath(entry.filename)
        if len(entry.filename) > MAX_NAME_CHARS * 4 or any(len(part) > MAX_NAME_CHARS for part in name.parts):
            raise UploadError(f"A zip holds a file name longer than {MAX_NAME_CHARS} characters; rename it.")
        if entry.is_dir() or name.is_absolute() or ".." in name.parts or not is_image_name(entry.filename):
            continue  # folders, paths that would leave the upload folder, other files
        if entry.flag_bits & 0x1:
            raise UploadError("A zip holds an encrypted image; upload it without a password.")
        if entry.file_size > BOMB_MIN_BYTES and entry.file_size > BOMB_RATIO * max(entry.compress_size, 1):
            raise UploadError(
                f"A zip member expands {entry.file_size / max(entry.compress_size, 1):.0f} times (more than "
                f"{BOMB_RATIO} times is refused as a zip bomb)."
            )
        members.append(entry)
    return members
