"""The run's settings: one set of detector defaults for the API, the CLI and the app, checked on creation."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from annotate import DetectorSettings, OutputSettings, auto_annotate
from annotate.__main__ import build_parser

DEFAULTS = DetectorSettings()


def test_one_set_of_defaults_everywhere():
    assert (DEFAULTS.conf, DEFAULTS.iou, DEFAULTS.imgsz, DEFAULTS.max_det) == (0.25, 0.45, 640, 300)
    parameters = inspect.signature(auto_annotate).parameters
    cli = build_parser().parse_args(["photos"])
    for name in ("conf", "iou", "imgsz", "max_det", "device"):
        assert parameters[name].default == getattr(DEFAULTS, name) == getattr(cli, name), name


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"conf": 1.5}, "between 0 and 1"),
        ({"iou": -0.1}, "between 0 and 1"),
        ({"imgsz": 0}, "imgsz must be >= 32"),
        ({"max_det": 0}, "max_det >= 1"),
        ({"classes": [0, "cat"]}, "all class ids"),
        ({"classes": [1.5]}, "all class ids"),
    ],
)
def test_bad_detector_settings_name_the_problem(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DetectorSettings(**kwargs)


def test_detector_settings_normalise_classes_and_devices():
    assert DetectorSettings(classes=[0, 2]).classes == (0, 2)
    assert [DetectorSettings(device=d).sam_device() for d in ("", "cpu", "0", "1,2", "cuda:1", "mps")] == [
        None, "cpu", "cuda:0", "cuda:1", "cuda:1", "mps",
    ]  # fmt: skip


def test_output_settings_always_write_yolo_once(tmp_path):
    assert OutputSettings(tmp_path, ("coco", "yolo", "coco")).formats == ("yolo", "coco")
    with pytest.raises(ValueError, match="min_mask_area and simplify must be >= 0"):
        OutputSettings(tmp_path, simplify=-1)


def test_cli_parses_without_torch():
    """`python -m annotate --help` and argument errors answer before torch and ultralytics are imported."""
    code = "import sys; import annotate.__main__ as m; m.build_parser(); print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).resolve().parents[2]
    )
    assert result.stdout.strip() == "False", result.stderr
