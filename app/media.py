"""Pictures the app shows and the video it plays: overlays of masks and prompts, browser-playable H.264.

Everything here is a plain function of its inputs; file names are ours, never built from what a user sent.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import supervision as sv

# Strong, mid-bright colours that differ most from their neighbours in the list (after Sasha Trubetskoy's "20
# distinct colours"), so objects 1, 2, 3... never look alike (supervision's default gives red, then salmon) and the
# white click marks stand out on every one
PALETTE = sv.ColorPalette.from_hex(
    ["#E6194B", "#3CB44B", "#4363D8", "#F58231", "#911EB4", "#42D4F4", "#F032E6", "#469990", "#9A6324", "#800000",
     "#808000", "#000075", "#BFEF45", "#FABED4", "#DCBEFF", "#FFD8B1", "#AAFFC3", "#FFE119", "#A9A9A9"]
)  # fmt: skip


PREVIEW_MAX_SIDE = 1280  # what the browser is sent; clicks come back in these pixels and are scaled back


def color_of(index: int) -> sv.Color:
    """The colour of object `index` (0-based) everywhere in the app: mask, clicks, box, list swatch, timeline."""
    return PALETTE.by_idx(index)


def preview_scale(height: int, width: int, max_side: int = PREVIEW_MAX_SIDE) -> float:
    """Original pixels per preview pixel (1.0 for images that fit): the browser gets at most `max_side` pixels a
    side, so a click on a 6000x4000 photo does not send three full-size pictures back."""
    return max(1.0, max(height, width) / max_side)


def to_preview(image: np.ndarray, scale: float) -> np.ndarray:
    """HxWx3 uint8 RGB -> the preview (area-averaged) for `scale` original pixels per preview pixel."""
    if scale == 1.0:
        return image
    height, width = image.shape[:2]
    size = (max(1, round(width / scale)), max(1, round(height / scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def draw_overlay(
    image: np.ndarray,
    masks: Sequence[np.ndarray | None],
    points: Sequence[Sequence[tuple[float, float, int]]] = (),
    boxes: Sequence[Sequence[float] | None] = (),
    opacity: float = 0.5,
    scale: float = 1.0,
    corner: tuple[float, float, int] | None = None,
) -> np.ndarray:
    """Each object's mask, clicks and box in the object's colour, on a copy of `image`.

    image: HxWx3 uint8 RGB, the original or its preview (`scale` original pixels per image pixel); masks: per
    object an HxW bool mask at the original size, or None; points: per object [(x, y, label)] original pixels,
    drawn as a dot in the object's colour with a white + (label 1) or - (label 0); boxes: per object xyxy original
    pixels or None; corner: (x, y, object index) of a box's first corner, drawn as a corner mark. Returns HxWx3 uint8.
    """
    overlay = image.copy()
    height, width = image.shape[:2]
    rows = [(i, m) for i, m in enumerate(masks) if m is not None and m.any()]
    if rows:
        stacked = np.stack([_fit(m, height, width) for _, m in rows])
        detections = sv.Detections(
            xyxy=sv.mask_to_xyxy(stacked).astype(float), mask=stacked, class_id=np.array([i for i, _ in rows])
        )
        annotator = sv.MaskAnnotator(color=PALETTE, opacity=opacity, color_lookup=sv.ColorLookup.CLASS)
        overlay = annotator.annotate(overlay, detections)
    radius = max(5, round(min(height, width) / 90))
    thickness = max(2, radius // 3)
    stroke = max(2, radius // 3)  # the + and - signs: a 1-pixel stroke vanishes when the browser scales down
    for index, box in enumerate(boxes):
        if box is not None:
            x0, y0, x1, y1 = (_pixel(float(v) / scale) for v in box)
            cv2.rectangle(overlay, (x0, y0), (x1, y1), color_of(index).as_rgb(), thickness, lineType=cv2.LINE_AA)
    for index, object_points in enumerate(points):
        for x, y, label in object_points:
            centre = (_pixel(x / scale), _pixel(y / scale))
            cv2.circle(overlay, centre, radius, color_of(index).as_rgb(), -1, lineType=cv2.LINE_AA)
            cv2.circle(overlay, centre, radius, (255, 255, 255), max(1, thickness // 2), lineType=cv2.LINE_AA)
            arm = max(2, radius * 3 // 5)
            cx, cy = centre
            cv2.line(overlay, (cx - arm, cy), (cx + arm, cy), (255, 255, 255), stroke)
            if label == 1:
                cv2.line(overlay, (cx, cy - arm), (cx, cy + arm), (255, 255, 255), stroke)
    if corner is not None:
        cx, cy = _pixel(corner[0] / scale), _pixel(corner[1] / scale)
        length, colour = radius * 3, color_of(corner[2]).as_rgb()
        cv2.line(overlay, (cx, cy), (cx + length, cy), colour, thickness + 1, lineType=cv2.LINE_AA)
        cv2.line(overlay, (cx, cy), (cx, cy + length), colour, thickness + 1, lineType=cv2.LINE_AA)
    return overlay


def _fit(mask: np.ndarray, height: int, width: int) -> np.ndarray:
    """An original-size bool mask at the preview's size (nearest pixel)."""
    mask = mask.astype(bool)
    if mask.shape == (height, width):
        return mask
    return cv2.resize(mask.astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST).astype(bool)


def _pixel(value: float) -> int:
    """A drawing coordinate, clipped far outside any image so OpenCV never overflows on absurd values."""
    return int(np.clip(round(value), -(1 << 15), 1 << 15))
