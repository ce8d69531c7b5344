"""File primitives of a dataset: atomic text files and links to the source images.

A file is written to a temporary name in its folder, flushed to disk, then renamed over the target (`os.replace` is
atomic on POSIX and Windows): a crash leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old content or all of the new, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide a shared dataset's files from its other readers
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as file:
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


_link_lock = threading.Lock()


def link_file(source: Path, link: Path) -> None:
    """Show `source` at `link`: a symlink, else a hard link, else a copy (no extra disk space unless links are
    impossible, e.g. Windows without developer mode). An existing link is kept."""
    with _link_lock:
        if link.is_symlink() or link.exists():
            return
        link.parent.mkdir(parents=True, exist_ok=True)
        resolved = source.resolve()
        try:
            link.symlink_to(resolved)
        except OSError:
            try:
                os.link(resolved, link)
            except OSError:
                shutil.copy2(resolved, link)
