"""A dataset's classes under review: a class looked up by id or name, a new class's name checked, and the class
lists written back in every format the dataset holds when classes were added (a missed object of a class the
detector never found).

Where a dataset names its classes: ``data.yaml``'s ``names`` (ultralytics; a list or a mapping by class id, with
``nc`` when the file has one), ``classes.txt`` (line N names class N) and the COCO file's ``categories`` (category id
= class id + 1). A new class takes the next class id after the last one named, so that ultralytics' check of
consecutive ids from 0 keeps passing.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .dataset_readers import DatasetSource, read_source
from .exporters.base import class_id_to_category_id
from .run_record import REVIEW_FILE
from .writers import write_atomic

MAX_CLASS_NAME = 64  # characters of a class name (what the Image tab's exports allow too)
# Unicode categories no reader gives back as typed: control characters (tab, new line, NEL, which YAML reads as a
# line break), invisible format characters (a zero-width space makes "car" and "car" two classes), line and
# paragraph separators, surrogates, private-use and unassigned code points.
_REFUSED = {"Cc": "a control character", "Cf": "an invisible character", "Zl": "a line separator",
            "Zp": "a paragraph separator", "Cs": "a surrogate", "Co": "a private-use character",
            "Cn": "an unassigned character"}  # fmt: skip


def check_class_name(name: Any) -> str:
    """A new class's name as given -> the name kept, spaces at its ends dropped (``classes.txt`` readers drop them).
    ValueError saying what to change for anything that every format would not read back the same: not a string,
    empty, longer than `MAX_CLASS_NAME` characters, or holding a character of `_REFUSED`'s kinds."""
    if not isinstance(name, str):
        raise ValueError(f"A class name must be text, got {type(name).__name__}.")
    for character in name:
        kind = unicodedata.category(character)
        if kind in _REFUSED:
            where = f"U+{ord(character):04X}"
            raise ValueError(f"The class name {name[:MAX_CLASS_NAME]!r} holds {_REFUSED[kind]} ({where}): type "
                             "letters, digits, spaces and punctuation only.")  # fmt: skip
    kept = name.strip()
    if not kept:
        raise ValueError("A class name cannot be empty: type the name of the object's class.")
    if len(kept) > MAX_CLASS_NAME:
        raise ValueError(f"The class name {kept[:40]!r}... has {len(kept)} characters; at most {MAX_CLASS_NAME}.")
    return kept


def class_id_of(names: Mapping[int, str], new_class: int | str) -> int:
    """The class id of `new_class`, a class id or a name of `names` (class names by id); ValueError naming the
    dataset's classes for another."""
    if isinstance(new_class, str):
        found = [i for i, name in names.items() if name == new_class]
        if not found:
            raise ValueError(f"No class named {new_class!r}; the dataset's classes: {sorted(names.values())}. "
                             "Dataset.add_class adds one.")  # fmt: skip
        return found[0]
    if int(new_class) not in names:
        raise ValueError(f"No class id {new_class}; the dataset's classes: {dict(names)}.")
    return int(new_class)


def next_class_id(names: Mapping[int, str]) -> int:
    """The id a new class takes: one after the last class named (0 in a dataset naming none)."""
    return max(names, default=-1) + 1


def add_class_name(names: dict[int, str], name: str, dataset: str) -> tuple[int, bool]:
    """(class id, whether it is new) of the class `name` in `names` (class names by id, updated in place): a new
    class takes `next_class_id`. ValueError for a bad name (`check_class_name`), or when `names` is empty (the
    labels' class ids of `dataset` have no names: a new id could be one of them)."""
    if name in names.values():
        return class_id_of(names, name), False
    kept = check_class_name(name)
    if kept in names.values():
        return class_id_of(names, kept), False
    if not names:
        raise ValueError(f"{dataset} names no class: name its classes first (data.yaml, classes.txt or COCO "
                         "categories), then add new ones.")  # fmt: skip
    class_id = next_class_id(names)
    names[class_id] = kept
    return class_id, True


def write_class_names(source: DatasetSource, added: Iterable[int]) -> list[str]:
    """Write `source.names` where the dataset keeps them, for the class ids `added` since it was read: its names file
    (``data.yaml``, ``classes.txt``) and its COCO file's categories (also updated in `source.coco`). Returns the
    paths written; nothing when `added` is empty."""
    added = sorted(set(added))
    if not added:
        return []
    written = []
    names_file = source.names_file
    if names_file is not None and names_file.suffix.lower() in (".yaml", ".yml"):
        data = yaml.safe_load(names_file.read_text(encoding="utf-8")) or {}
        old = data.get("names")
        if isinstance(old, list):  # keep the file's own form: a list when ids are 0..n-1
            data["names"] = [source.names.get(i, f"class_{i}") for i in range(next_class_id(source.names))]
        else:
            data["names"] = {i: source.names[i] for i in sorted(source.names)}
        if "nc" in data:  # ultralytics checks that nc matches the names
            data["nc"] = len(data["names"])
        write_atomic(names_file, yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        written.append(str(names_file))
    elif names_file is not None:  # classes.txt: line N names class N (an unnamed id keeps its empty line)
        lines = [source.names.get(i, "") for i in range(next_class_id(source.names))]
        write_atomic(names_file, "".join(f"{line}\n" for line in lines))
        written.append(str(names_file))
    if source.coco is not None and source.coco_path is not None:
        categories = source.coco.setdefault("categories", [])
        listed = {int(c["id"]) for c in categories}
        for class_id in added:
            if class_id_to_category_id(class_id) not in listed:
                categories.append({"id": class_id_to_category_id(class_id), "name": source.names[class_id]})
        write_atomic(source.coco_path, json.dumps(source.coco))
        written.append(str(source.coco_path))
    return written


def names_kept_by_review(folder: Path) -> dict[int, str]:
    """The class names of an output folder a person has reviewed (it has a review record), which a later
    `auto_annotate` into it keeps for the ids its detector does not name: the reviewed items it never redoes may
    hold classes added in review. {} for a folder never reviewed, or one that does not open."""
    if not (folder / REVIEW_FILE).is_file():
        return {}
    try:
        return dict(read_source(folder).names)
    except (ValueError, KeyError, TypeError, OSError):  # a damaged earlier output must not stop the new run
        return {}


class AddedClasses:
    """The classes a person added to an opened dataset (`Dataset.add_class`), oldest first, and those whose names
    are not written yet."""

    def __init__(self, source: DatasetSource) -> None:
        self.source = source
        self.added: list[int] = []
        self.unsaved: set[int] = set()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.source.names[i] for i in self.added)

    def add(self, name: str) -> int:
        """The id of the class `name`, added to the dataset's names when new (`add_class_name`)."""
        class_id, new = add_class_name(self.source.names, name, self.source.root.name)
        if new:
            self.added.append(class_id)
            self.unsaved.add(class_id)
        return class_id

    def write(self) -> list[str]:
        """Write the names not written yet (`write_class_names`); the paths written."""
        written = write_class_names(self.source, self.unsaved)
        self.unsaved.clear()
        return written
