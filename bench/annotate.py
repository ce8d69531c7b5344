"""auto_annotate benchmark: ours against ultralytics.data.annotator.auto_annotate on the same folder and model files.

Both runs get the same untrained YOLO11n detector file and the same untrained SAM 2.1 checkpoint (random weights:
no download; `conf=0` so the detector returns `max_det` boxes per image), the same synthetic images, the same
machine, one process. Each call is timed whole, model loading included, as a user would run it. Prints a Markdown
table with images per second and the instances each wrote (one label line per instance).

    python bench/annotate.py                      # 16 images of 640x480, SAM 2.1 tiny, 4 boxes per image
    python bench/annotate.py --images 64 --size b --device cuda
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("YOLO_OFFLINE", "1")

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotate import auto_annotate
from sam2_model.checkpoints import ModelSpec


def count_lines(folder: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in folder.rglob("*.txt"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--size", choices=["t", "s", "b", "l"], default="t", help="SAM 2.1 size")
    parser.add_argument("--max-det", type=int, default=4, help="boxes per image")
    parser.add_argument("--device", default="", help="'' (auto), cpu, 0, cuda...")
    parser.add_argument("--ray-workers", type=int, nargs="*", default=[], help="also run backend='ray' with N workers")
    parser.add_argument("--skip-ultralytics", action="store_true")
    args = parser.parse_args()

    from ultralytics import YOLO
    from ultralytics.data.annotator import auto_annotate as ultralytics_auto_annotate

    threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        images = root / "images"
        images.mkdir()
        rng = np.random.default_rng(0)
        for i in range(args.images):
            image = rng.integers(0, 255, (args.height, args.width, 3), dtype=np.uint8)
            cv2.rectangle(image, (50 + i, 60), (300, 280 + i), (30, 200, 90), -1)
            cv2.imwrite(str(images / f"{i:05d}.jpg"), image)
        detector_file = root / "yolo11n.pt"
        YOLO("yolo11n.yaml").save(detector_file)
        sam_file = root / f"sam2.1_{args.size}.pt"  # the name tells ultralytics to build SAM 2.1
        torch.manual_seed(0)
        torch.save({"model": ModelSpec(args.size, "2.1").build_untrained().state_dict()}, sam_file)
        torch.set_num_threads(threads)
        common = {"device": args.device, "conf": 0.0, "max_det": args.max_det}

        start = time.perf_counter()
        summary = auto_annotate(
            images, det_model=str(detector_file), sam_model=str(sam_file), output_dir=root / "ours", progress=False,
            **common,
        )  # fmt: skip
        ours_seconds = time.perf_counter() - start
        ours_lines = count_lines(root / "ours" / "labels")

        ray_rows = []
        if args.ray_workers:
            import ray

            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": str(Path(__file__).resolve().parents[1]),
                                               "YOLO_OFFLINE": "1"}})  # fmt: skip
            for workers in args.ray_workers:
                start = time.perf_counter()
                auto_annotate(
                    images, det_model=str(detector_file), sam_model=str(sam_file), output_dir=root / f"ray{workers}",
                    progress=False, backend="ray", workers=workers, **common,
                )  # fmt: skip
                ray_rows.append((workers, time.perf_counter() - start, count_lines(root / f"ray{workers}" / "labels")))
            ray.shutdown()

        theirs_seconds, theirs_lines, theirs_threads = float("nan"), 0, threads
        if not args.skip_ultralytics:
            start = time.perf_counter()
            ultralytics_auto_annotate(
                images, det_model=str(detector_file), sam_model=str(sam_file), output_dir=root / "theirs", **common
            )
            theirs_seconds = time.perf_counter() - start
            theirs_lines = count_lines(root / "theirs")
            theirs_threads = torch.get_num_threads()
            torch.set_num_threads(threads)

    detected = args.images * args.max_det
    print(
        f"\n{args.images} images {args.width}x{args.height}, YOLO11n + SAM 2.1 {args.size} (untrained), "
        f"{args.max_det} boxes per image, device {args.device or 'auto'}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}\n"
    )
    print("| auto_annotate | seconds | images/s | instances written (of detected) | torch threads after |")
    print("|---|---|---|---|---|")
    print(
        f"| ours (annotate) | {ours_seconds:.1f} | {args.images / ours_seconds:.2f} | {ours_lines} / {detected} "
        f"| {threads} |"
    )
    for workers, seconds, lines in ray_rows:
        print(f"| ours, backend='ray', {workers} worker(s) | {seconds:.1f} | {args.images / seconds:.2f} | "
              f"{lines} / {detected} | - |")  # fmt: skip
    if not args.skip_ultralytics:
        print(
            f"| ultralytics.data.annotator | {theirs_seconds:.1f} | {args.images / theirs_seconds:.2f} | "
            f"{theirs_lines} / {detected} | {theirs_threads} |"
        )
    print(f"\nspeed-up: {theirs_seconds / ours_seconds:.2f}x; same instance count: {ours_lines == theirs_lines}")
    if ours_lines != theirs_lines:
        print("(ultralytics drops an instance whose mask outline has < 3 points; ours writes its box instead)")
    print(summary)


if __name__ == "__main__":
    main()
