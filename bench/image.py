"""Image predictor benchmark: ours against Meta's SAM2ImagePredictor and ultralytics' SAM2Predictor.

Same untrained weights (random init of the chosen size, saved once and loaded by all three), same images, same
machine and device, same precision (bf16 autocast on CUDA for all three), one run; each predictor in its own process
(`bench/isolated.py` says why). Timings are synchronised with the GPU; on CUDA a column gives each predictor's peak
GPU memory (`torch.cuda.max_memory_allocated`). Prints a Markdown table:
- set_image (new image): median seconds to embed an image never seen before;
- set_image (seen image): median seconds to set an image that was set before (our cache; the others re-encode);
- click: median seconds per single-click prediction on an embedded image (multimask, masks at image size).

    python bench/image.py                       # tiny model, 1280x720 images, the GPU if there is one, else CPU
    python bench/image.py --size b --device cuda --repeats 20
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.isolated import (
    Stopwatch,
    format_mb,
    gpu_peak_mb,
    precision,
    precision_label,
    report_gpu_peak,
    reset_gpu_peak,
    resolve_device,
    run_isolated,
    ultralytics_device,
    untrained_checkpoint,
)
from sam2_model import ImagePredictor, load_model

META_CONFIGS = {"t": "sam2.1_hiera_t", "s": "sam2.1_hiera_s", "b": "sam2.1_hiera_b+", "l": "sam2.1_hiera_l"}
IMPLS = ("ours", "meta", "ultralytics")


@dataclass
class Built:
    """One implementation ready to measure: `set_image` takes HxWx3 uint8 RGB; `click` predicts one click."""

    name: str
    predictor: Any  # holds the model (what tests check the device of)
    set_image: Callable[[np.ndarray], object]
    click: Callable[[], object]


def build(impl: str, checkpoint: str, size: str, device: torch.device, click_xy: np.ndarray) -> Built:
    """Build `impl` on `device` from `checkpoint`, with hole filling off for all (every predictor's default)."""
    if impl == "ours":
        predictor: Any = ImagePredictor(load_model(checkpoint, device=device))
        return Built("ours (sam2_model.ImagePredictor)", predictor, predictor.set_image,
                     lambda: predictor.predict(point_coords=click_xy, point_labels=[1]))  # fmt: skip
    if impl == "meta":
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        config = f"configs/sam2.1/{META_CONFIGS[size]}.yaml"
        predictor = SAM2ImagePredictor(build_sam2(config, checkpoint, str(device)))
        return Built("Meta (sam2.SAM2ImagePredictor)", predictor, predictor.set_image,
                     lambda: predictor.predict(point_coords=click_xy, point_labels=[1]))  # fmt: skip
    from ultralytics.models.sam import SAM2Predictor

    threads = torch.get_num_threads()
    overrides = {"task": "segment", "mode": "predict", "imgsz": 1024, "model": checkpoint, "save": False,
                 "device": ultralytics_device(device), "verbose": False, "half": False}  # fmt: skip
    predictor = SAM2Predictor(overrides=overrides)
    predictor.setup_model(verbose=False)
    torch.set_num_threads(threads)  # ultralytics' select_device lowers the thread count on small machines

    def set_bgr_image(image: np.ndarray) -> object:
        return predictor.set_image(image[:, :, ::-1].copy())  # it takes BGR

    def click() -> object:
        return predictor(points=click_xy.tolist(), labels=[1])

    return Built("ultralytics (SAM2Predictor)", predictor, set_bgr_image, click)


def measure(built: Built, images: list[np.ndarray], repeats: int, device: torch.device) -> dict[str, Any]:
    def timed(function: Callable[[], object]) -> float:
        with Stopwatch(device) as watch:
            function()
        return watch.seconds

    built.set_image(images[0])  # warm-up: first-call allocations and kernel selection
    built.click()
    new = [timed(functools.partial(built.set_image, im)) for im in images[1:]]
    seen = [timed(functools.partial(built.set_image, im)) for im in images[1:]]
    clicks = [timed(built.click) for _ in range(repeats)]
    return {"name": built.name, "new": statistics.median(new), "seen": statistics.median(seen),
            "click": statistics.median(clicks)}  # fmt: skip


def worker(impl: str, checkpoint: str, args: argparse.Namespace) -> dict[str, Any]:
    """Measure one implementation in this process, on the device the parent resolved, in the shared precision."""
    device = resolve_device(args.device)
    reset_gpu_peak(device)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (args.height, args.width, 3), dtype=np.uint8) for _ in range(args.images)]
    built = build(impl, checkpoint, args.size, device, np.array([[args.width // 2, args.height // 2]]))
    with precision(device):
        row = measure(built, images, args.repeats, device)
    return {**row, "gpu_mb": gpu_peak_mb(device)}


def worker_options(args: argparse.Namespace, device: torch.device) -> list[str]:
    """What every worker is started with: the device resolved once, so all implementations share it."""
    return ["--size", args.size, "--device", str(device), "--width", str(args.width), "--height", str(args.height),
            "--images", str(args.images), "--repeats", str(args.repeats)]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=list(META_CONFIGS), default="t", help="model size (t, s, b=base_plus, l)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N: one device for every predictor")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--images", type=int, default=4, help="distinct images (the first one warms up)")
    parser.add_argument("--repeats", type=int, default=10, help="clicks timed per predictor")
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    if args.worker:
        impl, checkpoint = args.worker
        print(json.dumps(worker(impl, checkpoint, args)))
        return

    device = resolve_device(args.device)
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = untrained_checkpoint(folder, args.size)
        options = worker_options(args, device)
        rows = [run_isolated(__file__, [*options, "--worker", impl, str(checkpoint)]) for impl in args.impls]
    report_gpu_peak([row.get("gpu_mb") for row in rows])

    print(
        f"\nSAM 2.1 {args.size}, {args.width}x{args.height} images, device {device}"
        f"{f' ({torch.cuda.get_device_name(device)})' if device.type == 'cuda' else ''}, "
        f"{precision_label(device)} for every predictor, hole filling off (every predictor's default), "
        f"timings synchronised, torch {torch.__version__}, {torch.get_num_threads()} CPU threads\n"
    )
    gpu = device.type == "cuda"
    print("| predictor | set_image, new image (s) | set_image, seen image (s) | speed-up when seen | click (ms) |"
          + (" peak GPU (MB) |" if gpu else ""))  # fmt: skip
    print("|---|---|---|---|---|" + ("---|" if gpu else ""))
    for impl, row in zip(args.impls, rows, strict=True):
        if "error" in row:
            print(f"| {impl} | failed: {row['error']} | | | |" + (" |" if gpu else ""))
            continue
        print(
            f"| {row['name']} | {row['new']:.3f} | {row['seen']:.4f} | {row['new'] / row['seen']:.0f}x "
            f"| {row['click'] * 1000:.1f} |" + (f" {format_mb(row['gpu_mb'])} |" if gpu else "")
        )


if __name__ == "__main__":
    main()
