"""`python app.py`: documented settings, environment variables, and a clean exit when weights cannot be had."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import sam2_model
from app.settings import DEFAULT_MODEL, AppSettings, model_for_device, parse_settings

REPO = Path(__file__).resolve().parents[2]


def test_defaults():
    assert parse_settings([], environ={}) == AppSettings()
    assert DEFAULT_MODEL == "auto"


def test_auto_picks_a_model_a_person_can_wait_for():
    assert model_for_device("auto", "cpu") == "sam2.1_t.pt" and model_for_device("auto", "mps") == "sam2.1_t.pt"
    assert model_for_device("auto", "cuda") == "sam2.1_b.pt" == sam2_model.DEFAULT_MODEL
    assert model_for_device("sam2.1_l.pt", "cpu") == "sam2.1_l.pt"  # an explicit model wins


def test_flags_win_over_environment():
    environ = {"SAM2_MODEL": "sam2.1_t.pt", "SAM2_DEVICE": "cpu", "GRADIO_SERVER_PORT": "9000", "GRADIO_SHARE": "1"}
    from_env = parse_settings([], environ=environ)
    assert (from_env.model, from_env.device, from_env.port, from_env.share) == ("sam2.1_t.pt", "cpu", 9000, True)
    from_flags = parse_settings(["--model", "/x/sam2.1_hiera_large.pt", "--port", "8000"], environ=environ)
    assert (from_flags.model, from_flags.port) == ("/x/sam2.1_hiera_large.pt", 8000)


def test_spaces_listen_on_all_interfaces():
    assert parse_settings([], environ={"SPACE_ID": "user/space"}).host == "0.0.0.0"


def test_bad_port_is_refused(capsys):
    with pytest.raises(SystemExit):
        parse_settings(["--port", "70000"], environ={})
    assert "--port must be between 1 and 65535" in capsys.readouterr().err


def run_app(*args: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path)}
    # the timeout turns a hang (network retries) into a failure
    return subprocess.run(
        [sys.executable, str(REPO / "app.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=tmp_path,
    )


def test_help_documents_every_setting(tmp_path):
    result = run_app("--help", tmp_path=tmp_path)
    assert result.returncode == 0
    for text in ("--model", "sam2.1_b.pt", "sam2.1_hiera_base_plus.pt", "--device", "auto", "cuda", "mps",
                 "--host", "--port", "--share", "SAM2_MODEL", "SAM2_DEVICE", "GRADIO_SERVER_PORT"):  # fmt: skip
        assert text in result.stdout, text


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        (
            "sam2.1_t.pt",
            ["Could not download", "sam2.1_t.pt", "--model /path/to/sam2.1_t.pt", "python app.py --untrained"],
        ),
        (
            "auto",
            ["Could not download", "sam2.1_t.pt", "try the app now without a download: python app.py --untrained"],
        ),
        ("/no/such/file/sam2.1_b.pt", ["Checkpoint file not found: /no/such/file/sam2.1_b.pt"]),
    ],
)
def test_unobtainable_weights_exit_fast_with_one_message(tmp_path, model, expected):
    result = run_app("--model", model, "--device", "cpu", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("app.py: cannot load the SAM 2 model:"), result.stderr
    for text in expected:
        assert text in lines[0]

    if "Checkpoint file not found" in lines[0]:
        assert "--untrained" not in lines[0]  # a wrong path is no reason to try random weights


def test_the_cli_imports_spaces_before_torch(tmp_path):
    """On ZeroGPU `spaces` must patch torch's CUDA before a device is picked: a fake `spaces` records whether
    torch was already imported when it was."""
    fake = tmp_path / "fake" / "spaces"
    fake.mkdir(parents=True)
    record = tmp_path / "torch_before_spaces.txt"
    (fake / "__init__.py").write_text(
        "import os, sys\n"
        f"open({str(record)!r}, 'w').write(str('torch' in sys.modules))\n"
        "def GPU(task=None, **options):\n"
        "    return task if task is not None else (lambda f: f)\n"
    )
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(tmp_path), "PYTHONPATH": str(fake.parent)}
    result = subprocess.run(
        [sys.executable, str(REPO / "app.py"), "--model", "/no/such/file/sam2.1_t.pt", "--device", "cpu"],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr  # it went on to load the model (with torch) after spaces
    assert record.read_text() == "False"


def test_examples_prints_the_shipped_media_folder(tmp_path):
    from app import examples_dir

    result = run_app("--examples", tmp_path=tmp_path)
    assert result.returncode == 0 and result.stdout.strip() == str(examples_dir())
    assert {"scene.jpg", "scene_2.jpg", "video.mp4", "boxes"} <= {p.name for p in examples_dir().iterdir()}


class LaunchedDemo:
    """What `main` does with the demo it builds: the launch arguments, without a server."""

    local_url = "http://127.0.0.1:7861/"

    def __init__(self) -> None:
        self.launched: dict = {}
        self.blocked = False

    def queue(self, **kwargs):
        return self

    def launch(self, **kwargs):
        self.launched = kwargs

    def block_thread(self):
        self.blocked = True


@pytest.mark.parametrize("share", [False, True])
def test_launch_lines_name_our_flags_not_gradio_arguments(monkeypatch, capsys, share):
    import app.demo
    from app.cli import main

    demo = LaunchedDemo()
    monkeypatch.setattr(app.demo, "build_demo", lambda model, limits, **options: demo)
    argv = ["--untrained", "--model", "sam2.1_t.pt", "--device", "cpu", "--port", "7861", *(["--share"] * share)]
    assert main(argv, prog="app.py") == 0
    out = capsys.readouterr().out
    assert demo.launched["quiet"] and demo.launched["share"] is share and demo.blocked
    assert "* Running on local URL:  http://127.0.0.1:7861/" in out
    assert "share=True" not in out
    assert ("python app.py --share" in out) is not share
