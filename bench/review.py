"""Review benchmark (CPU, SAM 2.1 tiny): what a person waits for while reviewing a dataset.

1. `open_dataset` on a 1,000-image dataset (640x480 PNGs, three square instances each): an ultralytics YOLO-seg
   dataset (data.yaml, images/ + labels/) and a COCO file with RLE masks. Opening reads the index only; "first item"
   parses one item's instances and decodes their masks.
2. Moving to the next item with SAM 2 ready for clicks (its image read, its embedding set, its masks decoded): cold
   (the image encoder runs then) and prefetched (a thread set the next image on a second `ImagePredictor` while the
   person worked on this one; the features wait in the model's shared `EmbeddingCache`, as the app's Review tab
   keeps them).
3. One refine click (`Dataset.refine_instance`, the embedding set) and one click adding an instance
   (`Dataset.add_instance_with_sam2`).
4. Re-propagating one corrected track over 10 frames (`Dataset.correct_track`, forward=10) on an 11-frame 640x480
   video of one moving square.

Untrained weights (random, the architecture's real cost; no download). Prints Markdown tables (medians of
`--repeat` runs; the re-propagation once per `--propagate-repeat`).

    python bench/review.py                 # 1,000 images
    python bench/review.py --images 5000 --repeat 5
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotate.dataset import Dataset, open_dataset
from sam2_model import ImagePredictor, Sam2Model, VideoPredictor, load_model
from sam2_model.rle import mask_to_rle

WIDTH, HEIGHT = 640, 480
DISTINCT = 8  # the first images have pixels of their own (the embedding cache keys on pixels); the rest share one PNG
VIDEO_FRAMES = 11


def square_mask(x0: int, y0: int, width: int = 100, height: int = 80) -> np.ndarray:
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[y0 : y0 + height, x0 : x0 + width] = True
    return mask


def make_datasets(root: Path, count: int) -> tuple[Path, Path]:
    """(data.yaml, COCO .json) of `count` images, three squares each."""
    png = encode_png(np.full((HEIGHT, WIDTH, 3), 90, np.uint8))
    rng = np.random.default_rng(0)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    images: list[dict[str, object]] = []
    annotations: list[dict[str, object]] = []
    for n in range(count):
        name = f"{n:06d}.png"
        own = n < DISTINCT
        pixels = rng.integers(60, 120, (HEIGHT, WIDTH, 3), dtype=np.uint8) if own else None
        lines = []
        for k in range(3):
            x0, y0 = 40 + 150 * k, 60 + 20 * k
            box = np.array([[x0, y0], [x0 + 100, y0], [x0 + 100, y0 + 80], [x0, y0 + 80]]) / [WIDTH, HEIGHT]
            lines.append(f"{k} " + " ".join(f"{v:.6f}" for v in box.reshape(-1)))
            if pixels is not None:
                pixels[y0 : y0 + 80, x0 : x0 + 100] = (200, 60 + 50 * k, 40)
            ids = {"id": len(annotations) + 1, "image_id": n + 1, "category_id": k + 1, "iscrowd": 0}
            annotations.append({**ids, "segmentation": mask_to_rle(square_mask(x0, y0)), "area": 8000,
                                "bbox": [x0, y0, 100, 80]})  # fmt: skip
        (root / "images" / name).write_bytes(png if pixels is None else encode_png(pixels))
        (root / "labels" / f"{n:06d}.txt").write_text("\n".join(lines) + "\n")
        images.append({"id": n + 1, "file_name": name, "width": WIDTH, "height": HEIGHT})
    names = {0: "a", 1: "b", 2: "c"}
    (root / "data.yaml").write_text(yaml.safe_dump({"train": "images", "val": "images", "names": names}))
    categories = [{"id": i + 1, "name": v} for i, v in names.items()]
    coco = root / "coco.json"
    coco.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return root / "data.yaml", coco


def make_video_dataset(root: Path) -> Path:
    """A COCO file of one 11-frame video (frames in ``clip/``): a square moving right, track 1 on every frame."""
    (root / "clip").mkdir(parents=True)
    images, annotations = [], []
    for n in range(VIDEO_FRAMES):
        x0 = 100 + 20 * n
        frame = np.full((HEIGHT, WIDTH, 3), 70, np.uint8)
        frame[150:230, x0 : x0 + 100] = (220, 40, 40)
        (root / "clip" / f"{n:06d}.png").write_bytes(encode_png(frame))
        images.append({"id": n + 1, "file_name": f"clip/{n:06d}.png", "width": WIDTH, "height": HEIGHT,
                       "video_id": 1, "frame_id": n})  # fmt: skip
        annotations.append({"id": n + 1, "image_id": n + 1, "category_id": 1, "iscrowd": 0, "video_id": 1,
                            "track_id": 1, "segmentation": mask_to_rle(square_mask(x0, 150)), "area": 8000,
                            "bbox": [x0, 150, 100, 80]})  # fmt: skip
    path = root / "video.json"
    videos = [{"id": 1, "name": "clip", "width": WIDTH, "height": HEIGHT, "length": VIDEO_FRAMES}]
    path.write_text(json.dumps({"videos": videos, "images": images, "annotations": annotations,
                                "categories": [{"id": 1, "name": "square"}]}))  # fmt: skip
    return path


def encode_png(pixels: np.ndarray) -> bytes:
    ok, png = cv2.imencode(".png", pixels[:, :, ::-1])
    if not ok:
        raise RuntimeError("OpenCV could not encode a PNG: check the opencv-python install.")
    return bytes(png.tobytes())


def timed_open(path: Path, repeat: int) -> tuple[float, float, int]:
    """(median seconds to open, median seconds to show the first item, items)."""
    opens, firsts, items = [], [], 0
    for _ in range(repeat):
        start = time.perf_counter()
        dataset = open_dataset(path)
        opened = time.perf_counter()
        first = dataset.keys[0]
        sum(annotation.area for annotation in dataset.instances(first))
        firsts.append(time.perf_counter() - opened)
        opens.append(opened - start)
        items = len(dataset)
    return statistics.median(opens), statistics.median(firsts), items


def show(dataset: Dataset, key: str, predictor: ImagePredictor) -> None:
    """What moving to `key` costs: its image read, its embedding set (encoded or from the cache), its masks."""
    predictor.set_image(dataset.image(key))
    sum(annotation.area for annotation in dataset.instances(key))


def prefetch(dataset: Dataset, key: str, model: Sam2Model) -> threading.Thread:
    """Encode `key`'s image in a thread on a predictor of its own; its features land in `model`'s embedding cache."""
    thread = threading.Thread(target=lambda: ImagePredictor(model).set_image(dataset.image(key)), daemon=True)
    thread.start()
    return thread


def seconds(action: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds, all threads) of one call: on a shared machine the wall time grows
    with the other processes' load, the CPU time much less."""
    start, cpu = time.perf_counter(), time.process_time()
    action()
    return time.perf_counter() - start, time.process_time() - cpu


def median(runs: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def warm_up(model: Sam2Model) -> None:
    """One encode and one decode with a mask prompt off the clock: PyTorch's first calls allocate and pick kernels."""
    predictor = ImagePredictor(model)
    predictor.set_image(np.full((HEIGHT, WIDTH, 3), 30, np.uint8))
    logits = np.zeros((1, 256, 256), np.float32)
    predictor.predict(np.array([[10.0, 10.0]]), np.array([1]), mask_input=logits, multimask_output=False)


def timed_review(data_yaml: Path, model: Sam2Model, repeat: int) -> list[tuple[str, float, float, str]]:
    """(step, median wall seconds, median CPU seconds, what it did) for the next item cold and prefetched, a refine
    click and an add click."""
    dataset = open_dataset(data_yaml)
    keys = dataset.keys[:DISTINCT]
    if len(keys) < 2 * repeat:
        raise ValueError(f"--repeat {repeat} needs {2 * repeat} distinct images: use --images >= {DISTINCT} and "
                         f"--repeat <= {DISTINCT // 2}.")  # fmt: skip
    predictor = ImagePredictor(model)
    cache = model.embedding_cache
    cold: list[tuple[float, float]] = []
    warm: list[tuple[float, float]] = []
    for n in range(repeat):  # items 0, 2, 4: cold; 1, 3, 5: prefetched while the person is on the item before
        cold_key, next_key = keys[2 * n], keys[2 * n + 1]
        misses = cache.misses
        cold.append(seconds(partial(show, dataset, cold_key, predictor)))
        if cache.misses != misses + 1:
            raise RuntimeError("The cold item was found in the embedding cache: the bench's images must differ.")
        prefetch(dataset, next_key, model).join()  # the person took longer than the encoder
        hits = cache.hits
        warm.append(seconds(partial(show, dataset, next_key, predictor)))
        if cache.hits != hits + 1:
            raise RuntimeError("The prefetched item missed the embedding cache.")
    key = keys[2 * repeat - 1]  # the last prefetched item: its embedding is set
    refine: list[tuple[float, float]] = []
    add: list[tuple[float, float]] = []
    for _ in range(repeat):
        refine.append(seconds(lambda: dataset.refine_instance(key, 0, predictor, [[90, 100]], [1])))
        dataset.undo()
        add.append(seconds(lambda: dataset.add_instance_with_sam2(key, predictor, 0, [[600, 400]], [1])))
        dataset.undo()
    return [
        ("next item, not prefetched", *median(cold), "read the PNG, encode (SAM 2), decode 3 masks"),
        ("next item, prefetched", *median(warm), "read the PNG, embedding from the cache, decode 3 masks"),
        ("refine click", *median(refine), "stored mask as mask_input + 1 click, embedding set"),
        ("add an instance (1 click)", *median(add), "add_instance_with_sam2, embedding set"),
    ]


def timed_propagation(video_json: Path, model: Sam2Model, repeat: int) -> tuple[str, float, float, str]:
    """(step, median wall seconds, median CPU seconds, what it did) for one track corrected on frame 0 and
    re-propagated 10 frames forward."""
    dataset = open_dataset(video_json)
    video = dataset.videos[0]
    runs: list[tuple[float, float]] = []
    for _ in range(repeat):
        mask = square_mask(95, 145, 110, 90)  # the person's corrected mask, a little larger than the stored one
        correct = partial(dataset.correct_track, video.key, 1, 0, mask, VideoPredictor(model), VIDEO_FRAMES - 1)
        runs.append(seconds(correct))
        dataset.undo()
    frames = VIDEO_FRAMES - 1
    return f"re-propagate 1 track, {frames} frames", *median(runs), "correct_track(forward=10), 1 object"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--propagate-repeat", type=int, default=1)
    parser.add_argument("--size", default="t", choices=["t", "s", "b", "l"], help="SAM 2.1 size (default tiny)")
    args = parser.parse_args()
    threads = torch.get_num_threads()
    model = load_model(f"sam2.1_{args.size}.pt", device="cpu", untrained=True)
    torch.set_num_threads(threads)  # ultralytics' device selection may leave one thread on a small machine
    warm_up(model)
    with tempfile.TemporaryDirectory() as folder:
        data_yaml, coco = make_datasets(Path(folder) / "photos", args.images)
        opened = [("YOLO-seg (data.yaml)", *timed_open(data_yaml, args.repeat)),
                  ("COCO (RLE)", *timed_open(coco, args.repeat))]  # fmt: skip
        steps = timed_review(data_yaml, model, args.repeat)
        steps.append(timed_propagation(make_video_dataset(Path(folder) / "video"), model, args.propagate_repeat))
    print(f"CPU, {threads} torch threads, SAM 2.1 {args.size} (untrained), 1024x1024 model input, 640x480 images\n")
    print("| dataset | items | open (s) | first item: instances + masks (ms) |")
    print("|---|---:|---:|---:|")
    for name, seconds_open, first, items in opened:
        print(f"| {name} | {items} | {seconds_open:.3f} | {first * 1000:.1f} |")
    print("\n| step | wall (s) | CPU (s, all threads) | what it does |")
    print("|---|---:|---:|---|")
    for step, wall, cpu, what in steps:
        print(f"| {step} | {wall:.3f} | {cpu:.3f} | {what} |")


if __name__ == "__main__":
    main()
