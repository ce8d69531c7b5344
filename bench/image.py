"""Image predictor benchmark: ours against Meta's SAM2ImagePredictor and ultralytics' SAM2Predictor.

Same untrained weights (random init of the chosen size, saved once and loaded by all three), same images, same
machine, one run. Prints a Markdown table:
- set_image (new image): median seconds to embed an image never seen before;
- set_image (seen image): median seconds to set an image that was set before (our cache; the others re-encode);
- click: median seconds per single-click prediction on an embedded image (multimask, masks at image size).

    python bench/image.py                       # tiny model, 1280x720 images, CPU or the GPU if there is one
    python bench/image.py --size b --device cuda --repeats 20
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sam2_model import ImagePredictor, load_model
from sam2_model.checkpoints import ModelSpec
from sam2_model.devices import select_device

META_CONFIGS = {"t": "sam2.1_hiera_t", "s": "sam2.1_hiera_s", "b": "sam2.1_hiera_b+", "l": "sam2.1_hiera_l"}


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", choices=list(META_CONFIGS), default="t", help="model size (t, s, b=base_plus, l)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--images", type=int, default=4, help="distinct images (the first one warms up)")
    parser.add_argument("--repeats", type=int, default=10, help="clicks timed per predictor")
    args = parser.parse_args()

    device = select_device(args.device)
    threads = torch.get_num_threads()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (args.height, args.width, 3), dtype=np.uint8) for _ in range(args.images)]
    click_xy = np.array([[args.width // 2, args.height // 2]])

    with tempfile.TemporaryDirectory() as folder:
        # "sam2.1" in the file name makes ultralytics build the SAM 2.1 architecture for the same file
        checkpoint = Path(folder) / f"sam2.1_{args.size}.pt"
        torch.manual_seed(0)
        torch.save({"model": ModelSpec(args.size, "2.1").build_untrained().state_dict()}, checkpoint)
        rows = []

        ours = ImagePredictor(load_model(checkpoint, device=device))
        rows.append(
            measure(
                "ours (sam2_model.ImagePredictor)",
                ours.set_image,
                lambda: ours.predict(point_coords=click_xy, point_labels=[1]),
                images,
                args.repeats,
                device,
            )
        )

        from sam2.build_sam import build_sam2
        from sam2.sam2_image_predictor import SAM2ImagePredictor

        meta = SAM2ImagePredictor(
            build_sam2(f"configs/sam2.1/{META_CONFIGS[args.size]}.yaml", ckpt_path=str(checkpoint), device=device)
        )
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=device.type == "cuda"):
            rows.append(
                measure(
                    "Meta (sam2.SAM2ImagePredictor)",
                    meta.set_image,
                    lambda: meta.predict(point_coords=click_xy, point_labels=[1]),
                    images,
                    args.repeats,
                    device,
                )
            )

        from ultralytics.models.sam import SAM2Predictor

        overrides = {"task": "segment", "mode": "predict", "imgsz": 1024, "model": str(checkpoint), "save": False}
        ultra = SAM2Predictor(overrides={**overrides, "device": str(device), "verbose": False, "half": False})
        ultra.setup_model(verbose=False)
        torch.set_num_threads(threads)  # ultralytics' select_device lowers the thread count on small machines
        rows.append(
            measure(
                "ultralytics (SAM2Predictor)",
                lambda im: ultra.set_image(im[:, :, ::-1].copy()),  # it takes BGR
                lambda: ultra(points=click_xy.tolist(), labels=[1]),
                images,
                args.repeats,
                device,
            )
        )

    print(
        f"\nSAM 2.1 {args.size}, {args.width}x{args.height} images, device {device}"
        f"{f' ({torch.cuda.get_device_name(device)})' if device.type == 'cuda' else ''}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads\n"
    )
    print("| predictor | set_image, new image (s) | set_image, seen image (s) | speed-up when seen | click (ms) |")
    print("|---|---|---|---|---|")
    for row in rows:
        print(
            f"| {row['name']} | {row['new']:.3f} | {row['seen']:.4f} | {row['new'] / row['seen']:.0f}x "
            f"| {row['click'] * 1000:.1f} |"
        )


if __name__ == "__main__":
    main()
