"""Automatic mask generation ("segment everything"): ours against Meta's SAM2AutomaticMaskGenerator.

Same untrained weights (random init of the chosen size, saved once and loaded by both), the same image (the app's
example scene, 640x426), same options, same machine, one run; each implementation in its own process
(`bench/isolated.py`). Prints seconds, peak RSS growth during `generate` (above the loaded model and a warm-up that
ran the encoder once), the process's peak RSS, and the number of masks. Untrained weights can make speckled masks,
the worst case for memory (a mask's RLE grows with its edges).

    python bench/amg.py                          # tiny model, points_per_side 32, CPU or the GPU if there is one
    python bench/amg.py --size b --device cuda
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.isolated import run_isolated
from sam2_model.checkpoints import ModelSpec
from sam2_model.devices import select_device

META_CONFIGS = {"t": "sam2.1_hiera_t", "s": "sam2.1_hiera_s", "b": "sam2.1_hiera_b+", "l": "sam2.1_hiera_l"}
IMPLS = ("ours", "meta")
IMAGE = Path(__file__).resolve().parents[1] / "app" / "examples" / "scene.jpg"


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(impl: str, checkpoint: str, args: argparse.Namespace) -> dict:
    device = select_device(args.device)
    image = np.array(Image.open(IMAGE).convert("RGB"))
    options = {"points_per_side": args.points_per_side, "points_per_batch": args.points_per_batch,
               "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0, "output_mode": "coco_rle"}  # fmt: skip
    if impl == "ours":
        from sam2_model import AutomaticMaskGenerator, load_model

        generator = AutomaticMaskGenerator(load_model(checkpoint, device=device), **options)
    else:
        from sam2.automatic_mask_generator import SAM2AutomaticMaskGenerator
        from sam2.build_sam import build_sam2

        model = build_sam2(f"configs/sam2.1/{META_CONFIGS[args.size]}.yaml", checkpoint, str(device))
        generator = SAM2AutomaticMaskGenerator(model, **options)
    generator.generate(np.ascontiguousarray(image[:64, :64]))  # warm-up: first-call allocations
    before = peak_rss_mb()
    start = time.perf_counter()
    with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda" and impl == "meta"):
        records = generator.generate(image)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {"seconds": time.perf_counter() - start, "peak_mb": peak_rss_mb() - before, "masks": len(records),
            "threads": torch.get_num_threads(), "process_mb": peak_rss_mb()}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=list(META_CONFIGS), default="t", help="model size (t, s, b=base_plus, l)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--points-per-side", type=int, default=32)
    parser.add_argument("--points-per-batch", type=int, default=64)
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args)))
        return
    options = ["--size", args.size, "--device", args.device, "--points-per-side", str(args.points_per_side),
               "--points-per-batch", str(args.points_per_batch)]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = Path(folder) / f"sam2.1_{args.size}.pt"  # "sam2.1" in the name: ultralytics builds 2.1
        torch.manual_seed(0)
        torch.save({"model": ModelSpec(args.size, "2.1").build_untrained().state_dict()}, checkpoint)
        rows = [run_isolated(__file__, [*options, "--worker", impl, str(checkpoint)]) for impl in args.impls]
    device = select_device(args.device)
    print(f"\nSAM 2.1 {args.size}, {IMAGE.name} (640x426), points_per_side {args.points_per_side}, device {device}\n")
    print("| generator | seconds | peak RSS growth in generate (MB) | process peak RSS (MB) | masks | torch threads |")
    print("|---|---|---|---|---|---|")
    for impl, row in zip(args.impls, rows, strict=True):
        if "error" in row:
            print(f"| {impl} | failed: {row['error']} | | | | |")
        else:
            cells = f"{row['seconds']:.1f} | {row['peak_mb']:.0f} | {row['process_mb']:.0f} | {row['masks']}"
            print(f"| {impl} | {cells} | {row['threads']} |")


if __name__ == "__main__":
    main()
