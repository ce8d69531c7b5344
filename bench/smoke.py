"""Smoke runs of the backend on one device: does each path run there and give well-formed output (shapes, dtypes,
finite logits, the device it was asked for)? Untrained SAM 2.1 weights, so the masks themselves mean nothing.

One check per call, in this process; prints one JSON line ({"check", "device", "detail", "gpu_mb"}) and exits 0, or
raises (a traceback and a non-zero exit). `bench/gpu_check.py` runs each in a process of its own.

    python bench/smoke.py image --device cuda
    python bench/smoke.py video --device cpu --quick     # 256-pixel network input, 3 frames: the same code paths
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.isolated import gpu_peak_mb, module_devices, report_gpu_peak, reset_gpu_peak, resolve_device
from sam2_model import AutomaticMaskGenerator, ImagePredictor, Sam2Model, VideoPredictor
from sam2_model.checkpoints import ModelSpec

EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples"
VIDEO_BOXES = [[230, 190, 300, 260], [134, 158, 244, 243], [20, 20, 120, 140]]  # xyxy on video.mp4's 480x320
SCENE_CLICK = np.array([[352, 294]])  # the ball in scene.jpg (640x426), Nx2 (x, y) pixels
POSITIVE = np.array([1])


class SmokeFailure(RuntimeError):
    """A path ran but its output is malformed (wrong shape, dtype or device, non-finite values)."""


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeFailure(message)


def untrained_model(device: torch.device, size: str, quick: bool) -> Sam2Model:
    """Untrained SAM 2.1 weights of `size` on `device`; `quick`: at a 256-pixel input (~16x cheaper per frame)."""
    torch.manual_seed(0)
    spec = ModelSpec(size, "2.1")
    net: Any = spec.build_untrained()  # ultralytics' SAM2Model (untyped)
    if quick:
        net.set_imgsz((256, 256))
    return Sam2Model(net, spec, device, f"untrained-{size}")


def scene() -> np.ndarray:
    """HxWx3 uint8 RGB, 426x640."""
    return np.array(Image.open(EXAMPLES / "scene.jpg").convert("RGB"))


def check_logits(logits: torch.Tensor | np.ndarray, shape: tuple[int, ...], what: str) -> None:
    values = torch.as_tensor(logits)
    expect(tuple(values.shape) == shape, f"{what}: shape {tuple(values.shape)}, expected {shape}")
    expect(bool(torch.isfinite(values.float()).all()), f"{what}: non-finite values")


def image(model: Sam2Model, quick: bool) -> str:
    """A click (3 candidates) and two boxes on the example scene."""
    picture = scene()
    h, w = picture.shape[:2]
    predictor = ImagePredictor(model)
    predictor.set_image(picture)
    logits, scores, low_res = predictor.predict(point_coords=SCENE_CLICK, point_labels=POSITIVE, return_logits=True)
    check_logits(logits, (3, h, w), "click logits")
    check_logits(scores, (3,), "click scores")
    side = model.image_size // 4  # the decoder's low-res output: 256 at the usual 1024 input
    check_logits(low_res, (3, side, side), "click low-res logits")
    masks, _, _ = predictor.predict(box=np.array([[96, 224, 206, 309], [457, 99, 567, 209]]), multimask_output=False)
    expect(masks.shape == (2, 1, h, w), f"box masks: shape {masks.shape}, expected (2, 1, {h}, {w})")
    expect(set(np.unique(masks).tolist()) <= {0, 1}, "box masks: values other than 0 and 1")
    return f"click -> 3 candidates {w}x{h}, 2 boxes -> 2 masks"


def mask_input(model: Sam2Model, quick: bool) -> str:
    """A click refined with its own low-res mask (image), and an object given by a mask (video)."""
    predictor = ImagePredictor(model)
    predictor.set_image(scene())
    _, scores, low_res = predictor.predict(point_coords=SCENE_CLICK, point_labels=POSITIVE)
    best = low_res[int(np.argmax(scores))][None]
    refined, _, _ = predictor.predict(point_coords=SCENE_CLICK, point_labels=POSITIVE, mask_input=best,
                                      multimask_output=False, return_logits=True)  # fmt: skip
    check_logits(refined, (1, 426, 640), "refined logits")
    video = VideoPredictor(model)
    state = video.init_state(str(EXAMPLES / "video.mp4"))
    mask = np.zeros((320, 480), bool)
    mask[190:260, 230:300] = True
    video.add_new_mask(state, 0, 1, mask)
    frames = [(t, ids, logits) for t, ids, logits in video.propagate_in_video(state, max_frame_num_to_track=1)]
    expect([t for t, _, _ in frames] == [0, 1], f"video frames {[t for t, _, _ in frames]}, expected [0, 1]")
    for _, ids, logits in frames:
        expect(list(ids) == [1], f"object ids {ids}")
        check_logits(logits, (1, 1, 320, 480), "video mask logits")
    return "image: click + its mask refined; video: an object from a mask, tracked 2 frames"


def video(model: Sam2Model, quick: bool) -> str:
    """Three objects by box on frame 0 of the example video, tracked forward (3 frames when quick, else all 24)."""
    predictor = VideoPredictor(model)
    state = predictor.init_state(str(EXAMPLES / "video.mp4"))
    for obj_id, box in enumerate(VIDEO_BOXES, start=1):
        predictor.add_new_points_or_box(state, 0, obj_id, box=box)
    frames = 0
    # Meta's contract: the start frame and then max_frame_num_to_track more
    for frame_idx, ids, logits in predictor.propagate_in_video(state, max_frame_num_to_track=2 if quick else None):
        expect(list(ids) == [1, 2, 3], f"frame {frame_idx}: object ids {ids}")
        check_logits(logits, (3, 1, 320, 480), f"frame {frame_idx} logits")
        expect(logits.device.type == model.device.type, f"logits on {logits.device}, model on {model.device}")
        frames += 1
    expect(frames == (3 if quick else 24), f"{frames} frames tracked")
    return f"3 objects tracked over {frames} frames"


def everything(model: Sam2Model, quick: bool) -> str:
    """Segment everything on the example scene (points_per_side 4 when quick, else 32)."""
    side = 4 if quick else 32
    records = AutomaticMaskGenerator(model, points_per_side=side, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                                     output_mode="coco_rle").generate(scene())  # fmt: skip
    expect(len(records) > 0, "no mask at all with every quality filter off")
    expect(all(r["segmentation"]["size"] == [426, 640] for r in records), "a mask of the wrong size")
    return f"{len(records)} masks from {side}x{side} points"


CHECKS: dict[str, Callable[[Sam2Model, bool], str]] = {
    "image": image,
    "video": video,
    "mask_input": mask_input,
    "everything": everything,
}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("check", choices=list(CHECKS))
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--size", choices=["t", "s", "b", "l"], default="t", help="SAM 2.1 size (untrained)")
    parser.add_argument("--quick", action="store_true", help="256-pixel network input, fewer frames and points")
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    reset_gpu_peak(device)
    model = untrained_model(device, args.size, args.quick)
    expect(module_devices(model) == {device}, f"the network is not all on {device}")
    detail = CHECKS[args.check](model, args.quick)
    peak = gpu_peak_mb(device)
    report_gpu_peak([peak])
    print(json.dumps({"check": args.check, "device": str(device), "detail": detail, "gpu_mb": peak}))


if __name__ == "__main__":
    main()
