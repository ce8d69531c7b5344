"""`auto_annotate`: a detector's boxes become SAM 2 prompts; the masks become a YOLO-seg (and COCO) dataset.

A compatible superset of `ultralytics.data.annotator.auto_annotate`: the same arguments with the same meaning, plus
output formats, resume, failure isolation and speed. The pipeline per batch of images:

    reader threads (decode, EXIF) -> detector (one batched call) -> SAM 2 (one call per image, all its boxes, on one
    image embedding) -> writer thread (mask upsampling, polygons, atomic label/COCO files)

Decoding and writing overlap the models; only a bounded number of images is in flight, so memory does not grow with
the folder.
"""

from __future__ import annotations

import functools
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv
import torch
from tqdm import tqdm

from sam2_model import ImagePredictor, Sam2Model, load_model
from sam2_model.formats import mask_to_coco_annotation
from sam2_model.transforms import low_res_to_mask

from .detectors import YoloDetector, _names_dict, make_detector
from .formats import instance_polygon, polygon_to_mask, polygon_to_yolo_line
from .images import ImageTask, find_images, plan_tasks, read_image
from .summary import AnnotationSummary
from .writers import (
    SUMMARY_FILE,
    assemble_coco,
    coco_part_path,
    link_image,
    write_atomic,
    write_coco_part,
    write_data_yaml,
)

FORMATS = ("yolo", "coco")


def auto_annotate(
    data: str | Path,
    det_model: str | Path | Any | Callable[[np.ndarray], sv.Detections] = "yolo11x.pt",
    sam_model: str | Path | Sam2Model = "sam2.1_b.pt",
    device: str = "",
    conf: float = 0.25,
    iou: float = 0.45,
    imgsz: int = 640,
    max_det: int = 300,
    classes: list[int] | None = None,
    output_dir: str | Path | None = None,
    *,
    formats: Sequence[str] = ("yolo",),
    overwrite: bool = False,
    batch_size: int = 8,
    workers: int = 4,
    progress: bool = True,
    min_mask_area: int = 0,
    simplify: float = 0.0,
    class_names: Mapping[int, str] | Sequence[str] | None = None,
    backend: str = "local",
    ray_address: str | None = None,
) -> AnnotationSummary:
    """Annotate every image under `data` with a detector and SAM 2; write a dataset ultralytics trains on.

    Args (the first ten as in `ultralytics.data.annotator.auto_annotate`):
        data: folder of images (searched recursively; other files are ignored).
        det_model: YOLO name or path (downloaded by ultralytics), a loaded `YOLO`, or a callable taking an HxWx3
            uint8 RGB image and returning `supervision.Detections` (xyxy pixels, class_id, confidence); class names
            come from its `names` attribute when it has one.
        sam_model: anything `sam2_model.load_model` accepts, or a loaded `Sam2Model` (share the app's).
        device: "" (auto), "cpu", "cuda", "cuda:N", "N" or "mps", for both models.
        conf, iou, imgsz, max_det, classes: the detector's confidence threshold, NMS IoU, input size, maximum
            detections per image, and class ids to keep (None keeps all).
        output_dir: the dataset folder; default ``<data's parent>/<data's name>_auto_annotate_labels``.
        formats: "yolo" labels are always written (they mark an image as done); add "coco" for annotations.json.
        overwrite: redo images that an earlier run finished (default: resume, skipping them).
        batch_size: images per detector call and in flight.
        workers: threads decoding images ahead of the models (local), or Ray workers (ray).
        progress: show a tqdm progress bar with images per second.
        min_mask_area: masks smaller than this many pixels fall back to the detector's box.
        simplify: polygon simplification tolerance in pixels (0 keeps every contour vertex).
        class_names: names by class id, overriding the detector's.
        backend: "local" (this process) or "ray" (a pool of `workers` Ray actors, one model pair each; same files).
        ray_address: the Ray cluster to join ("auto", "ray://host:10001"); None starts a local Ray for the run.

    Returns:
        An `AnnotationSummary` (also written to ``summary.json`` in the output folder).

    Output folder: ``images/`` (links to the source images, keeping their relative paths), ``labels/`` (one YOLO-seg
    ``.txt`` per image: one line per detected instance, an empty file when nothing was found), ``data.yaml``, and
    ``annotations.json`` (COCO instances with RLE masks) when asked for.
    """
    started = time.perf_counter()
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"Unknown output format(s) {sorted(unknown)}: choose from {FORMATS}.")
    if batch_size < 1 or workers < 1:
        raise ValueError(f"batch_size and workers must be >= 1, got {batch_size} and {workers}.")
    data = Path(data)
    if not data.exists():
        raise FileNotFoundError(f"Image folder not found: {data}. Pass the folder that holds your images.")
    if not data.is_dir():
        raise ValueError(f"{data} is a file; auto_annotate takes a folder of images.")
    output = Path(output_dir) if output_dir else data.parent / f"{data.name}_auto_annotate_labels"
    # absolute(), not resolve(): the dataset's image links resolve to the inputs, and must still be left out
    images = [p for p in find_images(data) if not p.absolute().is_relative_to(output.absolute())]
    if not images:
        raise ValueError(f"No images found in {data} (searched its subfolders for .jpg, .png, .webp, .bmp, .tif...).")

    want_coco = "coco" in formats
    tasks = plan_tasks(data, images, output)
    options = WriteOptions(output, min_mask_area, simplify, want_coco)
    detector_settings = {"device": device, "conf": conf, "iou": iou, "imgsz": imgsz, "max_det": max_det,
                         "classes": classes}  # fmt: skip
    if backend == "ray":
        from .ray_backend import ray_components

        names, run_batches = ray_components(det_model, sam_model, detector_settings, options, workers, ray_address)
    elif backend == "local":
        detector = make_detector(det_model, **detector_settings)
        predictor = ImagePredictor(load_model(sam_model, _sam_device(device)))
        names = detector.names

        def run_batches(batches: list[list[ImageTask]]) -> Iterator[ImageOutcome]:
            return _run_local(batches, detector, predictor, options, workers)
    else:
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}.")
    names = {**names, **_names_dict(class_names)}
    summary = AnnotationSummary(images=len(tasks), output_dir=str(output), labels_dir=str(output / "labels"))
    output.mkdir(parents=True, exist_ok=True)
    summary.data_yaml = str(write_data_yaml(output, names))

    todo = []
    for task in tasks:
        finished = task.label.exists() and (not want_coco or coco_part_path(output, task).exists())
        if finished and not overwrite:
            summary.skipped += 1
            link_image(task)  # an earlier run may have stopped between the label and the link
        else:
            todo.append(task)

    instances: Counter[str] = Counter()
    batches = [todo[i : i + batch_size] for i in range(0, len(todo), batch_size)]
    with tqdm(total=len(todo), disable=not progress, unit="img", desc="auto_annotate") as bar:
        for outcome in run_batches(batches):
            if outcome.failure is not None:
                summary.failed += 1
                summary.failures.append((outcome.source, outcome.failure))
            else:
                instances.update(names.get(c, f"class_{c}") for c in outcome.class_ids)
                summary.labelled += bool(outcome.class_ids)
                summary.no_detections += not outcome.class_ids
            bar.update()

    if want_coco:
        summary.coco_json = str(assemble_coco(output, tasks, names))
    summary.failures.sort()
    summary.instances = dict(sorted(instances.items()))
    summary.seconds = time.perf_counter() - started
    summary.write(output / SUMMARY_FILE)
    return summary


@dataclass(frozen=True)
class WriteOptions:
    """How masks become files: the dataset folder, box fallback below `min_mask_area`, polygon tolerance, COCO."""

    output: Path
    min_mask_area: int = 0
    simplify: float = 0.0
    want_coco: bool = False


@dataclass(frozen=True)
class ImageOutcome:
    """What became of one image: the class ids written (empty: no detections), or why it failed."""

    source: str
    class_ids: tuple[int, ...] = ()
    failure: str | None = None


def annotate_batch(
    tasks: list[ImageTask], detector, predictor: ImagePredictor, options: WriteOptions
) -> list[ImageOutcome]:
    """One batch, start to end: read, one detector call, one SAM 2 call per image, atomic writes.

    The unit of work of every backend: the local one runs these same stages overlapped in threads, Ray workers run
    whole batches. The same batch through the same steps gives the same files, whichever backend ran it.
    """
    outcomes, readable = [], []
    for task in tasks:
        image = _read_one(task)
        if isinstance(image, Exception):
            outcomes.append(ImageOutcome(str(task.source), failure=str(image)))
        else:
            readable.append((task, image))
    outcomes += _detect_segment_write(readable, detector, predictor, options, write=_write_outcome)
    return outcomes


def _detect_segment_write(readable, detector, predictor: ImagePredictor, options: WriteOptions, write) -> Iterator:
    """For decoded images of one batch: one detector call, then per image one SAM 2 call and `write(...)`.

    Yields a failed `ImageOutcome`, or what `write` returns (an outcome, or a Future of one when writing runs
    in a background thread).
    """
    for (task, image), detections in zip(readable, _detect(detector, readable), strict=True):
        if isinstance(detections, str):
            yield ImageOutcome(str(task.source), failure=detections)
            continue
        try:
            low_res = _segment(predictor, image, detections)
        except Exception as error:  # one bad image must not stop the folder
            yield ImageOutcome(str(task.source), failure=f"SAM 2 failed: {type(error).__name__}: {error}")
            continue
        yield write(task, image.shape[:2], detections, low_res, predictor.mask_threshold, options)


def _run_local(
    batches, detector, predictor: ImagePredictor, options: WriteOptions, workers: int
) -> Iterator[ImageOutcome]:
    """`annotate_batch`'s stages overlapped: reader threads decode ahead, a writer thread writes behind."""
    batch_size = max((len(b) for b in batches), default=1)
    todo = [task for batch in batches for task in batch]
    writing: deque[Future] = deque()
    with (
        ThreadPoolExecutor(workers, thread_name_prefix="annotate-read") as readers,
        ThreadPoolExecutor(1, thread_name_prefix="annotate-write") as writer,
    ):
        decoded = _read_ahead(readers, todo, depth=2 * batch_size)
        for batch in batches:
            readable = []
            for task, image in (next(decoded) for _ in batch):
                if isinstance(image, Exception):
                    yield ImageOutcome(str(task.source), failure=str(image))
                else:
                    readable.append((task, image))
            write = functools.partial(writer.submit, _write_outcome)
            for result in _detect_segment_write(readable, detector, predictor, options, write=write):
                if isinstance(result, ImageOutcome):
                    yield result
                    continue
                writing.append(result)
                while len(writing) > 2 * batch_size:
                    yield writing.popleft().result()
        while writing:
            yield writing.popleft().result()


def _write_outcome(task, image_hw, detections, low_res, threshold, options: WriteOptions) -> ImageOutcome:
    try:
        class_ids = _write_image(
            options.output, task, image_hw, detections, low_res, threshold, options.min_mask_area, options.simplify,
            options.want_coco,
        )  # fmt: skip
    except Exception as error:  # disk full, permissions: this image fails, the run goes on
        return ImageOutcome(str(task.source), failure=f"writing failed: {type(error).__name__}: {error}")
    return ImageOutcome(str(task.source), class_ids=tuple(class_ids))


def _sam_device(device: str) -> str | None:
    """ultralytics' device strings ("", "0", "0,1", "cpu", "cuda:1", "mps") -> ours."""
    device = str(device).strip()
    if not device:
        return None
    if device.replace(",", "").isdigit():
        return f"cuda:{device.split(',')[0]}"
    return device


def _read_one(task: ImageTask) -> np.ndarray | Exception:
    try:
        return read_image(task.source)
    except (ValueError, OSError) as error:
        return error if isinstance(error, ValueError) else ValueError(f"{task.source}: {error}")


def _read_ahead(pool: ThreadPoolExecutor, tasks: list[ImageTask], depth: int) -> Iterator[tuple[ImageTask, Any]]:
    """Decode images in `pool`, at most `depth` ahead of the consumer (so memory does not grow with the folder)."""
    queue: deque[tuple[ImageTask, Future]] = deque()
    for task in tasks:
        queue.append((task, pool.submit(_read_one, task)))
        if len(queue) >= depth:
            head, job = queue.popleft()
            yield head, job.result()
    while queue:
        head, job = queue.popleft()
        yield head, job.result()


def _detect(detector, readable: list[tuple[ImageTask, np.ndarray]]) -> list[sv.Detections | str]:
    """Detections per image, or the reason the detector failed on that image."""
    if not readable:
        return []
    if isinstance(detector, YoloDetector):
        try:
            return detector([image for _, image in readable])
        except Exception:  # a batch failed: retry image by image below, to isolate the bad one
            pass
    results: list[sv.Detections | str] = []
    for _, image in readable:
        try:
            results.append(detector([image])[0])
        except Exception as error:
            results.append(f"detector failed: {type(error).__name__}: {error}")
    return results


def _segment(predictor: ImagePredictor, image: np.ndarray, detections: sv.Detections) -> torch.Tensor | None:
    """All boxes of one image in one SAM 2 call on one embedding -> Nx256x256 low-res logits (None if no boxes)."""
    if len(detections) == 0:
        return None
    predictor.set_image(image)
    low_res, _ = predictor.predict_low_res(box=detections.xyxy.astype(np.float32), multimask_output=False)
    return low_res[:, 0].cpu()


def _write_image(
    output: Path,
    task: ImageTask,
    image_hw: tuple[int, int],
    detections: sv.Detections,
    low_res: torch.Tensor | None,
    threshold: float,
    min_mask_area: int,
    simplify: float,
    want_coco: bool,
) -> list[int]:
    """Write one image's label (and COCO part), then its dataset link; return the class ids written."""
    height, width = image_hw
    lines, annotations, class_ids = [], [], []
    for index in range(len(detections)):
        mask = None if low_res is None else low_res_to_mask(low_res[index], (height, width), threshold)
        polygon, from_mask = instance_polygon(mask, detections.xyxy[index], min_mask_area, simplify)
        class_id = int(detections.class_id[index])
        lines.append(polygon_to_yolo_line(class_id, polygon, (width, height)))
        class_ids.append(class_id)
        if want_coco:
            region = mask if from_mask else polygon_to_mask(polygon, (width, height))
            annotation = mask_to_coco_annotation(region, class_id)
            if detections.confidence is not None:
                annotation["score"] = round(float(detections.confidence[index]), 5)
            annotations.append(annotation)
    if want_coco:  # before the label: a label file means the image is done, COCO part included
        write_coco_part(output, task, width, height, annotations)
    write_atomic(task.label, "".join(f"{line}\n" for line in lines))
    link_image(task)
    return class_ids
