"""Automatic mask generation ("segment everything"): ours against Meta's SAM2AutomaticMaskGenerator.

Same untrained weights (random init of the chosen size, saved once and loaded by both), the same image (the app's
example scene, 640x426), same options, same machine, device and precision (bf16 autocast on CUDA for both), one
run; each implementation in its own process (`bench/isolated.py`). Prints seconds (synchronised with the GPU), peak
RSS growth during `generate` (above the loaded model and a warm-up that ran the encoder once), the process's peak
RSS, and the number of masks. Untrained weights can make speckled masks, the worst case for memory (a mask's RLE
grows with its edges). On CUDA a column gives the peak GPU memory.

    python bench/amg.py                          # tiny model, points_per_side 32, the GPU if there is one, else CPU
    python bench/amg.py --size b --device cuda
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

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
    untrained_checkpoint,
)

META_CONFIGS = {"t": "sam2.1_hiera_t", "s": "sam2.1_hiera_s", "b": "sam2.1_hiera_b+", "l": "sam2.1_hiera_l"}
IMPLS = ("ours", "meta")
IMAGE = Path(__file__).resolve().parents[1] / "app" / "examples" / "scene.jpg"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def build(impl: str, checkpoint: str, size: str, device: torch.device, options: dict[str, Any]) -> Any:
    """The generator of `impl` on `device` (its model is `.predictor.model` for both)."""
    if impl == "ours":
        from sam2_model import AutomaticMaskGenerator, load_model

        return AutomaticMaskGenerator(load_model(checkpoint, device=device), **options)
    from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
    from sam2.build_sam import build_sam2

    return SAM2AutomaticMaskGenerator(build_sam2(f"configs/sam2.1/{META_CONFIGS[size]}.yaml", checkpoint,
                                                 str(device)), **options)  # fmt: skip


def generator_options(args: argparse.Namespace) -> dict[str, Any]:
    """The same options for both; min_mask_region_area 0 (both defaults): no hole filling in either."""
    return {"points_per_side": args.points_per_side, "points_per_batch": args.points_per_batch,
            "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "output_mode": "coco_rle"}  # fmt: skip


def worker(impl: str, checkpoint: str, args: argparse.Namespace) -> dict[str, Any]:
    device = resolve_device(args.device)
    reset_gpu_peak(device)
    image = np.array(Image.open(IMAGE).convert("RGB"))
    generator = build(impl, checkpoint, args.size, device, generator_options(args))
    with precision(device):
        generator.generate(np.ascontiguousarray(image[:64, :64]))  # warm-up: first-call allocations
        before = peak_rss_mb()
        with Stopwatch(device) as watch:
            records = generator.generate(image)
    return {"seconds": watch.seconds, "peak_mb": peak_rss_mb() - before, "masks": len(records),
            "threads": torch.get_num_threads(), "process_mb": peak_rss_mb(), "gpu_mb": gpu_peak_mb(device)}  # fmt: skip


def worker_options(args: argparse.Namespace, device: torch.device) -> list[str]:
    """What every worker is started with: the device resolved once, so all implementations share it."""
    return ["--size", args.size, "--device", str(device), "--points-per-side", str(args.points_per_side),
            "--points-per-batch", str(args.points_per_batch)]  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=list(META_CONFIGS), default="t", help="model size (t, s, b=base_plus, l)")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N: one device for both generators")
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--points-per-batch", type=int, default=64)
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
    print(f"\nSAM 2.1 {args.size}, {IMAGE.name} (640x426), points_per_side {args.points_per_side}, device {device} "
          f"for both, {precision_label(device)}, no hole filling in either (min_mask_region_area 0), "
          "timings synchronised\n")  # fmt: skip
    gpu = device.type == "cuda"
    print("| generator | seconds | peak RSS growth in generate (MB) | process peak RSS (MB) | masks | torch threads |"
          + (" peak GPU (MB) |" if gpu else ""))  # fmt: skip
    print("|---|---|---|---|---|---|" + ("---|" if gpu else ""))
    for impl, row in zip(args.impls, rows, strict=True):
        if "error" in row:
            print(f"| {impl} | failed: {row['error']} | | | | |" + (" |" if gpu else ""))
        else:
            cells = f"{row['seconds']:.1f} | {row['peak_mb']:.0f} | {row['process_mb']:.0f} | {row['masks']}"
            print(f"| {impl} | {cells} | {row['threads']} |" + (f" {format_mb(row['gpu_mb'])} |" if gpu else ""))


if __name__ == "__main__":
    main()
