"""Image predictor benchmark: ours against Meta's SAM2ImagePredictor and ultralytics' SAM2Predictor.

Same untrained weights (random init of the chosen size, saved once and loaded by all three), same images, same
machine, one run; each predictor in its own process (`bench/isolated.py` says why). Prints a Markdown table:
- set_image (new image): median seconds to embed an image never seen before;
- set_image (seen image): median seconds to set an image that was set before (our cache; the others re-encode);
- click: median seconds per single-click prediction on an embedded image (multimask, masks at image size).

    python bench/image.py                       # tiny model, 1280x720 images, CPU or the GPU if there is one
    python bench/image.py --size b --device cuda --repeats 20
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.isolated import run_isolated
from sam2_model import ImagePredictor, load_model
from sam2_model.checkpoints import ModelSpec
from sam2_model.devices import select_device

META_CONFIGS = {"t": "sam2.1_hiera_t", "s": "sam2.1_hiera_s", "b": "sam2.1_hiera_b+", "l": "sam2.1_hiera_l"}
IMPLS = ("ours", "meta", "ultralytics")


def timed(function: Callable[[], object], device: torch.device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    function()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def measure(name: str, set_image, click, images: list[np.ndarray], repeats: int, device: torch.device) -> dict:
    set_image(images[0])  # warm-up: first-call allocations and kernel selection
    click()
    new = [timed(lambda im=im: set_image(im), device) for im in images[1:]]
    seen = [timed(lambda im=im: set_image(im), device) for im in images[1:]]
    clicks = [timed(click, device) for _ in range(repeats)]
    return {
        "name": name,
        "new": statistics.median(new),
        "seen": statistics.median(seen),
        "click": statistics.median(clicks),
    }


def worker(impl: str, checkpoint: str, args: argparse.Namespace) -> dict:
    """Measure one implementation in this process."""
    device = select_device(args.device)
    threads = torch.get_num_threads()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (args.height, args.width, 3), dtype=np.uint8) for _ in range(args.images)]
    click_xy = np.array([[args.width // 2, args.height // 2]])
    precision = contextlib.nullcontext()
    if impl == "ours":
        name, predictor = "ours (sam2_model.ImagePredictor)", ImagePredictor(load_model(checkpoint, device=device))
        set_image, click = predictor.set_image, lambda: predictor.predict(point_coords=click_xy, point_labels=[1])
    elif impl == "meta":
        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        config = f"configs/sam2.1/{META_CONFIGS[args.size]}.yaml"
        name, predictor = "Meta (sam2.SAM2ImagePredictor)", SAM2ImagePredictor(build_sam2(config, checkpoint, device))
        set_image, click = predictor.set_image, lambda: predictor.predict(point_coords=click_xy, point_labels=[1])
        precision = torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda")  # Meta's demos
    else:
        from ultralytics.models.sam import SAM2Predictor

        overrides = {"task": "segment", "mode": "predict", "imgsz": 1024, "model": checkpoint, "save": False,
                     "device": str(device), "verbose": False, "half": False}  # fmt: skip
        name, predictor = "ultralytics (SAM2Predictor)", SAM2Predictor(overrides=overrides)
        predictor.setup_model(verbose=False)
        torch.set_num_threads(threads)  # ultralytics' select_device lowers the thread count on small machines
        set_image = lambda im: predictor.set_image(im[:, :, ::-1].copy())  # noqa: E731 (it takes BGR)
        click = lambda: predictor(points=click_xy.tolist(), labels=[1])  # noqa: E731
    with precision:
        return measure(name, set_image, click, images, args.repeats, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=list(META_CONFIGS), default="t", help="model size (t, s, b=base_plus, l)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--images", type=int, default=4, help="distinct images (the first one warms up)")
    parser.add_argument("--repeats", type=int, default=10, help="clicks timed per predictor")
    parser.add_argument("--impls", nargs="+", default=list(IMPLS), choices=IMPLS)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(*args.worker, args)))
        return

    device = select_device(args.device)
    options = ["--size", args.size, "--device", args.device, "--width", str(args.width), "--height",
               str(args.height), "--images", str(args.images), "--repeats", str(args.repeats)]  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        # "sam2.1" in the file name makes ultralytics build the SAM 2.1 architecture for the same file
        checkpoint = Path(folder) / f"sam2.1_{args.size}.pt"
        torch.manual_seed(0)
        torch.save({"model": ModelSpec(args.size, "2.1").build_untrained().state_dict()}, checkpoint)
        rows = [run_isolated(__file__, [*options, "--worker", impl, str(checkpoint)]) for impl in args.impls]

    print(
        f"\nSAM 2.1 {args.size}, {args.width}x{args.height} images, device {device}"
        f"{f' ({torch.cuda.get_device_name(device)})' if device.type == 'cuda' else ''}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads\n"
    )
    print("| predictor | set_image, new image (s) | set_image, seen image (s) | speed-up when seen | click (ms) |")
    print("|---|---|---|---|---|")
    for impl, row in zip(args.impls, rows, strict=True):
        if "error" in row:
            print(f"| {impl} | failed: {row['error']} | | | |")
            continue
        print(
            f"| {row['name']} | {row['new']:.3f} | {row['seen']:.4f} | {row['new'] / row['seen']:.0f}x "
            f"| {row['click'] * 1000:.1f} |"
        )


if __name__ == "__main__":
    main()
