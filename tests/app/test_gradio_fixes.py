"""The picture writer the app routes Gradio through: a picture returned again is not rewritten while it is served
(Gradio's own writer truncates and rewrites it, so a browser fetching it got a short response and a broken picture)."""

from __future__ import annotations

import os

import numpy as np
import pytest
from gradio import image_utils, processing_utils
from PIL import Image

from app import gradio_fixes


@pytest.fixture
def fixed(monkeypatch):
    monkeypatch.setattr(processing_utils, "save_pil_to_cache", processing_utils.save_pil_to_cache)  # undone after
    gradio_fixes.apply()


def test_a_picture_returned_again_is_not_rewritten(tmp_path, fixed):
    picture = np.zeros((40, 60, 3), np.uint8)
    picture[10:20, 10:30] = (255, 0, 0)
    first = image_utils.save_image(picture, cache_dir=str(tmp_path), format="png")  # what gr.Image does
    assert np.array_equal(np.asarray(Image.open(first).convert("RGB")), picture)
    with open(first, "r+b") as cached:  # mark the served copy: a rewrite would replace the mark
        cached.seek(0, os.SEEK_END)
        cached.write(b"served")
    second = image_utils.save_image(picture.copy(), cache_dir=str(tmp_path), format="png")
    assert second == first
    with open(first, "rb") as cached:
        assert cached.read().endswith(b"served")
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["image.png"]  # no staging file left


def test_a_new_picture_appears_whole(tmp_path, fixed, monkeypatch):
    renamed: list[str] = []
    real_replace = os.replace
    monkeypatch.setattr(gradio_fixes.os, "replace", lambda a, b: (renamed.append(str(b)), real_replace(a, b)))
    path = processing_utils.save_img_array_to_cache(np.full((8, 8, 3), 7, np.uint8), str(tmp_path), format="png")
    assert renamed == [path]  # written under a staging name, renamed into place
    assert np.array_equal(np.asarray(Image.open(path)), np.full((8, 8, 3), 7, np.uint8))
