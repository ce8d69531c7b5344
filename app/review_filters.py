"""The Review tab's list filters, the same for its image grid and its video list: a class (`ANY_CLASS`: every
item), a status (`STATUSES`), an order (`ORDERS`: needs-a-look first, `annotate.review`, or the dataset's); and the
status words an item or a video is listed with."""

from __future__ import annotations

from collections.abc import Iterable

from annotate.review import EMPTY_MASK, LOW_FILL, LOW_SAM2_IOU, LOW_SCORE, SPILL

from .refusals import Refusal

ANY_CLASS = "Any class"
ALL, TO_REVIEW, REVIEWED, EDITED, NOTHING_FOUND = "All", "To review", "Reviewed", "Edited", "Nothing found"
STATUSES = [ALL, TO_REVIEW, REVIEWED, EDITED, NOTHING_FOUND]
NEEDS_A_LOOK, DATASET_ORDER = "Needs a look", "Dataset order"
ORDERS = [NEEDS_A_LOOK, DATASET_ORDER]
REASON_WORDS = {EMPTY_MASK: "empty masks", LOW_FILL: "thin masks", SPILL: "masks spilling out of their boxes",
                LOW_SCORE: "low scores", LOW_SAM2_IOU: "masks SAM 2 doubts"}  # fmt: skip


def reason_words(reasons: Iterable[str]) -> list[str]:
    """An item's instance reasons (`annotate.review` names) as a caption says them, in their order ("thin masks");
    the others (no detections: the status says it; a track's: said with the track) are left out."""
    return [REASON_WORDS[r] for r in reasons if r in REASON_WORDS]


def item_status(reviewed: bool, edited: bool, empty: bool) -> str:
    """What a list says of an item or a video: "reviewed", "edited", "nothing found" (`empty`: no instance, no
    track), each that applies, joined by commas ("reviewed, edited"), or "to review" when none does."""
    words = [word for word, on in (("reviewed", reviewed), ("edited", edited), ("nothing found", empty)) if on]
    return ", ".join(words) or "to review"


def status_matches(status: str, reviewed: bool, edited: bool, empty: bool) -> bool:
    """Whether an item (or a video) so flagged is listed under `status`, one of `STATUSES`."""
    wanted = {ALL: True, TO_REVIEW: not reviewed, REVIEWED: reviewed, EDITED: edited, NOTHING_FOUND: empty}
    return wanted[status]


def check_filters(status: str, order: str) -> None:
    """Refusal unless `status` is one of `STATUSES` and `order` one of `ORDERS`."""
    if status not in STATUSES or order not in ORDERS:
        raise Refusal(f"Choose a status among {', '.join(STATUSES)} and an order among {', '.join(ORDERS)}.")
