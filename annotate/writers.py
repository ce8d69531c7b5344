"""File primitives of a dataset: atomic text files, links to the source images, hard links to its own files.

A file is written to a temporary name in its folder, flushed to disk, then renamed over the target (`os.replace` is
atomic on POSIX and Windows): a crash leaves the old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def write_atomic(path: Path, text: str) -> None:
    """Write `text` to `path` so that readers see the old content or all of the new, never a part."""
    with open_atomic(path) as file:
        file.write(text)


def write_atomic_bytes(path: Path, data: bytes) -> None:
    """`write_atomic` for bytes (an encoded image, say)."""
    with open_atomic(path, binary=True) as file:
        file.write(data)


@contextmanager
def open_atomic(path: Path, binary: bool = False) -> Iterator[IO[Any]]:
    """A file to write `path` through, streamed: it takes the target's name only when the block ends without an
    error (flushed to disk first); on an error the partial file is deleted and the old target, if any, stays."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(temporary, 0o644)  # mkstemp's 0600 would hide a shared dataset's files from its other readers
        mode = "wb" if binary else "w"
        encoding = None if binary else "utf-8"
        with os.fdopen(handle, mode, encoding=encoding, newline=None if binary else "\n") as file:
            yield file
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


def hard_link(source: Path, target: Path) -> None:
    """Show `source` at `target` as a hard link (no extra disk; a real file for every reader and zip, wherever the
    dataset moves), else a copy; atomically (a temporary name renamed over the target)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(handle)
    os.unlink(temporary)
    try:
        try:
            os.link(source, temporary)
        except OSError:  # another file system, or links not allowed
            shutil.copyfile(source, temporary)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
