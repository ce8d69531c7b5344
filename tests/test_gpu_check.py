"""bench/gpu_check.py: the checklist's steps in order, CUDA steps skipped without CUDA, each step under its own time
limit (its processes stopped with it), failures in the table and in the exit status. The benchmarks themselves are
not run here (tests/test_bench.py covers their plumbing)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from bench import gpu_check
from bench.gpu_check import Outcome, Step

ORDER = [
    "environment",
    "readme-on-cuda",
    "model-tests-on-cuda",
    "smoke-image",
    "smoke-video",
    "smoke-mask_input",
    "smoke-everything",
    "bench-image",
    "bench-video",
    "bench-amg",
    "bench-annotate",
    "bench-annotate_video",
    "bench-ui",
]


@pytest.mark.parametrize("quick", [False, True])
def test_the_checklist_runs_in_order_with_cuda_steps_marked(quick):
    args = gpu_check.parse_args(["--device", "cpu", *(["--quick"] if quick else [])])
    steps = gpu_check.plan(args, "cpu")
    assert [s.name for s in steps] == ORDER
    needs_cuda = {s.name for s in steps if s.needs_cuda}
    assert needs_cuda == {"readme-on-cuda", "model-tests-on-cuda"} | {n for n in ORDER if n.startswith("bench-")}
    by_name = {s.name: s for s in steps}
    assert by_name["readme-on-cuda"].env == {"SAM2_TEST_DEVICE": "cpu"}  # the device the run resolved
    assert "tests/test_readme.py" in by_name["readme-on-cuda"].command
    for name in ORDER[3:]:  # smoke runs and benchmarks get the one device, and --quick where they have it
        command = by_name[name].command
        assert command[command.index("--device") + 1] == "cpu"
        if name.startswith("smoke-"):
            assert ("--quick" in command) is quick
    assert all(s.limit_s > 0 for s in steps)


def test_only_selects_steps_and_names_unknown_ones():
    steps = gpu_check.plan(gpu_check.parse_args(["--only", "smoke-video", "environment"]), "cpu")
    assert [s.name for s in steps] == ["environment", "smoke-video"]  # the checklist's order, not the caller's
    with pytest.raises(ValueError, match=r"Unknown step\(s\) \['bench-everything'\]"):
        gpu_check.plan(gpu_check.parse_args(["--only", "bench-everything"]), "cpu")


def python_step(name: str, code: str, limit_s: int = 600, needs_cuda: bool = False) -> Step:
    return Step(name, [sys.executable, "-c", code], limit_s, needs_cuda)


def test_a_cuda_step_is_skipped_without_cuda(tmp_path):
    outcome = gpu_check.run_step(python_step("bench-x", "raise SystemExit(1)", needs_cuda=True), False, tmp_path)
    assert outcome == Outcome("bench-x", "skipped: no CUDA", None, None) and not outcome.failed


def test_a_step_reports_its_failure_and_its_gpu_peak(tmp_path):
    code = (
        "import os, pathlib; pathlib.Path(os.environ['SAM2_GPU_PEAK_FILE']).write_text('123.4'); print('it broke');"
        "raise SystemExit(3)"
    )
    outcome = gpu_check.run_step(python_step("smoke-x", code), False, tmp_path)
    assert outcome.status == "FAILED (exit 3): it broke" and outcome.failed
    assert outcome.gpu_mb == 123.4
    assert "it broke" in (tmp_path / "smoke-x.log").read_text()


def test_a_step_over_its_limit_is_stopped_with_the_processes_it_started(tmp_path):
    # the step starts a child that would outlive it (as a benchmark's workers would), then waits; neither uses the CPU
    code = (
        "import subprocess, sys, time; child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])"
        f"; open({str(tmp_path / 'child')!r}, 'w').write(str(child.pid)); time.sleep(120)"
    )
    outcome = gpu_check.run_step(python_step("slow", code, limit_s=2), False, tmp_path)
    assert outcome.status == "TIMED OUT after 2 s" and outcome.failed
    child = int((tmp_path / "child").read_text())
    for _ in range(100):  # the kill is sent; the kernel reaps the orphan shortly after
        if not Path(f"/proc/{child}").exists() or "Z" in Path(f"/proc/{child}/stat").read_text().split()[2]:
            break
        time.sleep(0.1)
    else:
        os.kill(child, 9)
        pytest.fail("the step's child process outlived the step's time limit")


def test_one_table_and_a_non_zero_exit_when_a_step_failed(tmp_path, monkeypatch, capsys):
    steps = [python_step("environment", "print('fine')"), python_step("smoke-x", "raise SystemExit(2)"),
             python_step("bench-x", "print('never')", needs_cuda=True)]  # fmt: skip
    monkeypatch.setattr(gpu_check, "plan", lambda args, device: steps)
    assert gpu_check.main(["--device", "cpu", "--logs", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "| step | status | time (s) | peak GPU (MB) |" in out
    assert "| environment | ok |" in out and "| smoke-x | FAILED (exit 2): no output |" in out
    assert "| bench-x | skipped: no CUDA | - | - |" in out
    assert "1 failed: smoke-x" in out
    monkeypatch.setattr(gpu_check, "plan", lambda args, device: steps[::2])
    assert gpu_check.main(["--device", "cpu", "--logs", str(tmp_path)]) == 0


def test_a_device_this_machine_lacks_is_refused(capsys, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu_check.main(["--device", "cuda"]) == 2
    assert "--device cpu" in capsys.readouterr().err
