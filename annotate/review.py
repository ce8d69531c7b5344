"""Where a person should look first: each item's concerns, and the order `Dataset.needs_a_look` returns.

An instance's quality is the lowest of four numbers in [0, 1]: how much of its mask's bounding box the mask fills
(a speckled or hollow mask fills little), how much of the mask lies inside the box its file states (COCO ``bbox``,
the detector's box: a mask that leaks spills out of it; 1 when the file states no box), the detector's score, and
SAM 2's predicted IoU of the mask (COCO ``sam2_iou``: SAM 2's own doubt about its mask; each 1 when unknown). An
item's quality is its worst instance's, so an item whose mask SAM 2 doubts most comes first among its group.

The order (part of the API, tested): items not yet reviewed first; among them, items with no instances, then items
with a flagged instance (`LookThresholds`), then the rest; within each group, lowest quality first, then dataset
order. Reviewed items come last, in the same order. A video frame is flagged by its tracks' concerns too, and videos
are ordered by the same rule (`annotate.track_review`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from .dataset_items import Annotation

NO_DETECTIONS = "no_detections"
EMPTY_MASK = "empty_mask"
LOW_FILL = "low_fill"
SPILL = "spill"
LOW_SCORE = "low_score"
LOW_SAM2_IOU = "low_sam2_iou"
TRACK_ENDS_EARLY = "track_ends_early"  # video frames only: `annotate.track_review`
CLASS_SWITCH = "class_switch"
REASONS = (EMPTY_MASK, LOW_FILL, SPILL, LOW_SCORE, LOW_SAM2_IOU, TRACK_ENDS_EARLY, CLASS_SWITCH)  # as entries name them


@dataclass(frozen=True)
class LookThresholds:
    """When an instance is flagged: it fills less than `min_fill` of its mask's box, more than `max_spill` of it lies
    outside the box its file states, its score is below `min_score`, or SAM 2's predicted IoU of its mask is below
    `min_sam2_iou` (each in [0, 1]). SAM 2's automatic mask generator keeps masks predicted at 0.8 and above (Meta's
    ``pred_iou_thresh``): below 0.7 is a mask SAM 2 itself doubts. `border_margin` (a share of the picture's side,
    in [0, 0.5)): a track whose last mask comes that close to the border left the picture (`annotate.track_review`).
    """

    min_fill: float = 0.5
    max_spill: float = 0.1
    min_score: float = 0.5
    min_sam2_iou: float = 0.7
    border_margin: float = 0.02

    def __post_init__(self) -> None:
        for name in ("min_fill", "max_spill", "min_score", "min_sam2_iou"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}.")
        if not 0.0 <= self.border_margin < 0.5:
            raise ValueError(f"border_margin is a share of the picture's side in [0, 0.5), got {self.border_margin}.")


@dataclass(frozen=True)
class LookEntry:
    """One item in the review order: its key, why it needs a look (reason names, in the order above; empty: nothing
    flagged), its quality (1.0 for an item with no instances: nothing to judge), and whether it was reviewed."""

    key: str
    reasons: tuple[str, ...]
    quality: float
    reviewed: bool


def fill_and_spill(mask: np.ndarray, box_xywh: tuple[float, float, float, float] | None) -> tuple[float, float]:
    """(share of the mask's own bounding box that the mask fills, share of the mask outside `box_xywh` (pixels; a
    pixel is inside when its column is in [floor(x), ceil(x + w)) and its row likewise; 0 without a box)) of an HxW
    bool mask; (0, 0) for an empty mask."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return 0.0, 0.0
    box_area = (int(xs.max()) - int(xs.min()) + 1) * (int(ys.max()) - int(ys.min()) + 1)
    fill = len(xs) / box_area
    if box_xywh is None:
        return fill, 0.0
    x, y, w, h = box_xywh
    inside = (xs >= np.floor(x)) & (xs < np.ceil(x + w)) & (ys >= np.floor(y)) & (ys < np.ceil(y + h))
    return fill, 1.0 - float(inside.mean())


def instance_concerns(annotation: Annotation, thresholds: LookThresholds) -> tuple[float, tuple[str, ...]]:
    """(quality in [0, 1], reason names) of one instance (see the module's docstring)."""
    mask = annotation.mask
    if not mask.any():
        return 0.0, (EMPTY_MASK,)
    fill, spill = fill_and_spill(mask, annotation.box_xywh)
    score = 1.0 if annotation.score is None else float(annotation.score)
    iou = 1.0 if annotation.sam2_iou is None else min(max(float(annotation.sam2_iou), 0.0), 1.0)
    reasons = [name for name, flagged in ((LOW_FILL, fill < thresholds.min_fill), (SPILL, spill > thresholds.max_spill),
                                          (LOW_SCORE, score < thresholds.min_score),
                                          (LOW_SAM2_IOU, iou < thresholds.min_sam2_iou)) if flagged]  # fmt: skip
    return min(fill, 1.0 - spill, score, iou), tuple(reasons)


def look_entry(
    key: str,
    instances: Iterable[Annotation],
    reviewed: bool,
    thresholds: LookThresholds = LookThresholds(),
    flags: Iterable[str] = (),
) -> LookEntry:
    """An item's entry: NO_DETECTIONS when it has no instances, else its instances' reasons and `flags` (reasons
    found elsewhere: a frame's track concerns), each once, in the order of `REASONS`, and its worst instance's
    quality."""
    concerns = [instance_concerns(annotation, thresholds) for annotation in instances]
    if not concerns:
        return LookEntry(key, (NO_DETECTIONS,), 1.0, reviewed)
    found = {reason for _, reasons in concerns for reason in reasons} | set(flags)
    reasons = tuple(r for r in REASONS if r in found)
    return LookEntry(key, reasons, min(quality for quality, _ in concerns), reviewed)


Entry = TypeVar("Entry", bound=LookEntry)


def look_order(entries: Iterable[Entry]) -> list[Entry]:
    """`entries` (in dataset order) sorted as the module's docstring says; a stable sort keeps dataset order last."""

    def rank(entry: Entry) -> tuple[bool, int, float]:
        group = 0 if NO_DETECTIONS in entry.reasons else 1 if entry.reasons else 2
        return entry.reviewed, group, entry.quality

    return sorted(entries, key=rank)
