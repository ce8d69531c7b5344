"""The first session on a GPU, in one command: every check in order, one table at the end.

    python bench/gpu_check.py                        # the whole checklist on the GPU (auto: CUDA if there is one)
    python bench/gpu_check.py --quick                # a short version (smaller inputs, fewer frames and repeats)
    python bench/gpu_check.py --device cpu --quick   # what runs without a GPU: the smoke runs; the rest is skipped
    python bench/gpu_check.py --only environment smoke-video bench-video

Steps, in order: the environment (torch, CUDA, the GPU, its memory, Meta's CUDA extension); the README's snippets
on CUDA (tests/test_readme.py with SAM2_TEST_DEVICE=cuda); the model tests on CUDA (tests/sam2_model, agreement with
Meta included); smoke runs of image, video (3 objects), mask input and segment everything (bench/smoke.py); then the
benchmarks image, video, amg, annotate, annotate_video and ui, each with its peak GPU memory. Each step runs in a
process of its own under its own time limit (its whole process group is stopped when it runs over); steps that need
CUDA say "skipped: no CUDA" on a machine or device without it. Every step's output is kept in --logs (the benchmarks'
tables are there). Prints one table (step, status, seconds, peak GPU memory) and exits 1 if any step failed or ran
over its limit.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMOKE_CHECKS = ("image", "video", "mask_input", "everything")
PEAK_FILE = "SAM2_GPU_PEAK_FILE"  # bench/isolated.py's GPU_PEAK_FILE: each step writes its peak GPU MiB there

ENVIRONMENT = """
import platform, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA build {torch.version.cuda}")
print(f"CUDA available: {torch.cuda.is_available()}")
for i in range(torch.cuda.device_count()):
    p = torch.cuda.get_device_properties(i)
    free, total = torch.cuda.mem_get_info(i)
    print(f"GPU {i}: {p.name}, compute {p.major}.{p.minor}, {total / 2**30:.1f} GiB ({free / 2**30:.1f} GiB free), "
          f"bf16 {torch.cuda.is_bf16_supported()}")
try:
    from sam2 import _C  # noqa: F401
    print("Meta's sam2: built with its CUDA extension (hole filling in its kernel)")
except ImportError as error:
    print(f"Meta's sam2: no CUDA extension ({error}); the benchmarks give it OpenCV hole filling and say so")
"""


@dataclass(frozen=True)
class Step:
    """One item of the checklist: `command` run from the repository root, killed after `limit_s` seconds."""

    name: str
    command: list[str]
    limit_s: int
    needs_cuda: bool
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    step: str
    status: str  # "ok", "FAILED (exit N): <last line>", "TIMED OUT after N s", "skipped: no CUDA", "not run: ..."
    seconds: float | None
    gpu_mb: float | None

    @property
    def failed(self) -> bool:
        return self.status.startswith(("FAILED", "TIMED OUT"))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto (CUDA if available), cuda, cuda:N or cpu")
    parser.add_argument("--quick", action="store_true", help="a short version of every step")
    parser.add_argument("--size", choices=["t", "s", "b", "l"], default="t", help="SAM 2.1 size for smoke and benches")
    parser.add_argument("--only", nargs="+", metavar="STEP", help="run these steps only (names as in the table)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="multiply every step's time limit")
    parser.add_argument("--logs", type=Path, help="folder for each step's output (default: a new temporary folder)")
    args = parser.parse_args(argv)
    if args.time_scale <= 0:
        parser.error(f"--time-scale must be positive, got {args.time_scale}")
    return args


def resolve(device: str) -> tuple[str, bool]:
    """(the device string every step gets, whether it is CUDA). "auto" is CUDA when torch sees a GPU."""
    import torch

    from bench.isolated import resolve_device

    resolved = resolve_device(device)
    return str(resolved), resolved.type == "cuda" and torch.cuda.is_available()


def plan(args: argparse.Namespace, device: str) -> list[Step]:
    """Every step, in the checklist's order, with its command and time limit for `device` (--quick: shorter)."""
    python, quick = sys.executable, args.quick
    test_env = {"SAM2_TEST_DEVICE": device}
    agreement = ["tests/sam2_model/test_reference_agreement.py", "tests/sam2_model/test_video_reference_agreement.py"]
    model_tests = agreement if quick else ["tests/sam2_model"]
    steps = [
        Step("environment", [python, "-c", ENVIRONMENT], 120, needs_cuda=False),
        Step("readme-on-cuda", [python, "-m", "pytest", "-q", "-x", "tests/test_readme.py"], 1200, True, test_env),
        Step("model-tests-on-cuda", [python, "-m", "pytest", "-q", *model_tests], 2400, True, test_env),
    ]
    smoke = ["--device", device, "--size", args.size, *(["--quick"] if quick else [])]
    for check in SMOKE_CHECKS:
        steps.append(Step(f"smoke-{check}", [python, "bench/smoke.py", check, *smoke], 900, needs_cuda=False))
    size = ["--device", device, "--size", args.size]
    benches = {
        "image": (["--repeats", "3", "--images", "3"] if quick else [], 900),
        "video": (["--frames", "8", "--objects", "1", "3"] if quick else ["--frames", "24", "150"], 1800),
        "amg": (["--points-per-side", "16"] if quick else [], 900),
        "annotate": (["--images", "8"] if quick else ["--images", "64", "--ray-workers", "1"], 1200),
        "annotate_video": (["--frames", "16", "32"] if quick else ["--frames", "150", "300"], 2400),
    }
    for name, (extra, limit) in benches.items():
        steps.append(Step(f"bench-{name}", [python, f"bench/{name}.py", *size, *extra], limit, needs_cuda=True))
    ui = [python, "bench/ui.py", "--device", device, "--repeats", "1" if quick else "3"]
    steps.append(Step("bench-ui", ui, 1200, needs_cuda=True))
    if args.only:
        unknown = sorted(set(args.only) - {s.name for s in steps})
        if unknown:
            raise ValueError(f"Unknown step(s) {unknown}: choose among {[s.name for s in steps]}.")
        steps = [s for s in steps if s.name in args.only]
    return steps


def run_step(step: Step, cuda: bool, logs: Path, time_scale: float = 1.0) -> Outcome:
    """Run one step in its own process group (so a benchmark's worker processes stop with it), its output in
    `logs/<step>.log`; the peak GPU memory it reported, if any."""
    if step.needs_cuda and not cuda:
        return Outcome(step.name, "skipped: no CUDA", None, None)
    log, peak_file = logs / f"{step.name}.log", logs / f"{step.name}.gpu_mb"
    peak_file.unlink(missing_ok=True)
    limit = max(1, round(step.limit_s * time_scale))
    env = {**os.environ, **step.env, PEAK_FILE: str(peak_file), "YOLO_OFFLINE": "1"}
    start = time.perf_counter()  # a wall-clock limit for a whole process: nothing of ours runs on the GPU here
    with log.open("w") as output:
        process = subprocess.Popen(step.command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT,
                                   start_new_session=True)  # fmt: skip
        try:
            code = process.wait(timeout=limit)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)  # the step's own group: it and the processes it started
            process.wait()
            code = None
    seconds = time.perf_counter() - start
    gpu_mb = float(peak_file.read_text()) if peak_file.exists() else None
    if code is None:
        return Outcome(step.name, f"TIMED OUT after {limit} s", seconds, gpu_mb)
    if code != 0:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()] or ["no output"]
        return Outcome(step.name, f"FAILED (exit {code}): {lines[-1].strip()[:100]}", seconds, gpu_mb)
    return Outcome(step.name, "ok", seconds, gpu_mb)


def table(outcomes: list[Outcome]) -> str:
    rows = ["| step | status | time (s) | peak GPU (MB) |", "|---|---|---|---|"]
    for o in outcomes:
        seconds = "-" if o.seconds is None else f"{o.seconds:.1f}"
        gpu = "-" if o.gpu_mb is None else f"{o.gpu_mb:.0f}"
        rows.append(f"| {o.step} | {o.status.replace('|', '/')} | {seconds} | {gpu} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    try:
        device, cuda = resolve(args.device)
        steps = plan(args, device)
    except ValueError as error:
        print(f"gpu_check: {error}", file=sys.stderr)
        return 2
    logs = args.logs or Path(tempfile.mkdtemp(prefix="gpu_check_"))
    logs.mkdir(parents=True, exist_ok=True)
    print(f"gpu_check: {len(steps)} steps on {device}{' (quick)' if args.quick else ''}; output of each in {logs}",
          flush=True)  # fmt: skip
    outcomes = []
    for step in steps:
        outcomes.append(run_step(step, cuda, logs, args.time_scale))
        print(f"  {step.name}: {outcomes[-1].status}", flush=True)
    print(f"\n{table(outcomes)}\n")
    failed = [o.step for o in outcomes if o.failed]
    print(f"{len(failed)} failed: {', '.join(failed)} (logs in {logs})" if failed else f"all passed (logs in {logs})")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
