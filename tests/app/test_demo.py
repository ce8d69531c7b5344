"""The demo's handlers, called as plain functions, and the Blocks factory."""

from __future__ import annotations

import gradio as gr
import numpy as np

from app.demo import build_demo, segment_points


def test_segment_points_draws_mask_and_clicks_on_original_pixels(tiny_model, scene_image):
    overlay, score = segment_points(tiny_model, scene_image, [[80, 90, 1], [250, 30, 0]])
    assert overlay.shape == scene_image.shape and overlay.dtype == np.uint8
    assert isinstance(score, float)
    assert not np.array_equal(overlay[90, 80], scene_image[90, 80])  # the positive click's marker is drawn
    assert np.array_equal(scene_image, scene_image.copy())  # the input is left untouched


def test_no_clicks_returns_the_image(tiny_model, scene_image):
    overlay, score = segment_points(tiny_model, scene_image, [])
    assert score is None
    np.testing.assert_array_equal(overlay, scene_image)


def test_build_demo_makes_blocks(tiny_model):
    demo = build_demo(tiny_model)
    assert isinstance(demo, gr.Blocks)
