"""The one guarded image opener (annotator and app uploads): every mode to RGB, 16 bits scaled, bombs refused
from the header, errors that name the problem."""

from __future__ import annotations

from pathlib import PurePosixPath

import numpy as np
import pytest
from PIL import Image

from annotate.images import ImageReadError, dataset_path, plan_tasks, read_image


def test_modes_become_rgb_and_16_bit_images_are_scaled_not_clipped(tmp_path):
    ramp = np.linspace(0, 65535, 256, dtype=np.uint16).reshape(16, 16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    rgb = read_image(tmp_path / "deep.png")
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    assert rgb[0, 0, 0] == 0 and rgb[-1, -1, 0] == 255 and len(np.unique(rgb)) > 200  # a ramp, not one colour
    for mode in ("L", "P", "RGBA", "CMYK", "LA"):
        Image.new(mode, (5, 4)).save(tmp_path / f"{mode}.{'jpg' if mode == 'CMYK' else 'png'}")
        image = read_image(tmp_path / f"{mode}.{'jpg' if mode == 'CMYK' else 'png'}")
        assert image.shape == (4, 5, 3) and image.dtype == np.uint8, mode


def test_size_is_refused_from_the_header_before_decoding(tmp_path, monkeypatch):
    Image.new("RGBA", (4000, 3000)).save(tmp_path / "big.png")
    decoded = []
    monkeypatch.setattr(Image.Image, "load", lambda self: decoded.append(1))
    with pytest.raises(ImageReadError, match="4000x3000 pixels; the limit is 1,000,000 pixels") as error:
        read_image(tmp_path / "big.png", max_pixels=1_000_000)
    assert decoded == [] and str(tmp_path) not in error.value.reason and str(tmp_path) in str(error.value)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"", "empty"),
        (b"not an image at all", "could not be read as an image"),
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "could not be read as an image"),
    ],
)
def test_unreadable_files_raise_value_errors_naming_the_file(tmp_path, content, match):
    path = tmp_path / "photo.jpg"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match) as error:
        read_image(path)
    assert isinstance(error.value, ImageReadError) and str(path) in str(error.value)


@pytest.mark.parametrize(
    ("relative", "folders_only", "expected"),
    [
        ("images/a.jpg", True, "images_/a.jpg"),  # ultralytics would look for labels in images/labels/
        ("images_/a.jpg", True, "images__/a.jpg"),  # one more "_": distinct folders stay distinct
        ("x/images/y/images.jpg", True, "x/images_/y/images.jpg"),  # a file's name is not a folder
        ("images/cam", False, "images_/cam"),  # a video's key: every part becomes a folder
        ("clips/images", False, "clips/images_"),
        ("labels/a.jpg", True, "labels/a.jpg"),  # labels/labels/a.txt is where ultralytics looks: no change
        ("Images/a.jpg", True, "Images/a.jpg"),  # ultralytics' swap is case-sensitive
        ("myimages/a.jpg", True, "myimages/a.jpg"),
    ],
)
def test_dataset_paths_never_hold_a_second_images_folder(relative, folders_only, expected):
    assert dataset_path(PurePosixPath(relative), folders_only).as_posix() == expected


def test_images_in_folders_named_images_keep_distinct_keys(tmp_path):
    images = [tmp_path / "images" / "a.jpg", tmp_path / "images_" / "a.jpg", tmp_path / "a.jpg"]
    tasks = plan_tasks(tmp_path, images, tmp_path / "out")
    assert [t.key for t in tasks] == ["images_/a", "images__/a", "a"]
    assert [t.image_link.relative_to(tmp_path / "out").as_posix() for t in tasks] == [
        "images/images_/a.jpg",
        "images/images__/a.jpg",
        "images/a.jpg",
    ]
