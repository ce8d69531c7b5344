"""What a `Dataset` read from disk, stamped, so that `Dataset.save` never replaces a file changed since by another.

Two browser tabs, or the app and a script, that open the same folder and both save would otherwise overwrite each
other's edits without a word. A file's stamp (inode, size, modification time in ns; a folder's: those of its files;
a missing file's: None) is taken when the dataset first reads what the file holds for it (opening: the COCO file and
the review record; an item's files when its instances are first asked for; a video's track files when its tracks
are), and again after `save` wrote it. Before writing, `save` compares every file it is about to replace with its
stamp and writes nothing when one differs (`DatasetChangedOnDisk`). Saves replace files with `os.replace` (a new
inode), so a rewrite of the same size within the file system's clock tick is seen too.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

from .dataset_items import Item, Video
from .dataset_readers import DatasetSource
from .exporters.coco import CocoExporter
from .exporters.mask_png import MaskPngExporter
from .mot import gt_path
from .video_outputs import VIS_FILE, vis_part_path

# (inode, size, mtime_ns) of a file; ((name, inode, size, mtime_ns), ...) of a folder's files; None: no such file
Stamp = tuple[int, int, int] | tuple[tuple[str, int, int, int], ...] | None


class DatasetChangedOnDisk(RuntimeError):
    """`Dataset.save` refused: files it would replace changed on disk since the dataset read them (`paths`)."""

    def __init__(self, root: Path, paths: Sequence[Path]) -> None:
        self.paths = tuple(paths)
        shown = [_relative(root, p) for p in self.paths[:5]] + [f"{len(paths) - 5} more"] * (len(paths) > 5)
        super().__init__(
            f"Nothing was saved: {', '.join(shown)} changed on disk since this dataset read "
            f"{'it' if len(paths) == 1 else 'them'} (saved from another browser tab or program?), and saving "
            "would overwrite those changes. Your edits are kept here, unsaved: to keep both, open the dataset again "
            "(its files as they are now) and redo your edits there; to keep only yours, save with force=True."
        )


def stamp_of(path: Path) -> Stamp:
    """`path`'s stamp now (see the module's docstring)."""
    try:
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file())
            return tuple((p.relative_to(path).as_posix(), *_file_stamp(p)) for p in found)
        return _file_stamp(path) if path.exists() else None
    except FileNotFoundError:  # a folder's file removed between the listing and its stat
        return None


class FileStamps:
    """The stamps of the files a dataset read, by path; a path never recorded is not checked."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._stamps: dict[Path, Stamp] = {}

    def record(self, paths: Iterable[Path]) -> None:
        """Stamp `paths` as they are now, unless stamped already (what the dataset read first is what it holds)."""
        for path in paths:
            if path not in self._stamps:
                self._stamps[path] = stamp_of(path)

    def changed(self, paths: Iterable[Path]) -> list[Path]:
        """Those of `paths` recorded whose stamp differs now, in the order given."""
        return [p for p in dict.fromkeys(paths) if p in self._stamps and stamp_of(p) != self._stamps[p]]

    def check(self, paths: Iterable[Path]) -> None:
        """DatasetChangedOnDisk naming those of `paths` that changed since they were stamped; nothing when none."""
        changed = self.changed(paths)
        if changed:
            raise DatasetChangedOnDisk(self.root, changed)

    def refresh(self, paths: Iterable[Path]) -> None:
        """Stamp `paths` again (after this dataset wrote them: what it holds now)."""
        for path in paths:
            self._stamps[path] = stamp_of(path)


def item_files(source: DatasetSource, item: Item) -> list[Path]:
    """The files `save` writes for a changed item (`annotate.dataset_save`): its YOLO label, its mask PNG folder,
    the run's COCO part of it; the COCO file is the dataset's (`source.coco_path`)."""
    files = []
    if "yolo" in source.formats and item.label_path is not None:
        files.append(item.label_path)
    if "masks" in source.formats:
        files.append(MaskPngExporter(source.root).folder(item.key))
    if source.layout == "auto_annotate" and "coco" in source.formats:
        files.append(CocoExporter(source.root).part_path(item.key))
    return files


def video_files(source: DatasetSource, video: Video) -> list[Path]:
    """The files `save` writes for a video whose tracks changed (`annotate.dataset_save_tracks`)."""
    gt = gt_path(source.root, video.sequence)
    return [gt, gt.parent / "labels.txt", source.root / VIS_FILE, vis_part_path(source.root, video.key)]


def replaced_files(
    source: DatasetSource, items: Sequence[Item], videos: Sequence[Video], record: Path | None, classes_added: bool
) -> list[Path]:
    """What a save replaces: the changed `items`' files, the edited `videos`' track files, the COCO file when any item
    changed, the review `record` (None: unchanged) and, when classes were added, the files naming them."""
    files = [f for item in items for f in item_files(source, item)]
    files += [f for video in videos for f in video_files(source, video)]
    files += [p for p in (source.coco_path,) if p is not None and items]
    files += [record] if record is not None else []
    files += [p for p in (source.names_file, source.coco_path) if p is not None and classes_added]
    return files


def _file_stamp(path: Path) -> tuple[int, int, int]:
    info = os.stat(path)
    return info.st_ino, info.st_size, info.st_mtime_ns


def _relative(root: Path, path: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:  # a COCO file outside the images' folder
        return path.name
