"""The project is a proper distribution: the wheel installs sam2_model, annotate and app (with the example media and
both console scripts), not bench or tests, and works from outside the checkout."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sam2_model", "annotate", "app")


def requirement_name(line: str) -> str:
    return re.split(r"[\s\[<>=!~;]", line.strip(), maxsplit=1)[0].lower().replace("_", "-")


def test_the_package_depends_on_what_requirements_txt_pins():
    tomllib = pytest.importorskip("tomllib", reason="reads pyproject.toml with Python 3.11's tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {requirement_name(d) for d in project["dependencies"]}
    pinned = {
        requirement_name(line)
        for line in (ROOT / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "-"))
    }
    assert declared == pinned
    assert set(project["scripts"]) == {"sam2-studio", "sam2-annotate"}
    assert {"ray", "dev"} <= set(project["optional-dependencies"])


def test_the_wheel_installs_and_runs_outside_the_checkout(tmp_path):
    source = tmp_path / "source"  # build from a copy: building in place would leave build/ and egg-info behind
    source.mkdir()
    for name in PACKAGES:
        shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "-q", "-w",
         str(tmp_path / "dist")],
        check=True, capture_output=True,
    )  # fmt: skip
    [wheel] = (tmp_path / "dist").glob("sam2_studio-*.whl")
    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True, capture_output=True,
    )  # fmt: skip
    assert sorted(p.name for p in site.iterdir() if not p.name.endswith(".dist-info")) == ["annotate", "app", "bin",
                                                                                          "sam2_model"]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(site), "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path / "cfg")}
    probe = (
        "import app, annotate, sam2_model; from annotate.exporters import formats; from app.demo import EXAMPLES; "
        "from annotate.pipeline import default_output; "
        "print(app.__file__, formats(), sorted(p.name for p in EXAMPLES.iterdir()), EXAMPLES == app.examples_dir()); "
        "print(default_output(app.examples_dir()))"
    )
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    found, output = result.stdout.splitlines()
    assert found.startswith(str(site)) and "scene.jpg" in found and "'masks'" in found and found.endswith("True")
    assert output == str(tmp_path / "examples_auto_annotate_labels")  # never into the installed package
    boxes = site / "app" / "examples" / "boxes"  # the examples' boxes, for the offline recipe
    assert (boxes / "classes.txt").is_file() and len(list((boxes / "video").glob("*.txt"))) == 24
    for script in ("sam2-studio", "sam2-annotate"):
        result = subprocess.run(
            [site / "bin" / script, "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert result.returncode == 0 and f"usage: {script}" in result.stdout, result.stderr
    result = subprocess.run([site / "bin" / "sam2-studio", "--examples"], env=env, capture_output=True, text=True)
    assert result.stdout.strip() == str(site / "app" / "examples"), result.stderr
