"""Uploaded files for auto-annotation: images, and the images inside zips, copied under names we choose."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

MAX_MEMBER_BYTES = 10**8  # one zip member larger than this is skipped


def collect_uploads(files: Sequence[str], target: Path) -> None:
    """Copy uploaded images, and the images inside uploaded zips, into `target` (our own file names: an upload's
    name never becomes a path outside `target`)."""
    for index, file in enumerate(files):
        path = Path(file)
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                for member in archive.infolist():
                    name = PurePosixPath(member.filename)
                    unsafe = name.is_absolute() or ".." in name.parts
                    if member.is_dir() or unsafe or member.file_size > MAX_MEMBER_BYTES:
                        continue  # zip-slip and zip-bomb guard
                    safe = target / f"zip{index}" / Path(*name.parts)
                    safe.parent.mkdir(parents=True, exist_ok=True)
                    with archive.open(member) as source, open(safe, "wb") as destination:
                        shutil.copyfileobj(source, destination)
        else:
            shutil.copy(path, target / f"upload_{index:04d}{path.suffix.lower()}")
