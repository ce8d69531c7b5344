"""Uploaded files for auto-annotation: images and videos, and those inside zips, copied under names we choose.

Everything is decided from the zip's directory before a byte is extracted: how many entries, how long their names,
how much they expand to and by what ratio. A zip bomb is refused at the cost of reading its directory.
"""

from __future__ import annotations

import re
import shutil
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path, PurePosixPath

from ultralytics.data.utils import IMG_FORMATS

from annotate.video_stream import VIDEO_SUFFIXES, probe_video
from annotate.videos import find_videos

from .refusals import Refusal
from .settings import Limits

MAX_NAME_CHARS = 255  # longer names are refused (file systems refuse them too)
BOMB_RATIO = 100  # a member larger than BOMB_MIN_BYTES that expands more than this is refused
BOMB_MIN_BYTES = 1 << 20
DATASET_SUFFIXES = {".txt", ".json", ".yaml", ".yml"}  # besides images: what a dataset zip's readers read


class UploadError(Refusal):
    """An upload we refuse; the message names the limit and is safe to show to the user."""


def is_image_name(name: str) -> bool:
    return PurePosixPath(name).suffix.lower().lstrip(".") in IMG_FORMATS


def is_media_name(name: str) -> bool:
    """An image or a video, by its name."""
    return is_image_name(name) or PurePosixPath(name).suffix.lower() in VIDEO_SUFFIXES


def collect_uploads(files: Sequence[str], target: Path, limits: Limits) -> int:
    """Copy uploaded images and videos, and those inside uploaded zips, into `target` under their own names
    (`safe_name`; a zip's files under a folder named after the zip; a name taken twice gets a number), so the
    dataset keeps the user's names and no name from an upload becomes a path outside `target`.
    Other files are ignored. Returns the number of images and videos.

    Raises UploadError, before writing anything, for too many files, a zip with too many entries, overlong names,
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
        elif is_media_name(path.name):
            expanded += path.stat().st_size
            plan.append((path, None, place(path.name)))
        if len(plan) > limits.max_annotate_images:
            raise UploadError(
                f"The upload holds more than {limits.max_annotate_images} images; the limit is "
                f"{limits.max_annotate_images} per run (a video counts as one)."
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


def extract_dataset(upload: str, target: Path, limits: Limits) -> Path:
    """An uploaded dataset zip (the Review tab) extracted into `target`: its images, labels, COCO / VIS JSON,
    data.yaml and MOT text, under their own names (`safe_name`); other files, hidden ones (`is_hidden`), folders and
    paths that would leave `target` are skipped. The zip is checked as `collect_uploads` checks one (entries, name
    lengths, expanded bytes, zip bombs) before a byte is written. Returns the dataset's folder: `target`, or the one
    folder the zip holds everything in. UploadError for anything else than a readable zip within the limits."""
    path = Path(upload)
    if not zipfile.is_zipfile(path):
        raise UploadError("Upload the dataset as one .zip file (its folder zipped: images, labels, COCO JSON).")
    # hidden members are skipped before the limits are checked: they cost nothing, so they count for nothing
    members = _zip_members(path, limits, lambda name: is_dataset_name(name) and not is_hidden(name))
    expanded = sum(info.file_size for info in members)
    if expanded > limits.max_expanded_mb * 2**20:
        raise UploadError(f"The zip expands to {expanded / 2**20:.0f} MB; the limit is {limits.max_expanded_mb} MB.")
    with zipfile.ZipFile(path) as archive:
        for info in members:
            destination = target.joinpath(*(safe_name(part) for part in PurePosixPath(info.filename).parts))
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as data, open(destination, "wb") as out:
                shutil.copyfileobj(data, out)  # zipfile stops at the declared size and checks the CRC
    root = target
    while root.is_dir() and len(entries := list(root.iterdir())) == 1 and entries[0].is_dir():
        root = entries[0]  # a zipped folder: the dataset is inside it
    return root


def is_hidden(name: str) -> bool:
    """A zip member no dataset reader reads: under a hidden folder (an auto_annotate run's working files in
    ``.auto_annotate``), a hidden file, or macOS's ``__MACOSX`` copies."""
    return any(part.startswith(".") or part == "__MACOSX" for part in PurePosixPath(name).parts)


def is_dataset_name(name: str) -> bool:
    """A file a dataset is made of, by its name: an image or video, or labels (.txt), COCO / VIS (.json), data.yaml."""
    return is_media_name(name) or PurePosixPath(name).suffix.lower() in DATASET_SUFFIXES


def check_videos(folder: Path, limits: Limits) -> int:
    """Refuse (UploadError) a video under `folder` over the Video tab's limits (frames, seconds, pixels), from its
    header, before a frame is decoded; return the videos' frames in all. An unreadable video is let through:
    auto_annotate reports it by name and annotates the rest."""
    total = 0
    for video in find_videos(folder):
        try:
            frames, fps, width, height = probe_video(video)
        except ValueError:
            continue
        name, seconds = video.name, frames / max(fps, 1e-3)
        if frames > limits.max_video_frames or seconds > limits.max_video_seconds:
            raise UploadError(
                f"{name} has {frames} frames ({seconds:.0f} s); the limit is {limits.max_video_frames} "
                f"frames and {limits.max_video_seconds:.0f} s per video. Trim it, or annotate it with the Python "
                "library."
            )
        if width * height > limits.max_video_pixels:
            raise UploadError(
                f"{name} is {width}x{height}; the limit is {limits.max_video_pixels:,} pixels a frame. Downscale it."
            )
        total += frames
    if total > limits.max_video_frames:
        raise UploadError(
            f"The videos have {total} frames in all; the limit is {limits.max_video_frames} frames per run."
        )
    return total


def safe_name(name: str) -> str:
    """A file or folder name as the user gave it, without what no file system takes (control characters, and
    < > : " / \\ | ? * that Windows refuses); never empty, '.' or '..'."""
    cleaned = re.sub(r'[\x00-\x1f<>:"/\\|?*]+', "_", name).strip(". ") or "file"
    return cleaned[:MAX_NAME_CHARS]


def _zip_members(path: Path, limits: Limits, wanted: Callable[[str], bool] = is_media_name) -> list[zipfile.ZipInfo]:
    """The members of a zip to extract (those whose name is `wanted`: images and videos by default), after checking
    the whole directory against the limits."""
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
        if entry.is_dir() or name.is_absolute() or ".." in name.parts or not wanted(entry.filename):
            continue  # folders, paths that would leave the upload folder, other files
        if entry.flag_bits & 0x1:
            raise UploadError("A zip holds an encrypted file; upload it without a password.")
        if entry.file_size > BOMB_MIN_BYTES and entry.file_size > BOMB_RATIO * max(entry.compress_size, 1):
            raise UploadError(
                f"A zip member expands {entry.file_size / max(entry.compress_size, 1):.0f} times (more than "
                f"{BOMB_RATIO} times is refused as a zip bomb)."
            )
        members.append(entry)
    return members
