"""`auto_annotate`: a detector's boxes become SAM 2 prompts; the masks become a YOLO-seg (and COCO) dataset.

A compatible superset of `ultralytics.data.annotator.auto_annotate`: the same arguments with the same meaning, plus
output formats, resume, failure isolation and speed. A run is three steps:

    plan (find the images, name each one in the dataset, skip those an earlier run finished)
    -> run the batches on a backend (local threads, or Ray workers), writing every format per image
    -> finish (each format completes the dataset: data.yaml, the COCO file; the summary)
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv
from tqdm import tqdm

from sam2_model import Sam2Model

from .batch import ImageOutcome
from .detectors import names_dict
from .exporters import formats as known_formats
from .images import ImageTask, find_images, plan_tasks
from .run_record import RunRecord
from .settings import DetectorSettings, OutputSettings
from .summary import SUMMARY_FILE, AnnotationSummary
from .writers import link_file

_DEFAULTS = DetectorSettings()
FORMATS = known_formats()


def auto_annotate(
    data: str | Path,
    det_model: str | Path | Any | Callable[[np.ndarray], sv.Detections] = "yolo11x.pt",
    sam_model: str | Path | Sam2Model = "sam2.1_b.pt",
    device: str = _DEFAULTS.device,
    conf: float = _DEFAULTS.conf,
    iou: float = _DEFAULTS.iou,
    imgsz: int = _DEFAULTS.imgsz,
    max_det: int = _DEFAULTS.max_det,
    classes: Sequence[int] | None = None,
    output_dir: str | Path | None = None,
    *,
    formats: Sequence[str] = ("yolo",),
    overwrite: bool = False,
    batch_size: int = 8,
    workers: int = 4,
    progress: bool | Callable[[int, int], None] = True,
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
            detections per image, and class ids to keep (None keeps all); see `DetectorSettings`.
        output_dir: the dataset folder; default ``<data's parent>/<data's name>_auto_annotate_labels``.
        formats: any of `annotate.exporters.formats()`: "yolo" labels are always written; add "coco" for
            annotations.json, "masks" for one PNG per instance.
        overwrite: redo images that an earlier run finished (default: resume, skipping them).
        batch_size: images per detector call and in flight.
        workers: threads decoding images ahead of the models (local), or Ray workers (ray).
        progress: show a tqdm progress bar with images per second; or a function called with (images done, images
            to do) after each image (a web page's progress bar, say) instead.
        min_mask_area: masks smaller than this many pixels fall back to the detector's box.
        simplify: polygon simplification tolerance in pixels (0 keeps every contour vertex).
        class_names: names by class id, overriding the detector's.
        backend: "local" (this process) or "ray" (a pool of `workers` Ray actors, one model pair each; same files).
        ray_address: the Ray cluster to join ("auto", "ray://host:10001"); None starts a local Ray for the run.

    Returns:
        An `AnnotationSummary` (also written to ``summary.json`` in the output folder).

    Output folder: ``images/`` (links to the source images, keeping their relative paths), ``labels/`` (one YOLO-seg
    ``.txt`` per image: one line per detected instance, an empty file when nothing was found), ``data.yaml``,
    ``annotations.json`` (COCO instances with RLE masks) and ``masks/`` when asked for, and ``.auto_annotate/``
    (the run's record of finished images, for resuming).
    """
    started = time.perf_counter()
    if batch_size < 1 or workers < 1:
        raise ValueError(f"batch_size and workers must be >= 1, got {batch_size} and {workers}.")
    if backend not in ("local", "ray"):
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}.")
    detector = DetectorSettings(conf, iou, imgsz, max_det, None if classes is None else tuple(classes), device)
    data = Path(data)
    output = OutputSettings(_output_folder(data, output_dir), tuple(formats), min_mask_area, simplify)
    plan = plan_run(data, output, overwrite)

    runner: Any
    if backend == "ray":
        from .ray_backend import RayBackend

        runner = RayBackend(det_model, sam_model, detector, output, workers, ray_address)
    else:
        from .local_backend import LocalBackend

        runner = LocalBackend(det_model, sam_model, detector, output, workers)
    names = {**runner.names, **names_dict(class_names)}

    summary = AnnotationSummary(
        images=len(plan.tasks), skipped=plan.skipped, input_dir=str(data), output_dir=str(output.output)
    )
    instances: Counter[str] = Counter()
    batches = [plan.todo[i : i + batch_size] for i in range(0, len(plan.todo), batch_size)]
    report = progress if callable(progress) else None
    with tqdm(
        total=len(plan.todo), disable=report is not None or not progress, unit="img", desc="auto_annotate"
    ) as bar:
        for done, outcome in enumerate(runner.run(batches), start=1):
            _count(outcome, summary, instances, names)
            bar.update()
            if report is not None:
                report(done, len(plan.todo))
    summary.instances = dict(sorted(instances.items()))
    finish(plan, output, names, summary)
    summary.seconds = time.perf_counter() - started
    summary.write(output.output / SUMMARY_FILE)
    return summary


@dataclass(frozen=True)
class AnnotationPlan:
    """What a run will do: every image of the folder (`tasks`, dataset order) and those still to annotate."""

    tasks: list[ImageTask]
    todo: list[ImageTask]

    @property
    def skipped(self) -> int:
        return len(self.tasks) - len(self.todo)


def _output_folder(data: Path, output_dir: str | Path | None) -> Path:
    return Path(output_dir) if output_dir else data.parent / f"{data.name}_auto_annotate_labels"


def plan_run(data: Path, output: OutputSettings, overwrite: bool) -> AnnotationPlan:
    """Find the images under `data` and decide which to annotate: all with `overwrite`, else those that the run
    record and every requested format do not already have."""
    if not data.exists():
        raise FileNotFoundError(f"Image folder not found: {data}. Pass the folder that holds your images.")
    if not data.is_dir():
        raise ValueError(f"{data} is a file; auto_annotate takes a folder of images.")
    folder = output.output
    # absolute(), not resolve(): the dataset's image links resolve to the inputs, and must still be left out
    images = [p for p in find_images(data) if not p.absolute().is_relative_to(folder.absolute())]
    if not images:
        raise ValueError(f"No images found in {data} (searched its subfolders for .jpg, .png, .webp, .bmp, .tif...).")
    tasks = plan_tasks(data, images, folder)
    record, exporters = RunRecord(folder), output.exporters()
    todo = []
    for task in tasks:
        if not overwrite and record.is_done(task.key) and all(e.is_done(task.key) for e in exporters):
            link_file(task.source, task.image_link)  # the dataset folder may have been moved or pruned
        else:
            record.forget(task.key)  # not done until every format has it again
            todo.append(task)
    return AnnotationPlan(tasks, todo)


def finish(plan: AnnotationPlan, output: OutputSettings, names: dict[int, str], summary: AnnotationSummary) -> None:
    """Let every format complete the dataset for all images written so far (this run's and earlier runs')."""
    keys = [task.key for task in plan.tasks]
    for exporter in output.exporters():
        path = exporter.finish(keys, names)
        if path is not None:
            summary.files[exporter.format] = str(path)
    summary.failures.sort()


def _count(outcome: ImageOutcome, summary: AnnotationSummary, instances: Counter[str], names: dict[int, str]) -> None:
    if outcome.failure is not None:
        summary.failed += 1
        summary.failures.append((outcome.source, outcome.failure))
    else:
        instances.update(names.get(c, f"class_{c}") for c in outcome.class_ids)
        summary.labelled += bool(outcome.class_ids)
        summary.no_detections += not outcome.class_ids
