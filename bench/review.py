"""Review benchmark (CPU): how long `open_dataset` takes on a 1,000-image dataset, and showing one item after it.

Two synthetic datasets of the same images (640x480 PNGs, three square instances each): an ultralytics YOLO-seg
dataset (data.yaml, images/ + labels/) and a COCO file with RLE masks. Opening reads the index only; "first item"
parses one item's instances and decodes their masks. Prints a Markdown table (median of `--repeat` runs).

    python bench/review.py                 # 1,000 images
    python bench/review.py --images 5000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from annotate.dataset import open_dataset
from sam2_model.rle import mask_to_rle

WIDTH, HEIGHT = 640, 480


def make_datasets(root: Path, count: int) -> tuple[Path, Path]:
    """(data.yaml, COCO .json) of `count` images sharing one PNG's bytes, three squares each."""
    ok, png = cv2.imencode(".png", np.full((HEIGHT, WIDTH, 3), 90, np.uint8))
    if not ok:
        raise RuntimeError("OpenCV could not encode a PNG: check the opencv-python install.")
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    images, annotations = [], []
    for n in range(count):
        name = f"{n:06d}.png"
        (root / "images" / name).write_bytes(png.tobytes())
        lines = []
        for k in range(3):
            x0, y0 = 40 + 150 * k, 60 + 20 * k
            box = np.array([[x0, y0], [x0 + 100, y0], [x0 + 100, y0 + 80], [x0, y0 + 80]]) / [WIDTH, HEIGHT]
            lines.append(f"{k} " + " ".join(f"{v:.6f}" for v in box.reshape(-1)))
            mask = np.zeros((HEIGHT, WIDTH), bool)
            mask[y0 : y0 + 80, x0 : x0 + 100] = True
            ids = {"id": len(annotations) + 1, "image_id": n + 1, "category_id": k + 1, "iscrowd": 0}
            annotations.append({**ids, "segmentation": mask_to_rle(mask), "area": 8000, "bbox": [x0, y0, 100, 80]})
        (root / "labels" / f"{n:06d}.txt").write_text("\n".join(lines) + "\n")
        images.append({"id": n + 1, "file_name": name, "width": WIDTH, "height": HEIGHT})
    names = {0: "a", 1: "b", 2: "c"}
    (root / "data.yaml").write_text(yaml.safe_dump({"train": "images", "val": "images", "names": names}))
    categories = [{"id": i + 1, "name": v} for i, v in names.items()]
    coco = root / "coco.json"
    coco.write_text(json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    return root / "data.yaml", coco


def timed(path: Path, repeat: int) -> tuple[float, float, int]:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        data_yaml, coco = make_datasets(Path(folder), args.images)
        rows = [("YOLO-seg (data.yaml)", *timed(data_yaml, args.repeat)), ("COCO (RLE)", *timed(coco, args.repeat))]
    print("| dataset | items | open (s) | first item: instances + masks (ms) |")
    print("|---|---:|---:|---:|")
    for name, opened, first, items in rows:
        print(f"| {name} | {items} | {opened:.3f} | {first * 1000:.1f} |")


if __name__ == "__main__":
    main()
