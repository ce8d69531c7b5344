"""auto_annotate benchmark: ours against ultralytics.data.annotator.auto_annotate on the same folder and model files.

Every run gets the same untrained YOLO11n detector file and the same untrained SAM 2.1 checkpoint (random weights:
no download; `conf=0` so the detector returns `max_det` boxes per image), the same synthetic images, the same
machine and device, SAM in the same precision (bf16 autocast on CUDA: ours does it, ultralytics' SAM predictor is
wrapped in it) and YOLO in float32 for all, one invocation; each call runs in its own fresh process
(`bench/isolated.py` says why) and is timed whole (synchronised with the GPU), model loading included, as a user
would run it. Prints a Markdown table with images per second and the instances each wrote (one label line per
instance), and the peak GPU memory on CUDA.

    python bench/annotate.py                      # 16 images of 640x480, SAM 2.1 tiny, 4 boxes per image
    python bench/annotate.py --images 64 --size b --device 0 --ray-workers 1 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.isolated import (
    Stopwatch,
    format_mb,
    gpu_peak_mb,
    precision_in,
    precision_label,
    report_gpu_peak,
    reset_gpu_peak,
    resolve_device,
    run_isolated,
    ultralytics_device,
    untrained_checkpoint,
)


def count_lines(folder: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in folder.rglob("*.txt"))


def worker(impl: str, root: Path, ray_workers: int, device: torch.device, common: dict[str, Any]) -> dict[str, Any]:
    """Run one whole auto_annotate call in this process, on the device the parent resolved: its seconds
    (synchronised), label lines, torch threads afterwards and peak GPU memory (None for Ray: its workers hold the
    models)."""
    images, detector, sam = root / "images", str(root / "yolo11n.pt"), str(next(root.glob("sam2.1_*.pt")))
    output = root / f"{impl}{ray_workers or ''}"
    reset_gpu_peak(device)
    with Stopwatch(device) as watch:
        if impl.startswith("ultralytics"):
            from ultralytics.data.annotator import auto_annotate as ultralytics_auto_annotate
            from ultralytics.models.sam import SAM2Predictor

            if impl == "ultralytics-threads":  # keep torch's thread count: its select_device lowers it
                torch.set_num_threads = lambda nthreads: None
            # its SAM in SAM 2's precision on the device, as ours; its YOLO in float32, as ours
            with precision_in(SAM2Predictor, device, "inference", "postprocess"):
                ultralytics_auto_annotate(images, det_model=detector, sam_model=sam, output_dir=output,
                                          device=ultralytics_device(device), **common)  # fmt: skip
        else:
            from annotate import auto_annotate

            backend: dict[str, Any] = {"backend": "ray", "workers": ray_workers} if impl == "ray" else {}
            if impl == "ray":
                import ray

                ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1]),
                                                   "YOLO_OFFLINE": "1"}})  # fmt: skip
            auto_annotate(images, det_model=detector, sam_model=sam, output_dir=output, progress=False,
                          device=str(device), **common, **backend)  # fmt: skip
            output = output / "labels"
    gpu_mb = None if impl == "ray" else gpu_peak_mb(device)
    return {
        "seconds": watch.seconds,
        "lines": count_lines(output),
        "threads": torch.get_num_threads(),
        "gpu_mb": gpu_mb,
    }


def worker_options(args: argparse.Namespace, device: torch.device) -> list[str]:
    """What every worker is started with: the device resolved once, so all runs share it."""
    return ["--device", str(device), "--max-det", str(args.max_det)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--size", choices=["t", "s", "b", "l"], default="t", help="SAM 2.1 size")
    parser.add_argument("--max-det", type=int, default=4, help="boxes per image")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N: one device for every run")
    parser.add_argument("--ray-workers", type=int, nargs="*", default=[], help="also run backend='ray' with N workers")
    parser.add_argument("--skip-ultralytics", action="store_true")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    common: dict[str, Any] = {"conf": 0.0, "max_det": args.max_det}
    if args.worker:
        impl, root, ray_workers = args.worker
        print(json.dumps(worker(impl, Path(root), int(ray_workers), device, common)))
        return

    from ultralytics import YOLO

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = root / "images"
        images.mkdir()
        rng = np.random.default_rng(0)
        for i in range(args.images):
            image = rng.integers(0, 255, (args.height, args.width, 3), dtype=np.uint8)
            cv2.rectangle(image, (50 + i, 60), (300, 280 + i), (30, 200, 90), -1)
            cv2.imwrite(str(images / f"{i:05d}.jpg"), image)
        YOLO("yolo11n.yaml").save(root / "yolo11n.pt")
        untrained_checkpoint(root, args.size)  # the workers find it by name

        options = worker_options(args, device)
        runs = [("ours (annotate)", "ours", 0)]
        runs += [(f"ours, backend='ray', {n} worker(s)", "ray", n) for n in args.ray_workers]
        if not args.skip_ultralytics:
            threads = torch.get_num_threads()
            runs.append((f"ultralytics, kept at {threads} torch threads (not its default)", "ultralytics-threads", 0))
            runs.append(("ultralytics.data.annotator", "ultralytics", 0))
        rows = []
        for label, impl, workers in runs:
            rows.append((label, run_isolated(__file__, [*options, "--worker", impl, str(root), str(workers)])))
            print(label, rows[-1][1], file=sys.stderr, flush=True)

    report_gpu_peak([row.get("gpu_mb") for _, row in rows])
    detected = args.images * args.max_det
    print(
        f"\n{args.images} images {args.width}x{args.height}, YOLO11n + SAM 2.1 {args.size} (untrained), "
        f"{args.max_det} boxes per image, device {device} for every run, SAM in {precision_label(device)} and YOLO "
        f"in float32 for every run, no hole filling in any, {os.cpu_count()} CPUs, torch {torch.__version__}\n"
    )
    gpu = device.type == "cuda"
    print("| auto_annotate | seconds | images/s | instances written (of detected) | torch threads after |"
          + (" peak GPU (MB) |" if gpu else ""))  # fmt: skip
    print("|---|---|---|---|---|" + ("---|" if gpu else ""))
    for label, row in rows:
        if "error" in row:
            print(f"| {label} | failed: {row['error']} | | | |" + (" |" if gpu else ""))
        else:
            rate = args.images / row["seconds"]
            print(f"| {label} | {row['seconds']:.1f} | {rate:.2f} | {row['lines']} / {detected} | {row['threads']} |"
                  + (f" {format_mb(row['gpu_mb'])} |" if gpu else ""))  # fmt: skip
    ours, theirs = rows[0][1], rows[-1][1]
    if not args.skip_ultralytics and "error" not in ours and "error" not in theirs:
        print(f"\nspeed-up: {theirs['seconds'] / ours['seconds']:.2f}x; same instance count: "
              f"{ours['lines'] == theirs['lines']}")  # fmt: skip
        if ours["lines"] != theirs["lines"]:
            print("(ultralytics drops an instance whose mask outline has < 3 points; ours writes its box instead)")


if __name__ == "__main__":
    main()
