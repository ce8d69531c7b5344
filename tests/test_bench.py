"""The benchmarks measure every implementation alike: one device resolved once and handed to every worker, every
model built on it, timings synchronised with the GPU, the GPU peak reset and read per implementation, one precision,
and Meta's hole filling run (or named) where its CUDA extension is missing. No timing is asserted.

CUDA is faked where a CPU can prove the plumbing (`torch.cuda.*` monkeypatched); models are built for real on the CPU.
"""

from __future__ import annotations

import contextlib
import importlib
import re
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
import torch

from bench import isolated

ROOT = Path(__file__).resolve().parents[1]
MODEL_BENCHES = ("image", "video", "amg", "annotate", "annotate_video")
CPU = torch.device("cpu")
CUDA0 = torch.device("cuda", 0)


def bench(name: str) -> ModuleType:
    return importlib.import_module(f"bench.{name}")


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A machine with one GPU, as far as device choice and the timing helpers can tell; records CUDA calls."""
    calls: list[str] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: calls.append(f"synchronize {device}"))
    monkeypatch.setattr(torch.cuda, "reset_peak_memory_stats", lambda device=None: calls.append(f"reset {device}"))
    monkeypatch.setattr(torch.cuda, "max_memory_allocated", lambda device=None: 3 * 2**20)
    return calls


@pytest.mark.parametrize("name", MODEL_BENCHES)
def test_auto_is_resolved_once_and_every_worker_gets_that_device(name, fake_cuda):
    module = bench(name)
    args = module.parse_args([])
    assert args.device == "auto"
    device = isolated.resolve_device(args.device)
    assert device == CUDA0
    options = module.worker_options(args, device)
    assert options[options.index("--device") + 1] == "cuda:0"  # not "auto", which each library resolves its own way
    assert isolated.resolve_device(module.parse_args(options).device) == device  # what each worker then builds on


@pytest.mark.parametrize(
    ("requested", "expected", "ultralytics"),
    [("auto", CUDA0, "0"), ("", CUDA0, "0"), ("cuda", CUDA0, "0"), ("0", CUDA0, "0"), ("cpu", CPU, "cpu")],
)
def test_one_device_in_each_library_spelling(fake_cuda, requested, expected, ultralytics):
    device = isolated.resolve_device(requested)
    assert device == expected
    assert isolated.ultralytics_device(device) == ultralytics


def test_stopwatch_synchronises_before_and_after_the_work_on_cuda(fake_cuda):
    with isolated.Stopwatch(CUDA0) as watch:
        fake_cuda.append("work")
    assert fake_cuda == ["synchronize cuda:0", "work", "synchronize cuda:0"]
    assert watch.seconds >= 0
    fake_cuda.clear()
    with isolated.Stopwatch(CPU):
        fake_cuda.append("work")
    assert fake_cuda == ["work"]  # nothing to wait for on the CPU


@pytest.mark.parametrize("name", MODEL_BENCHES)
def test_every_model_bench_times_through_the_synchronised_stopwatch(name):
    source = (ROOT / "bench" / f"{name}.py").read_text()
    assert "Stopwatch(" in source
    assert "perf_counter" not in source and "time.time(" not in source, "an unsynchronised timer"


def test_gpu_peak_is_reset_and_read_per_device(fake_cuda, tmp_path, monkeypatch):
    isolated.reset_gpu_peak(CUDA0)
    assert fake_cuda == ["reset cuda:0"]
    assert isolated.gpu_peak_mb(CUDA0) == 3.0
    isolated.reset_gpu_peak(CPU)
    assert fake_cuda == ["reset cuda:0"]
    assert isolated.gpu_peak_mb(CPU) is None
    target = tmp_path / "peak"
    monkeypatch.setenv(isolated.GPU_PEAK_FILE, str(target))
    isolated.report_gpu_peak([None, 12.0, 40.5])
    assert target.read_text() == "40.5"


def test_every_implementation_gets_the_same_precision(monkeypatch):
    from sam2_model import devices

    with pytest.warns(UserWarning) if not torch.cuda.is_available() else contextlib.nullcontext():
        cuda = devices.autocast(CUDA0)  # a CPU-only machine warns that it disables it: the settings still show
    assert isinstance(cuda, torch.autocast) and cuda.fast_dtype == torch.bfloat16 and cuda.device == "cuda"
    entered: list[str] = []

    def recorder(name: str) -> Any:
        @contextlib.contextmanager
        def record(device: torch.device) -> Iterator[None]:
            entered.append(f"{name} {device}")
            yield

        return record

    monkeypatch.setattr(isolated, "autocast", recorder("autocast"))  # SAM 2's own policy, as our model applies it
    monkeypatch.setattr(isolated, "tf32", recorder("tf32"))
    with isolated.precision(CUDA0):
        entered.append("work")
    assert entered == ["autocast cuda:0", "tf32 cuda:0", "work"]

    class Library:
        def inference(self, value: int) -> int:
            entered.append("inference")
            return value + 1

    entered.clear()
    original = Library.inference
    with isolated.precision_in(Library, CUDA0, "inference"):
        assert Library().inference(1) == 2
    assert entered == ["autocast cuda:0", "tf32 cuda:0", "inference"]
    assert Library.inference is original
    assert isolated.precision_label(CPU) == "float32"
    monkeypatch.setattr(isolated, "uses_tf32", lambda device: True)
    assert isolated.precision_label(CUDA0) == "bf16 autocast + TF32"


def test_meta_hole_filling_runs_where_its_extension_is_missing(monkeypatch):
    import sam2.utils.misc

    monkeypatch.setattr(sam2.utils.misc, "get_connected_components", sam2.utils.misc.get_connected_components)
    logits = torch.full((1, 1, 16, 16), 5.0)
    logits[0, 0, 6:8, 6:8] = -5.0  # a 4-pixel hole
    if isolated.meta_has_cuda_extension():
        pytest.skip("this sam2 build has its CUDA extension")
    with pytest.warns(UserWarning, match="Skipping the post-processing"):
        unfilled = sam2.utils.misc.fill_holes_in_mask_scores(logits.clone(), 8)
    assert (unfilled < 0).sum() == 4  # what Meta does without its extension: nothing, with a warning
    label = isolated.meta_hole_filling(CPU)
    assert label == "OpenCV stand-in: its kernel is CUDA-only"
    assert (sam2.utils.misc.fill_holes_in_mask_scores(logits.clone(), 8) < 0).sum() == 0
    monkeypatch.setattr(isolated, "meta_has_cuda_extension", lambda: False)
    assert isolated.meta_hole_filling(CUDA0) == "OpenCV stand-in: no CUDA extension in this sam2 build"


def test_meta_keeps_its_own_kernel_on_cuda_when_it_has_one(monkeypatch):
    import sam2.utils.misc

    original = sam2.utils.misc.get_connected_components
    monkeypatch.setattr(sam2.utils.misc, "get_connected_components", original)
    monkeypatch.setattr(isolated, "meta_has_cuda_extension", lambda: True)
    assert isolated.meta_hole_filling(CUDA0) == "Meta's CUDA kernel"
    assert sam2.utils.misc.get_connected_components is original


@pytest.fixture(scope="module")
def keep_threads() -> Iterator[None]:
    threads = torch.get_num_threads()  # ultralytics' select_device lowers it process-wide
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("impl", ["ours", "meta", "ultralytics"])
def test_image_bench_builds_every_predictor_on_the_requested_device(impl, checkpoints, keep_threads):
    built = bench("image").build(impl, str(checkpoints.ultralytics), "t", CPU, np.array([[8, 8]]))
    assert isolated.module_devices(built.predictor) == {CPU}


@pytest.mark.parametrize("impl", ["ours", "meta", "ultralytics"])
def test_video_bench_builds_every_predictor_on_the_requested_device(
    impl, checkpoints, tmp_path, keep_threads, monkeypatch
):
    import sam2.utils.misc

    # Meta's hole-filling stand-in is process-wide: undone after the test
    monkeypatch.setattr(sam2.utils.misc, "get_connected_components", sam2.utils.misc.get_connected_components)
    built = bench("video").build(impl, 1, str(tmp_path / "frames_2"), str(checkpoints.ultralytics), "t", CPU)
    assert isolated.module_devices(built.predictor) == {CPU}
    expected = {
        "ours": "8 px (OpenCV)",
        "meta": "8 px (OpenCV stand-in: its kernel is CUDA-only)",
        "ultralytics": "none",
    }
    assert built.hole_filling == expected[impl]


@pytest.mark.parametrize("impl", ["ours", "meta"])
def test_amg_bench_builds_both_generators_on_the_requested_device(impl, checkpoints):
    module = bench("amg")
    generator = module.build(
        impl, str(checkpoints.ultralytics), "t", CPU, module.generator_options(module.parse_args([]))
    )
    assert isolated.module_devices(generator) == {CPU}


def image_rows(_script: object, arguments: list[str]) -> dict[str, Any]:
    """What image.py's workers print: a GPU peak on CUDA, None elsewhere."""
    impl, device = arguments[arguments.index("--worker") + 1], arguments[arguments.index("--device") + 1]
    gpu_mb = {"ours": 100.0, "meta": 250.0}[impl] if device.startswith("cuda") else None
    return {"name": impl, "new": 1.0, "seen": 0.5, "click": 0.01, "gpu_mb": gpu_mb}


@pytest.mark.parametrize(("device", "gpu_column"), [(CPU, False), (CUDA0, True)])
def test_image_table_has_a_gpu_memory_column_on_cuda(device, gpu_column, monkeypatch, capsys, tmp_path, fake_cuda):
    module = bench("image")
    monkeypatch.setattr(module, "run_isolated", image_rows)
    monkeypatch.setattr(module, "resolve_device", lambda _: device)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda _=None: "Fake GPU")
    monkeypatch.setattr(isolated, "uses_tf32", lambda _: False)  # a pre-Ampere GPU
    monkeypatch.setattr(module, "untrained_checkpoint", lambda folder, size: Path(folder) / f"sam2.1_{size}.pt")
    monkeypatch.setenv(isolated.GPU_PEAK_FILE, str(tmp_path / "peak"))
    monkeypatch.setattr("sys.argv", ["image.py", "--impls", "ours", "meta"])
    module.main()
    table = capsys.readouterr().out
    assert ("peak GPU (MB)" in table) is gpu_column
    assert ("bf16 autocast for every predictor" in table) is gpu_column
    assert re.search(r"\| meta \| 1.000 \| 0.5000 \| 2x \| 10.0 \|" + (r" 250 \|" if gpu_column else "$"), table, re.M)
    assert (tmp_path / "peak").exists() is gpu_column


def test_every_benchmark_gets_the_same_untrained_weights_named_for_sam2_1(tmp_path):
    """ultralytics picks SAM 2.1 by the file's name; a seeded build gives every run the same weights."""
    (tmp_path / "a").mkdir()
    first, second = isolated.untrained_checkpoint(tmp_path / "a", "t"), isolated.untrained_checkpoint(tmp_path, "t")
    assert first.name == second.name == "sam2.1_t.pt"
    a, b = torch.load(first)["model"], torch.load(second)["model"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
