"""Video auto-annotation benchmark: ours (detector on keyframes, SAM 2 tracking between them) against ours with the
detector on every frame (the image path, on the video's extracted frames) and ultralytics' `auto_annotate` on the
same extracted frames; ours (tracking) at two clip lengths to show its memory does not grow with the video.

Every run gets the same untrained YOLO11n file and the same untrained SAM 2.1 checkpoint (random weights: no
download; `conf=0`, so the detector returns `max_det` boxes per frame), the same synthetic clip, one machine, one
invocation, one device for all, SAM in the same precision (bf16 autocast on CUDA: ours does it, ultralytics' SAM
predictor is wrapped in it) and YOLO in float32; each run is a fresh process (`bench/isolated.py`), timed whole
(synchronised with the GPU) with model loading, as a user runs it.
Frames are extracted to JPEGs before the image-path runs (not timed: a user of those tools must do it first).
Peak memory is the process's peak resident set (and the GPU's peak allocation on CUDA). `tracks`: how many tracks
the video got; with untrained weights a detection's mask seldom matches its tracked mask, so most keyframes start
new tracks (a worst case: every track is tracked on every later frame); trained models keep one per object.

    python bench/annotate_video.py                        # 640x360, 16 and 32 frames, SAM 2.1 tiny, CPU
    python bench/annotate_video.py --frames 150 300 --size b --device 0
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("YOLO_OFFLINE", "1")

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


def synthetic_frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """A textured background with three shapes moving across it; one enters halfway."""
    rng = np.random.default_rng(0)
    background = rng.integers(30, 90, (height, width, 3), dtype=np.uint8)
    frames = []
    for t in range(count):
        frame = background.copy()
        x = int((t * 7) % (width - 120))
        frame[40:160, x : x + 120] = (220, 50, 40)
        frame[height - 150 : height - 30, width - 140 - x // 2 : width - 40 - x // 2] = (40, 190, 60)
        if t >= count // 2:
            frame[120:220, width // 2 : width // 2 + 90] = (60, 80, 220)
        frames.append(frame)
    return frames


def worker(
    impl: str, root: Path, frames: int, device: torch.device, common: dict[str, Any], keyframe_interval: int
) -> dict[str, Any]:
    """One whole run in this process on the device the parent resolved: seconds (synchronised), frames written,
    peak memory (RSS, and this run's GPU peak on CUDA)."""
    detector, sam = str(root / "yolo11n.pt"), str(next(root.glob("sam2.1_*.pt")))
    output = root / f"out_{impl}_{frames}"
    reset_gpu_peak(device)
    with Stopwatch(device) as watch:
        if impl == "ultralytics":
            from ultralytics.data.annotator import auto_annotate as ultralytics_auto_annotate
            from ultralytics.models.sam import SAM2Predictor

            # its SAM in SAM 2's precision on the device, as ours; its YOLO in float32, as ours
            with precision_in(SAM2Predictor, device, "inference", "postprocess"):
                ultralytics_auto_annotate(root / f"frames_{frames}", det_model=detector, sam_model=sam,
                                          output_dir=output, device=ultralytics_device(device), **common)  # fmt: skip
            written, tracks = len(list(output.glob("*.txt"))), 0
        else:
            from annotate import auto_annotate

            data = root / f"clip_{frames}.mp4" if impl == "tracking" else root / f"frames_{frames}"
            summary = auto_annotate(data, det_model=detector, sam_model=sam, output_dir=output, progress=False,
                                    keyframe_interval=keyframe_interval, device=str(device), **common)  # fmt: skip
            written = summary.videos[0]["frames"] if impl == "tracking" else summary.processed
            tracks = summary.videos[0]["tracks"] if impl == "tracking" else 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    return {"seconds": watch.seconds, "frames": written, "tracks": tracks, "rss_mb": rss, "gpu_mb": gpu_peak_mb(device)}


def worker_options(args: argparse.Namespace, device: torch.device) -> list[str]:
    """What every worker is started with: the device resolved once, so all runs share it."""
    return ["--device", str(device), "--max-det", str(args.max_det), "--keyframe-interval", str(args.keyframe_interval)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs=2, default=[16, 32], help="the two clip lengths")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--size", choices=["t", "s", "b", "l"], default="t", help="SAM 2.1 size")
    parser.add_argument("--max-det", type=int, default=3, help="boxes per detector call")
    parser.add_argument("--keyframe-interval", type=int, default=10)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N: one device for every run")
    parser.add_argument("--skip-ultralytics", action="store_true")
    parser.add_argument("--worker", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    common: dict[str, Any] = {"conf": 0.0, "max_det": args.max_det}
    if args.worker:
        impl, root, frames = args.worker
        print(json.dumps(worker(impl, Path(root), int(frames), device, common, args.keyframe_interval)))
        return

    import cv2
    from ultralytics import YOLO

    from annotate.previews import write_h264

    short, long = args.frames
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for count in (short, long):
            frames = synthetic_frames(count, args.width, args.height)
            write_h264(frames, root / f"clip_{count}.mp4", fps=25)
            (root / f"frames_{count}").mkdir()
            for i, frame in enumerate(frames):
                cv2.imwrite(str(root / f"frames_{count}" / f"{i:06d}.jpg"), frame[:, :, ::-1])
        YOLO("yolo11n.yaml").save(root / "yolo11n.pt")
        untrained_checkpoint(root, args.size)

        options = worker_options(args, device)
        runs = [
            (f"ours, tracking (detector every {args.keyframe_interval} frames)", "tracking", long),
            ("ours, detector on every frame (image path)", "images", long),
        ]
        if not args.skip_ultralytics:
            runs.append(("ultralytics auto_annotate, every frame", "ultralytics", long))
        runs.append((f"ours, tracking, {short} frames (memory check)", "tracking", short))
        rows = []
        for label, impl, count in runs:
            rows.append((label, count, run_isolated(__file__, [*options, "--worker", impl, str(root), str(count)])))
            print(label, rows[-1][2], file=sys.stderr, flush=True)

    report_gpu_peak([row.get("gpu_mb") for _, _, row in rows])
    print(
        f"\n{args.width}x{args.height} synthetic clip, YOLO11n + SAM 2.1 {args.size} (untrained), {args.max_det} boxes "
        f"per detector call, device {device} for every run, SAM in {precision_label(device)} and YOLO in float32 for "
        f"every run, hole filling (8 px, OpenCV) in tracking only, {os.cpu_count()} CPUs, torch {torch.__version__}\n"
    )
    print("| run | frames | tracks | seconds | frames/s | peak RSS (MB) | peak GPU (MB) |")
    print("|---|---|---|---|---|---|---|")
    for label, count, row in rows:
        if "error" in row:
            print(f"| {label} | {count} | | failed: {row['error']} | | | |")
        else:
            tracks, rate = row["tracks"] or "-", row["frames"] / row["seconds"]
            print(f"| {label} | {row['frames']} | {tracks} | {row['seconds']:.1f} | {rate:.2f} | "
                  f"{row['rss_mb']:.0f} | {format_mb(row['gpu_mb'])} |")  # fmt: skip


if __name__ == "__main__":
    main()
