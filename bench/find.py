"""Find benchmark (CPU by default, untrained weights): the time from *Find* to the found objects' masks, for 1, 5 and
20 found objects, ours (the detector, then SAM 2 on every box in one batched prompt call: `app.find_tasks`) against
the same detector followed by one SAM 2 call per box.

As in the app, the image's SAM 2 embedding is computed when the image is opened, before Find: both sides start from
it. The detector is an untrained YOLOE-11s (from its yaml, seeded) with random text embeddings, run at confidence 0
with `max_det` = the number of objects, so that it finds exactly that many on the example scene; SAM 2.1 tiny is
untrained at its real input size (1024). Prints a Markdown table: medians of `--repeat` runs, and how many mask
pixels the two ways disagree on.

    python bench/find.py
    python bench/find.py --objects 1 5 20 --repeat 5 --device cuda
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app import examples_dir
from app.find_tasks import FindRequest, detect_boxes, segment_boxes
from sam2_model import ImagePredictor, Sam2Model
from sam2_model.checkpoints import ModelSpec
from sam2_model.devices import select_device


def untrained_models(device: torch.device) -> tuple[Sam2Model, object, torch.Tensor]:
    """(SAM 2.1 tiny, YOLOE-11s, 1x1x512 text embeddings), untrained and seeded."""
    from ultralytics import YOLOE

    threads = torch.get_num_threads()
    torch.manual_seed(0)
    spec = ModelSpec("t", "2.1")
    sam = Sam2Model(spec.build_untrained(), spec, device, "untrained")
    torch.manual_seed(1)  # YOLOE weights that give boxes (see tests/app/test_find.py)
    yoloe = YOLOE("yoloe-11s-seg.yaml")
    torch.set_num_threads(threads)  # ultralytics may lower it for the whole process
    embeddings = torch.from_numpy(np.random.default_rng(0).normal(size=(1, 1, 512)).astype(np.float32))
    return sam, yoloe, embeddings


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def find_batched(sam: Sam2Model, yoloe: object, image: np.ndarray, request: FindRequest) -> np.ndarray:
    xyxy, _, _ = detect_boxes(yoloe, image, request, sam.device)
    masks, _ = segment_boxes(sam, image, None, xyxy)
    return masks


def find_per_box(sam: Sam2Model, yoloe: object, image: np.ndarray, request: FindRequest) -> np.ndarray:
    xyxy, _, _ = detect_boxes(yoloe, image, request, sam.device)
    predictor = ImagePredictor(sam)
    predictor.set_image(image)  # the cached embedding
    masks = [predictor.predict(box=box, multimask_output=False)[0][0] > 0 for box in xyxy]
    return np.stack(masks) if masks else np.zeros((0, *image.shape[:2]), bool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--objects", type=int, nargs="+", default=[1, 5, 20], help="found objects per Find")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per row (after one warm-up)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto")
    args = parser.parse_args()
    device = select_device(args.device)
    sam, yoloe, embeddings = untrained_models(device)
    image = np.array(Image.open(examples_dir() / "scene.jpg").convert("RGB"))
    ImagePredictor(sam).set_image(image)  # the upload's embedding, in the model's cache for both ways
    print(f"Find on scene.jpg ({image.shape[1]}x{image.shape[0]}), SAM 2.1 tiny and YOLOE-11s untrained, {device}, "
          f"{torch.get_num_threads()} threads; median of {args.repeat} runs\n")  # fmt: skip
    print("| found objects | detector alone (s) | ours: batched boxes (s) | one SAM 2 call per box (s) | speed-up "
          "| mask pixels that differ |")  # fmt: skip
    print("|---:|---:|---:|---:|---:|---:|")
    for count in args.objects:
        request = FindRequest(phrases=("thing",), embeddings=embeddings, conf=0.0, max_det=count)
        times: dict[str, list[float]] = {"detect": [], "batched": [], "per_box": []}
        results = {}
        for run in range(args.repeat + 1):  # the first run warms up
            for name, way in (
                ("detect", lambda r=request: detect_boxes(yoloe, image, r, device)),
                ("batched", lambda r=request: find_batched(sam, yoloe, image, r)),
                ("per_box", lambda r=request: find_per_box(sam, yoloe, image, r)),
            ):
                synchronize(device)
                start = time.perf_counter()
                results[name] = way()
                synchronize(device)
                if run:
                    times[name].append(time.perf_counter() - start)
        found = len(results["batched"])
        if found != count:
            print(f"(the detector found {found}, not {count})", file=sys.stderr)
        differ = float(np.mean(results["batched"] != results["per_box"])) if found else 0.0
        detect, batched, per_box = (statistics.median(times[k]) for k in ("detect", "batched", "per_box"))
        print(f"| {found} | {detect:.2f} | {batched:.2f} | {per_box:.2f} | {per_box / batched:.2f}x | {differ:.1e} |")


if __name__ == "__main__":
    main()
