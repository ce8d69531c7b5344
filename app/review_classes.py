"""The classes an instance under review may get: the dataset's own, or a new one typed by the person (a missed object
of a class the detector never found), checked when it is typed and added to the dataset (`Dataset.add_class`) when
an instance of it is committed; saving then writes it in every format the dataset holds.

Gradio-free: the Review workflow calls these with the opened dataset and the editor's objects.
"""

from __future__ import annotations

from collections.abc import Sequence

from annotate.dataset import Dataset
from annotate.dataset_classes import check_class_name

from .refusals import Refusal
from .sessions import ImageObject

MAX_NEW_CLASSES = 20  # classes one hosted review may add to its dataset (each is a line of every names file it saves)


def dataset_classes(dataset: Dataset) -> list[str]:
    """The dataset's class names, by class id (classes added this session included)."""
    names = dataset.names
    return [names[i] for i in sorted(names)]


def pending_classes(dataset: Dataset, objects: Sequence[ImageObject]) -> list[str]:
    """The new class names the editor's objects have that the dataset does not know yet, in the objects' order."""
    known = set(dataset.names.values())
    return list(dict.fromkeys(o.class_name for o in objects if o.class_name and o.class_name not in known))


def class_named(dataset: Dataset, objects: Sequence[ImageObject], name: str | None, allow_new: bool,
                hosted: bool) -> str:  # fmt: skip
    """`name` when it is one of the dataset's classes (its first class for None or ""). A new name, where
    `allow_new`, is checked (`annotate.dataset_classes.check_class_name`: spaces at its ends dropped) and returned;
    Refusal saying what to do for a bad name, one that differs from a class only in case (a typo that would split a
    class in two), and, `hosted`, beyond `MAX_NEW_CLASSES` new classes (those added and those pending in
    `objects`)."""
    names = dataset_classes(dataset)
    if not names:
        raise Refusal("This dataset names no class: add its classes (data.yaml or COCO categories) first.")
    if not name:
        return names[0]
    if name in names:
        return name
    if not allow_new:
        raise Refusal(f"{str(name)[:40]!r} is not one of the dataset's classes: {', '.join(names)}.")
    try:
        kept = check_class_name(name)
    except ValueError as error:
        raise Refusal(str(error)) from error
    pending = pending_classes(dataset, objects)
    if kept in names or kept in pending:
        return kept
    same = [n for n in (*names, *pending) if n.casefold() == kept.casefold()]
    if same:
        raise Refusal(f"{kept!r} differs from the class {same[0]!r} only in case: choose {same[0]!r}, or another name.")
    if hosted:
        added = len(dataset.added_classes) + len(pending)
        if added >= MAX_NEW_CLASSES:
            raise Refusal(f"{added} new classes were added to this dataset, the most a review can add here: choose "
                          "one of its classes.")  # fmt: skip
    return kept
