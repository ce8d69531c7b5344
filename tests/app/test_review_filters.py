"""The Review tab's list filters: one status wording and one status filter for images and videos alike."""

from __future__ import annotations

import pytest

from annotate.review import CLASS_SWITCH, LOW_FILL, LOW_SAM2_IOU, NO_DETECTIONS, SPILL, TRACK_ENDS_EARLY
from app.refusals import Refusal
from app.review_filters import (
    ALL,
    EDITED,
    NEEDS_A_LOOK,
    NOTHING_FOUND,
    REVIEWED,
    STATUSES,
    TO_REVIEW,
    check_filters,
    item_status,
    reason_words,
    status_matches,
)
from app.review_tab import ReviewTab
from app.review_workflow import ItemRow


@pytest.mark.parametrize(
    ("reviewed", "edited", "empty", "words", "listed_under"),
    [
        (False, False, False, "to review", {ALL, TO_REVIEW}),
        (True, False, False, "reviewed", {ALL, REVIEWED}),
        (False, True, False, "edited", {ALL, TO_REVIEW, EDITED}),
        (True, True, False, "reviewed, edited", {ALL, REVIEWED, EDITED}),
        (False, False, True, "nothing found", {ALL, TO_REVIEW, NOTHING_FOUND}),
        (True, True, True, "reviewed, edited, nothing found", set(STATUSES) - {TO_REVIEW}),
    ],
)
def test_an_items_status_words_and_the_statuses_it_is_listed_under(reviewed, edited, empty, words, listed_under):
    assert item_status(reviewed, edited, empty) == words
    assert {s for s in STATUSES if status_matches(s, reviewed, edited, empty)} == listed_under


def test_an_unknown_status_or_order_is_refused_naming_the_choices():
    check_filters(ALL, NEEDS_A_LOOK)
    with pytest.raises(Refusal, match="Choose a status among All, To review"):
        check_filters("Lost", NEEDS_A_LOOK)
    with pytest.raises(Refusal, match="an order among Needs a look, Dataset order"):
        check_filters(ALL, "Random")


def test_a_grid_caption_says_why_its_item_needs_a_look():
    """The reasons the needs-a-look order put an item where it is, in words; nothing more for an unflagged item."""
    assert reason_words((LOW_FILL, SPILL, LOW_SAM2_IOU)) == ["thin masks", "masks spilling out of their boxes",
                                                             "masks SAM 2 doubts"]  # fmt: skip
    assert reason_words((NO_DETECTIONS, TRACK_ENDS_EARLY, CLASS_SWITCH)) == []  # said by the status, by the track
    flagged = ItemRow("images/train/a", ("car", "car"), False, False, (LOW_FILL, LOW_SAM2_IOU))
    assert ReviewTab._caption(flagged) == "a · 2 instances · to review · thin masks, masks SAM 2 doubts"
    assert (
        ReviewTab._caption(ItemRow("b", (), True, False, (NO_DETECTIONS,)))
        == "b · 0 instances · reviewed, nothing found"
    )
