"""`RunRecord`: which images of a dataset a run has finished, so that a later run resumes where it stopped.

An image is recorded only after every format has written it and its dataset link exists: one empty marker file per
image under ``<dataset>/.auto_annotate/done/``, created atomically. Markers are separate files (not one journal) so
that Ray workers on other machines can record their images in a shared folder without coordination.
"""

from __future__ import annotations

from pathlib import Path

from .exporters.base import RUN_DIR
from .writers import write_atomic


class RunRecord:
    """The finished images of the dataset at `output`."""

    def __init__(self, output: Path) -> None:
        self.folder = Path(output) / RUN_DIR / "done"

    def _marker(self, key: str) -> Path:
        return self.folder / f"{key}.done"

    def is_done(self, key: str) -> bool:
        return self._marker(key).is_file()

    def mark_done(self, key: str) -> None:
        write_atomic(self._marker(key), "")

    def forget(self, key: str) -> None:
        """Mark an image as not done (before it is redone)."""
        self._marker(key).unlink(missing_ok=True)
