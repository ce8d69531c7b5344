"""Video tracking benchmark: ours against Meta's SAM2VideoPredictor and ultralytics' SAM2VideoPredictor.

Same untrained SAM 2.1 weights, same synthetic video, same box prompts on frame 0 (one object per box), same machine,
one run, the same device and precision for all three (bf16 autocast on CUDA), the same hole filling for ours and Meta's
(a column says how Meta's ran: its CUDA kernel, or OpenCV where its build lacks the kernel, which it would otherwise
skip; ultralytics has none). Timings are synchronised with the GPU; on CUDA a column gives the peak GPU memory. Each
measurement runs in its own process (`bench/isolated.py`), so its memory figure is clean. Prints a Markdown table:
frames per second of `propagate_in_video` (forward over the whole video), the growth of the process's
peak RSS from just before the video is opened to the end of tracking, and the tensors the tracking state holds at the
end (Meta's inference_state preloads every frame and keeps every frame's memories; our session decodes lazily and
keeps a bounded window).

    python bench/video.py                               # 1024-input tiny model, 8 and 24 frames, GPU or CPU
    python bench/video.py --frames 8 32 --device cuda --size b
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.isolated import (  # noqa: E402
    Stopwatch,
    format_mb,
    gpu_peak_mb,
    meta_hole_filling,
    precision,
    precision_label,
    report_gpu_peak,
    reset_gpu_peak,
    resolve_device,
    run_isolated,
    ultralytics_device,
    untrained_checkpoint,
)

META_CONFIGS = {"t": "sam2.1_hiera_t", "s": "sam2.1_hiera_s", "b": "sam2.1_hiera_b+", "l": "sam2.1_hiera_l"}
BOXES = [[40, 40, 200, 180], [300, 100, 460, 260], [500, 20, 620, 150]]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_video(folder: Path, frames: int) -> Path:
    """A JPEG folder (Meta's and our input) and the same frames as an mp4 (ultralytics' input)."""
    import av
    import cv2

    frame_dir = folder / f"frames_{frames}"
    frame_dir.mkdir()
    rng = np.random.default_rng(0)
    images = []
    for i in range(frames):
        image = rng.integers(0, 80, (360, 640, 3), dtype=np.uint8)
        for k, (x0, y0, x1, y1) in enumerate(BOXES):
            cv2.rectangle(image, (x0 + 2 * i, y0 + 10), (x1 - 10 + 2 * i, y1 - 10), (60 * k + 60, 200, 40 * k), -1)
        cv2.imwrite(str(frame_dir / f"{i:05d}.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])
        images.append(image[:, :, ::-1])
    with av.open(str(folder / f"video_{frames}.mp4"), mode="w") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
        container.mux(stream.encode())
    return frame_dir


def tensor_bytes(value: object, seen: set[tuple[int, torch.dtype]] | None = None) -> int:
    """Bytes of the distinct tensors reachable from a (nested) dict / list / tuple, e.g. Meta's inference_state."""
    seen = set() if seen is None else seen
    if torch.is_tensor(value):
        key = (value.untyped_storage().data_ptr(), value.dtype)
        if key in seen:
            return 0
        seen.add(key)
        return value.untyped_storage().nbytes()
    if isinstance(value, dict):
        return sum(tensor_bytes(v, seen) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(tensor_bytes(v, seen) for v in value)
    return 0


@dataclass
class Built:
    """One implementation on its device: `prepare()` opens the video and prompts the boxes on frame 0 and returns
    `track`, which tracks forward over the whole video and returns the number of frames; `state_mb()` afterwards."""

    predictor: Any  # holds the model (what tests check the device of)
    hole_filling: str
    prepare: Callable[[], Callable[[], int]]
    state_mb: Callable[[], float]


def build(impl: str, objects: int, frame_dir: str, checkpoint: str, size: str, device: torch.device) -> Built:
    """Build `impl` on `device`; ours and Meta's fill holes of up to 8 low-res pixels (both defaults), ultralytics
    has no hole filling."""
    boxes = BOXES[:objects]
    states: list[Any] = []
    if impl == "ours":
        from sam2_model import load_model
        from sam2_model.video_predictor import VideoPredictor

        ours = VideoPredictor(load_model(checkpoint, device=device))

        def prepare_ours() -> Callable[[], int]:
            states.append(ours.init_state(frame_dir))
            for obj_id, box in enumerate(boxes):
                ours.add_new_points_or_box(states[0], 0, obj_id, box=box)
            return lambda: sum(1 for _ in ours.propagate_in_video(states[0]))

        return Built(ours, f"{ours.fill_hole_area} px (OpenCV)", prepare_ours,
                     lambda: states[0].tensor_bytes() / 2**20)  # fmt: skip
    if impl == "meta":
        from sam2.build_sam import build_sam2_video_predictor

        meta = build_sam2_video_predictor(f"configs/sam2.1/{META_CONFIGS[size]}.yaml", ckpt_path=checkpoint,
                                          device=str(device))  # fmt: skip
        hole_filling = f"{meta.fill_hole_area} px ({meta_hole_filling(device)})"
        if device.type == "cpu":  # Meta mixes bf16 memories with fp32 weights, which the CPU refuses
            attention = meta.memory_attention.forward
            meta.memory_attention.forward = lambda *a, **k: attention(
                *[x.float() if torch.is_tensor(x) else x for x in a],
                **{n: v.float() if torch.is_tensor(v) else v for n, v in k.items()},
            )

        def prepare_meta() -> Callable[[], int]:
            states.append(meta.init_state(frame_dir))
            for obj_id, box in enumerate(boxes):
                meta.add_new_points_or_box(states[0], 0, obj_id, box=box)
            return lambda: sum(1 for _ in meta.propagate_in_video(states[0]))

        return Built(meta, hole_filling, prepare_meta, lambda: tensor_bytes(states[0]) / 2**20)
    from ultralytics.models.sam import SAM2VideoPredictor

    threads = torch.get_num_threads()
    video = str(Path(frame_dir).parent / f"video_{frame_dir.rsplit('_', 1)[1]}.mp4")
    overrides = {"conf": 0.25, "task": "segment", "mode": "predict", "imgsz": 1024, "model": checkpoint,
                 "save": False, "verbose": False, "device": ultralytics_device(device)}  # fmt: skip
    theirs = SAM2VideoPredictor(overrides=overrides)
    if theirs.model is None:  # built on first call otherwise: build it now, on the device, for the checks
        theirs.setup_model(verbose=False)
    torch.set_num_threads(threads)

    def track_ultralytics() -> int:
        count = sum(1 for _ in theirs(source=video, bboxes=boxes, stream=True))
        torch.set_num_threads(threads)
        return count

    # ultralytics keeps its state inside the predictor, not in a session object
    return Built(theirs, "none", lambda: track_ultralytics, lambda: float("nan"))


def worker(impl: str, objects: int, frame_dir: str, checkpoint: str, size: str, device: torch.device) -> dict[str, Any]:
    """Track `objects` boxes through the video with one implementation: FPS (synchronised), peak-RSS growth, peak
    GPU memory, on the device the parent resolved and in the shared precision."""
    threads = torch.get_num_threads()
    reset_gpu_peak(device)
    built = build(impl, objects, frame_dir, checkpoint, size, device)
    before = peak_rss_mb()
    with precision(device):
        track = built.prepare()
        with Stopwatch(device) as watch:
            count = track()
    torch.set_num_threads(threads)
    return {"frames": count, "fps": count / watch.seconds, "rss_growth_mb": peak_rss_mb() - before,
            "state_mb": built.state_mb(), "threads": torch.get_num_threads(), "gpu_mb": gpu_peak_mb(device),
            "hole_filling": built.hole_filling}  # fmt: skip


def worker_options(args: argparse.Namespace, device: torch.device) -> list[str]:
    """What every worker is started with: the device resolved once, so all implementations share it."""
    return ["--size", args.size, "--device", str(device)]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, nargs="+", default=[8, 24], help="video lengths to track")
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 3], choices=[1, 2, 3])
    parser.add_argument("--size", choices=list(META_CONFIGS), default="t")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N: one device for every predictor")
    parser.add_argument("--impls", nargs="+", default=["ours", "meta", "ultralytics"])
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    if args.worker:
        impl, objects, frame_dir, checkpoint = args.worker
        print(json.dumps(worker(impl, int(objects), frame_dir, checkpoint, args.size, device)))
        return

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = untrained_checkpoint(tmp, args.size)
        for frames in args.frames:
            frame_dir = make_video(Path(tmp), frames)
            for objects in args.objects:
                for impl in args.impls:
                    row = run_isolated(__file__, [*worker_options(args, device), "--worker", impl, str(objects),
                                                  str(frame_dir), str(checkpoint)])  # fmt: skip
                    rows.append({"impl": impl, "objects": objects, "length": frames, **row})
                    print(rows[-1], file=sys.stderr, flush=True)
    report_gpu_peak([row.get("gpu_mb") for row in rows])

    print(f"\nSAM 2.1 {args.size} (untrained), 640x360 video, box prompts on frame 0, device {device} for every "
          f"implementation, {precision_label(device)}, timings synchronised, {torch.get_num_threads()} CPU threads, "
          f"torch {torch.__version__}\n")  # fmt: skip
    gpu = device.type == "cuda"
    print("| implementation | objects | frames | FPS | peak RSS growth (MB) | tracking state tensors (MB) | threads "
          "| hole filling |" + (" peak GPU (MB) |" if gpu else ""))  # fmt: skip
    print("|---|---|---|---|---|---|---|---|" + ("---|" if gpu else ""))
    for row in rows:
        if "error" in row:
            print(f"| {row['impl']} | {row['objects']} | {row['length']} | failed: {row['error']} | | | | |"
                  + (" |" if gpu else ""))  # fmt: skip
        else:
            cells = f"{row['fps']:.3f} | {row['rss_growth_mb']:.0f} | {row['state_mb']:.0f} | {row['threads']}"
            cells += f" | {row['hole_filling']} |" + (f" {format_mb(row['gpu_mb'])} |" if gpu else "")
            print(f"| {row['impl']} | {row['objects']} | {row['length']} | {cells}")


if __name__ == "__main__":
    main()
