"""Inside our processes ultralytics installs nothing by itself and keeps its first-run notice to itself, unless the
user asks (YOLO_AUTOINSTALL / YOLO_VERBOSE set explicitly)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROBE = "import sam2_model, ultralytics.utils.checks as checks; print('autoinstall', checks.AUTOINSTALL)"


def run(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("YOLO_AUTOINSTALL", "YOLO_VERBOSE")}
    env.update(YOLO_CONFIG_DIR=str(tmp_path / "fresh"), **variables)  # a machine where ultralytics never ran
    return subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True)


def test_quiet_and_no_installs_by_default(tmp_path):
    result = run(tmp_path)
    assert "autoinstall False" in result.stdout, result.stderr
    assert "Creating new Ultralytics Settings" not in result.stdout + result.stderr


def test_the_users_explicit_choice_wins(tmp_path):
    result = run(tmp_path, YOLO_AUTOINSTALL="True", YOLO_VERBOSE="True")
    assert "autoinstall True" in result.stdout
    assert "Creating new Ultralytics Settings" in result.stdout + result.stderr
