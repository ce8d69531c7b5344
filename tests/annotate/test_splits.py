"""The validation split: how many units are held out, which ones, and the checks on val_fraction."""

from __future__ import annotations

import pytest

from annotate.splits import check_val_fraction, held_out, val_count


@pytest.mark.parametrize(
    ("units", "fraction", "expected"),
    [
        (0, 0.1, 0),
        (1, 0.1, 0),  # a single image or video: nothing to hold out (validation is the training set)
        (1, 0.9, 0),
        (2, 0.1, 1),  # at least one held out ...
        (2, 0.9, 1),  # ... and at least one kept
        (10, 0.1, 1),
        (25, 0.1, 3),  # half up
        (24, 0.1, 2),
        (100, 0.2, 20),
        (50, 0.0, 0),  # asked for: no split
    ],
)
def test_val_count(units, fraction, expected):
    assert val_count(units, fraction) == expected


def test_held_out_units_depend_on_names_and_seed_only():
    names = [f"video:clip_{i}" for i in range(40)] + [f"image:photo_{i}" for i in range(60)]
    chosen = held_out(names, 0.1)
    assert chosen is not None and len(chosen) == 10 and chosen <= set(names)
    assert held_out(list(reversed(names)) + names[:5], 0.1) == chosen  # order and repeats do not matter
    assert held_out(names, 0.1, seed=1) != chosen
    assert held_out(names, 0.0) is None and held_out(["image:only"], 0.5) is None
    larger = held_out(names, 0.5)
    assert larger is not None and len(larger) == 50 and larger > chosen  # one ranking: a larger share adds to it


@pytest.mark.parametrize("bad", [-0.1, 1.0, 1.5, "0.1", None])
def test_val_fraction_must_be_a_share_below_one(bad):
    with pytest.raises(ValueError, match=r"val_fraction must be a number in \[0, 1\)"):
        check_val_fraction(bad)
    assert check_val_fraction(0) == 0.0 and check_val_fraction(0.25) == 0.25
