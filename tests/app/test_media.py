"""The pictures the app draws: colours people can tell apart, and click marks that keep their sign when the browser
shows a big preview smaller."""

from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

from app.media import color_of, draw_overlay


def lab(index: int) -> np.ndarray:
    rgb = np.array([[color_of(index).as_rgb()]], np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)[0, 0].astype(float) * [100 / 255, 1, 1] - [0, 128, 128]


def test_the_first_ten_object_colours_are_far_apart():
    # CIE76 distance: about 2 is the least a person notices, 20+ reads as another colour at a glance
    distances = {(a, b): float(np.linalg.norm(lab(a) - lab(b))) for a, b in itertools.combinations(range(10), 2)}
    assert min(distances.values()) > 20, min(distances.items(), key=lambda item: item[1])


def luminance(pixels: np.ndarray) -> np.ndarray:
    return pixels.astype(float) @ np.array([0.299, 0.587, 0.114])


@pytest.mark.parametrize("index", range(6))
@pytest.mark.parametrize(("label", "vertical_arm"), [(1, True), (0, False)])
def test_a_click_mark_keeps_its_sign_when_shown_at_half_size(index, label, vertical_arm):
    preview = np.full((720, 1280, 3), 40, np.uint8)  # a big photo's preview: the browser shows it at ~640 wide
    points: list[list[tuple[float, float, int]]] = [[] for _ in range(index)] + [[(640.0, 360.0, label)]]
    drawn = draw_overlay(preview, [None] * (index + 1), points)
    shown = cv2.resize(drawn, (640, 360), interpolation=cv2.INTER_AREA)
    arm = luminance(shown[177:179, 320]).max()  # 2-3 pixels above the centre (radius 4 on screen): the + arm
    dot = luminance(shown[178, 318])  # beside it, inside the dot: the object's colour
    assert (arm - dot > 80) == vertical_arm, (arm, dot)
