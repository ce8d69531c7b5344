"""auto_annotate on Ray (`backend="ray"`): the same batches through the same steps, on a pool of Ray workers.

The run's batches become a Ray Data dataset; `map_batches` sends them to a pool of actors, each holding one loaded
detector and one SAM 2 model (a GPU each when the cluster has GPUs). A worker runs `annotate_batch`, exactly what the
local backend runs, and writes with the same atomic writers, so both backends produce the same files.

A worker that dies is restarted and its batch retried: label writes are atomic and rewriting a batch gives the same
bytes, and the driver counts an image only when its batch comes back, so nothing is lost or counted twice.
Ray is optional (requirements-ray.txt) and imported only here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from .images import ImageTask

INSTALL_HINT = "backend='ray' needs Ray: pip install -r requirements-ray.txt (or pip install 'ray[data]')."
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def _import_ray():
    try:
        import ray
        import ray.data
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return ray


def _portable_sam(sam_model: Any) -> str:
    """What a worker can load: a name or a checkpoint path (a model loaded in this process cannot travel)."""
    from sam2_model import Sam2Model

    if isinstance(sam_model, Sam2Model):
        if not Path(sam_model.source).is_file():
            raise ValueError(
                "backend='ray' loads SAM 2 in every worker: pass sam_model as a name or a checkpoint path, not a model "
                f"built in this process ({sam_model.source})."
            )
        return sam_model.source
    return str(sam_model)


class _Annotator:
    """A Ray Data actor: one detector and one SAM 2 model, loaded once, annotating whole batches."""

    def __init__(self, det_model: Any, sam_model: str, detector_settings: dict, options: dict, threads: int) -> None:
        import torch

        from sam2_model import ImagePredictor, load_model

        from .detectors import make_detector
        from .pipeline import WriteOptions, _sam_device

        torch.set_num_threads(threads)
        self.detector = make_detector(det_model, **detector_settings)
        torch.set_num_threads(threads)
        self.predictor = ImagePredictor(load_model(sam_model, _sam_device(detector_settings["device"])))
        self.options = WriteOptions(**{**options, "output": Path(options["output"])})

    def __call__(self, rows: dict[str, Any]) -> dict[str, list]:
        from .pipeline import annotate_batch

        sources, class_ids, failures = [], [], []
        for payload in rows["batch"]:
            tasks = [ImageTask(**{k: Path(v) for k, v in task.items()}) for task in json.loads(payload)]
            for outcome in annotate_batch(tasks, self.detector, self.predictor, self.options):
                sources.append(outcome.source)
                class_ids.append(json.dumps(list(outcome.class_ids)))
                failures.append(outcome.failure or "")
        return {"source": sources, "class_ids": class_ids, "failure": failures}


def ray_components(
    det_model: Any, sam_model: Any, detector_settings: dict, options, workers: int, ray_address: str | None
):
    """(class names, run_batches) for `auto_annotate`: run_batches sends batches to Ray and yields their outcomes."""
    ray = _import_ray()
    import logging

    from .detectors import make_detector
    from .pipeline import ImageOutcome

    sam_source = _portable_sam(sam_model)
    names = make_detector(det_model, **detector_settings).names  # the driver only reads the class names
    if not ray.is_initialized():
        if ray_address is None:  # a local Ray for this run; workers import this project from its folder
            python_path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
            env_vars = {"PYTHONPATH": python_path, "YOLO_OFFLINE": os.environ.get("YOLO_OFFLINE", "")}
            ray.init(
                num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING,
                runtime_env={"env_vars": env_vars},
            )  # fmt: skip
        else:
            ray.init(address=ray_address, log_to_driver=False, logging_level=logging.WARNING)
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False  # auto_annotate shows its own progress bar
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    resources = ray.cluster_resources()
    gpus = 1 if resources.get("GPU", 0) >= 1 else 0
    threads = max(1, int(resources.get("CPU", 1)) // workers)
    option_values = {**asdict(options), "output": str(options.output)}

    def run_batches(batches: list[list[ImageTask]]) -> Iterator[ImageOutcome]:
        if not batches:
            return
        payloads = [
            {"batch": json.dumps([{k: str(v) for k, v in asdict(task).items()} for task in batch])} for batch in batches
        ]
        dataset = ray.data.from_items(payloads, override_num_blocks=len(payloads)).map_batches(
            _Annotator,
            fn_constructor_kwargs={
                "det_model": det_model, "sam_model": sam_source, "detector_settings": detector_settings,
                "options": option_values, "threads": threads,
            },
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=threads,
            num_gpus=gpus,
            # Ray Data restarts a dead actor and retries its batch by default (max_restarts=-1,
            # max_task_retries=-1): safe here, a batch run twice writes the same files
        )  # fmt: skip
        for row in dataset.iter_rows():
            failure = row["failure"] or None
            class_ids = () if failure else tuple(json.loads(row["class_ids"]))
            yield ImageOutcome(row["source"], class_ids=class_ids, failure=failure)

    return names, run_batches
