"""`RunRecord`: which images of a dataset a run has finished, so that a later run resumes where it stopped.

An image is recorded only after every format has written it and its dataset link exists: one empty marker file per
image under ``<dataset>/.auto_annotate/done/``, created atomically. Markers are separate files (not one journal) so
that Ray workers on other machines can record their images in a shared folder without coordination.

`ReviewRecord` is the other half of resuming: the items a person reviewed or corrected, which no run redoes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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


REVIEW_FILE = "review.json"


class ReviewRecord:
    """What a person reviewed and edited in a dataset (``review.json`` beside it, kept in its zips): by item key,
    ``{"reviewed": bool, "edited": bool}``. `auto_annotate` never redoes an item recorded here (`protected`), even
    with ``overwrite``: a person's work outranks a model's. Delete the file (or the item's entry) to redo them."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def read(self) -> dict[str, dict[str, bool]]:
        """Every recorded item; {} when there is no record. ValueError for a file that is not a review record."""
        if not self.path.is_file():
            return {}
        try:
            items = json.loads(self.path.read_text(encoding="utf-8")).get("items", {})
        except (ValueError, AttributeError) as error:
            raise ValueError(f"{self.path} is not a review record ({error}): delete it or restore it.") from error
        return {str(key): {"reviewed": bool(v.get("reviewed")), "edited": bool(v.get("edited"))}
                for key, v in items.items()}  # fmt: skip

    def protected(self) -> frozenset[str]:
        """The items a resumed `auto_annotate` keeps as they are: every one recorded as reviewed or edited."""
        return frozenset(key for key, flags in self.read().items() if flags["reviewed"] or flags["edited"])

    def write(self, items: Mapping[str, Mapping[str, bool]]) -> None:
        """Replace the record (atomically) with `items`, sorted by key; entries with neither flag are left out."""
        kept = {k: {"reviewed": bool(v["reviewed"]), "edited": bool(v["edited"])} for k, v in sorted(items.items())
                if v["reviewed"] or v["edited"]}  # fmt: skip
        write_atomic(self.path, json.dumps({"version": 1, "items": kept}, indent=1) + "\n")
