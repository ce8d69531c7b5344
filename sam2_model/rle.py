"""Mask encodings: pure converters between HxW boolean masks and COCO run-length encodings.

COCO RLE counts runs in column-major (Fortran) order, starting with a run of zeros. `mask_to_rle` gives the compressed
form (``counts`` as a string, what COCO JSON files hold); `mask_to_uncompressed_rle` the list-of-ints form that
Meta's automatic mask generator returns as "uncompressed_rle".
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pycocotools import mask as mask_utils


def _as_bool_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"Expected an HxW mask, got shape {mask.shape}.")
    return mask.astype(bool, copy=False)


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """HxW mask (bool or 0/1) -> COCO compressed RLE ``{"size": [h, w], "counts": str}`` (JSON-ready)."""
    mask = _as_bool_mask(mask)
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def masks_to_rles(masks: np.ndarray) -> list[dict[str, Any]]:
    """NxHxW masks -> N compressed COCO RLEs (what `mask_to_rle` gives for each, encoded in one pycocotools call)."""
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"Expected NxHxW masks, got shape {masks.shape}.")
    if len(masks) == 0:
        return []
    encoded = mask_utils.encode(np.asfortranarray(masks.transpose(1, 2, 0).astype(np.uint8)))
    return [{"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")} for rle in encoded]


def mask_to_uncompressed_rle(mask: np.ndarray) -> dict[str, Any]:
    """HxW mask -> uncompressed COCO RLE ``{"size": [h, w], "counts": [int, ...]}`` (first run counts zeros).

    Written with numpy because pycocotools only produces the compressed form.
    """
    mask = _as_bool_mask(mask)
    flat = mask.T.ravel()
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    counts = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    if flat.size and flat[0]:
        counts = [0, *counts]
    return {"size": [int(mask.shape[0]), int(mask.shape[1])], "counts": counts}


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """COCO RLE, compressed (``counts`` str/bytes) or uncompressed (list), -> HxW bool mask."""
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise ValueError("Expected a COCO RLE dict with 'size' [h, w] and 'counts'.")
    height, width = (int(s) for s in rle["size"])
    counts = rle["counts"]
    if isinstance(counts, list):
        if sum(counts) != height * width:
            raise ValueError(f"RLE counts sum to {sum(counts)} but size {height}x{width} needs {height * width}.")
        encoded = mask_utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
    else:
        encoded = rle_for_pycocotools({"size": [height, width], "counts": counts})
    return mask_utils.decode(encoded).astype(bool)


def rle_area(rle: dict[str, Any]) -> int:
    """Number of foreground pixels of a COCO RLE."""
    if isinstance(rle["counts"], list):
        return int(sum(rle["counts"][1::2]))
    return int(mask_utils.area(rle_for_pycocotools(rle)))


def rle_box(rle: dict[str, Any]) -> list[float]:
    """xywh pixel box of a compressed COCO RLE (pycocotools' `toBbox`: [0, 0, 0, 0] for an empty mask)."""
    return [float(v) for v in mask_utils.toBbox(rle_for_pycocotools(rle))]


def rle_for_pycocotools(rle: dict[str, Any]) -> dict[str, Any]:
    """A compressed RLE as pycocotools' functions take it: ``counts`` as bytes (JSON holds it as a str)."""
    counts = rle["counts"]
    return {"size": rle["size"], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
