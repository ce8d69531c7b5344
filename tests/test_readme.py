"""Every Python snippet of the README and of the pages in docs/ runs as written, in order (the README, then the pages
by name), on the bundled example media (`app.examples_dir()`), from a working directory that is not the repository
(as after `pip install .`). The README itself stays what a newcomer reads first: the Spaces front matter, a short page
that links every docs page, the test command CI runs; every link of these pages leads to a file.

Offline, like every test: the snippets' checkpoint names are served by untrained weights saved under those names
(SAM 2.1 tiny weights, which `load_model` recognises whatever the file is called; the network runs at 256 pixels to
keep the test short), their YOLO names by untrained YOLO11n files, and the gradio_client snippet talks to the studio
started on the port the README names. A snippet that fails fails this test with its traceback.

The snippets run on SAM2_TEST_DEVICE (tests/devices.py): on the CPU (the default) the child process sees no GPU, so
the snippets' "auto" means the CPU even on a GPU machine; with SAM2_TEST_DEVICE=cuda they run on the GPU.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.devices import device_under_test

ROOT = Path(__file__).resolve().parents[1]
RUNNER = r"""
import json, os, sys, traceback
sys.path.insert(0, {root!r})
os.environ["YOLO_OFFLINE"] = "1"
from pathlib import Path

import torch
from ultralytics import YOLO

from sam2_model import checkpoints

weights = Path("weights")
weights.mkdir()
checkpoints.weights_dir = lambda: weights
build_untrained = checkpoints.ModelSpec.build_untrained


def small_build(spec):
    net = build_untrained(spec)
    net.set_imgsz((256, 256))  # the same code at a 16x cheaper input size
    return net


checkpoints.ModelSpec.build_untrained = small_build
torch.manual_seed(0)
tiny = {{"model": build_untrained(checkpoints.ModelSpec("t", "2.1")).state_dict()}}
for name in ("sam2.1_b.pt", "sam2.1_t.pt"):
    torch.save(tiny, weights / name)
threads = torch.get_num_threads()
for name in ("yolo11n.pt", "yolo11x.pt"):
    YOLO("yolo11n.yaml").save(name)  # untrained YOLO11n under each name the snippets use
YOLO("yolo11n-seg.yaml").save("yolo11n-seg.pt")  # the model the training recipe starts from
from ultralytics.utils import SETTINGS

SETTINGS.update(runs_dir=str(Path("runs").absolute()))  # training runs stay here (the default: beside ultralytics)
torch.set_num_threads(threads)

from app.demo import build_demo
from app.detector_pool import DetectorPool
from sam2_model import load_model

pool = DetectorPool(["yolo11n.pt"], loader=lambda name: YOLO(name))
model = load_model("sam2.1_b.pt")  # "auto" device, as in the snippets: the test device is all this process sees
if model.device.type != torch.device(os.environ["SAM2_TEST_DEVICE"]).type:
    sys.exit(f"the snippets would run on {{model.device}}, not on SAM2_TEST_DEVICE={{os.environ['SAM2_TEST_DEVICE']}}")
demo = build_demo(model, detectors=pool)
demo.queue().launch(server_name="127.0.0.1", server_port=7860, prevent_thread_lock=True)
for index, (where, code) in enumerate(json.loads(Path("snippets.json").read_text())):
    try:
        exec(compile(code, f"{{where}} (snippet {{index + 1}})", "exec"), {{"__name__": "__readme__"}})
    except Exception:
        print(f"{{where}}: snippet {{index + 1}} failed:\n{{code}}", file=sys.stderr)
        traceback.print_exc()
        sys.exit(1)
    print(f"snippet {{index + 1}} ran", flush=True)
demo.close()
"""


PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]  # the order the snippets run in
LINK = re.compile(r"\]\(([^)\s]+)\)")  # a Markdown link's target: [text](target)


def python_snippets() -> list[tuple[str, str]]:
    """(page, code) of every ```python block of the README and the docs pages, in the order they run."""
    return [
        (page.relative_to(ROOT).as_posix(), code)
        for page in PAGES
        for code in re.findall(r"```python\n(.*?)```", page.read_text(), flags=re.DOTALL)
    ]


def anchor(heading: str) -> str:
    """The fragment GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_readme_opens_with_the_spaces_front_matter_and_stays_short():
    text = (ROOT / "README.md").read_text()
    front, _, rest = text.removeprefix("---\n").partition("\n---\n")
    assert text.startswith("---\n"), "Hugging Face Spaces reads the front matter only as the README's first lines"
    settings = yaml.safe_load(front)
    assert settings["sdk"] == "gradio" and settings["app_file"] == "app.py"
    assert rest.lstrip().startswith("# SAM 2 studio\n")
    lines = len(text.splitlines())
    assert lines <= 120, f"README.md has {lines} lines: move the detail into a docs/ page and link it (at most 120)"
    assert "python app.py --untrained" in rest and "random weights" in rest.lower()


def test_the_readme_links_every_docs_page_and_every_link_leads_to_a_file():
    readme = (ROOT / "README.md").read_text()
    pages = sorted(p.relative_to(ROOT).as_posix() for p in PAGES[1:])
    assert pages, "docs/ holds the detail the README links to"
    assert [page for page in pages if f"]({page})" not in readme] == []
    for page in PAGES:
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://")):
                continue
            path, _, fragment = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.is_file(), f"{page.name} links to {target}, which is not a file"
            if fragment and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), flags=re.MULTILINE)
                assert fragment in {anchor(h) for h in headings}, f"{page.name} links to {target}: no such heading"


def test_the_readme_test_command_is_the_line_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    command = ci[ci.index("# The README's test command (keep the two identical):") + 1]
    for page in ("README.md", "docs/testing.md"):
        assert command in (ROOT / page).read_text().splitlines(), f"{page} must show .ci/run's test command as is"


def test_the_readme_has_snippets_for_each_entry_point():
    text = "\n".join(code for _, code in python_snippets())
    for name in ("gradio_client", "ImagePredictor", "VideoPredictor", "AutomaticMaskGenerator", "auto_annotate",
                 "untrained=True", "mot_seq", "coco_instances", "MotChallenge2DBox", ".train("):  # fmt: skip
        assert name in text, name


def test_every_python_snippet_runs_as_written(tmp_path):
    import json
    import socket

    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", 7860)) == 0:
            pytest.fail("port 7860 (the README's) is in use: stop what listens there to run this test")
    (tmp_path / "snippets.json").write_text(json.dumps(python_snippets()))
    (tmp_path / "runner.py").write_text(RUNNER.format(root=str(ROOT)))
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "YOLO_CONFIG_DIR": str(tmp_path / "ultralytics")}
    device = device_under_test()
    env["SAM2_TEST_DEVICE"] = str(device)
    if device.type == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""  # "auto" in the snippets is then the CPU, as the switch asks
    elif "CUDA_VISIBLE_DEVICES" in os.environ:
        env["CUDA_VISIBLE_DEVICES"] = os.environ["CUDA_VISIBLE_DEVICES"]
    result = subprocess.run(
        [sys.executable, "runner.py"], cwd=tmp_path, capture_output=True, text=True, timeout=900, env=env
    )
    assert result.returncode == 0, result.stderr[-4000:]
    ran = re.findall(r"^snippet \d+ ran$", result.stdout, flags=re.MULTILINE)  # not "ran" in a tool's output
    assert len(ran) == len(python_snippets())
    # the dataset snippet: the examples are inside a package, so the dataset lands in the working directory
    assert (tmp_path / "examples_auto_annotate_labels" / "data.yaml").exists()
    assert not (ROOT / "app" / "examples_auto_annotate_labels").exists()
    offline = tmp_path / "offline_dataset"  # the offline recipe: the examples' boxes became masks, classes named
    assert (offline / "annotations.json").exists() is False  # yolo only, as written
    assert yaml.safe_load((offline / "data.yaml").read_text())["names"] == {0: "ball", 1: "crate", 2: "tree"}
    for label in ("scene.txt", "scene_2.txt"):  # a box's random-weight mask may be empty: then the box is the label
        assert [line.split()[0] for line in (offline / "labels" / label).read_text().splitlines()] == ["0", "1", "2"]
    frames = sorted((offline / "labels" / "video").iterdir())  # every other frame, tracked between its keyframes
    assert len(frames) == 12  # random weights may leave a tracked mask below min_mask_area: a label may be empty
    assert {line.split()[0] for f in frames for line in f.read_text().splitlines()} <= {"0", "1", "2"}
    assert (tmp_path / "trackers" / "auto_annotate" / "data").is_dir()  # the recipe: TrackEval on the MOT files
    assert list((tmp_path / "runs").rglob("last.pt"))  # ... and ultralytics trained on train.txt/val.txt
