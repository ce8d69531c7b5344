"""The validation split: which images and videos are held out for validation.

A unit of the split is an image, or a whole video (frames of one video are never on both sides: neighbouring frames
are near copies, so a split by frame would validate on the training set). Units are ranked by a seeded BLAKE2b hash of
their name, and the first ``val_count`` go to validation: the same split for the same names on every run, machine and
backend, whatever order the files were found in.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

VAL_FRACTION = 0.1
SPLIT_SEED = 0


def check_val_fraction(val_fraction: float) -> float:
    """`val_fraction` as a float, or ValueError saying what it must be."""
    if not isinstance(val_fraction, (int, float)) or not 0.0 <= float(val_fraction) < 1.0:
        raise ValueError(
            f"val_fraction must be a number in [0, 1): the share of images and videos held out for validation "
            f"(0: validate on the training set), got {val_fraction!r}."
        )
    return float(val_fraction)


def val_count(units: int, val_fraction: float) -> int:
    """How many of `units` images and videos go to validation: ``val_fraction * units`` rounded half up, at least 1
    and at most ``units - 1``; 0 when `val_fraction` is 0 or there is a single unit (nothing can be held out:
    validation is then the training set)."""
    if val_fraction <= 0 or units < 2:
        return 0
    return min(units - 1, max(1, math.floor(val_fraction * units + 0.5)))


def held_out(units: Iterable[str], val_fraction: float, seed: int = SPLIT_SEED) -> frozenset[str] | None:
    """The units (unique names) held out for validation; None when none can be (see `val_count`)."""
    names = sorted(set(units))
    count = val_count(len(names), val_fraction)
    if count == 0:
        return None
    ranked = sorted(names, key=lambda name: hashlib.blake2b(f"{seed}:{name}".encode(), digest_size=8).digest())
    return frozenset(ranked[:count])
