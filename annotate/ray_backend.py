"""The Ray backend (`backend="ray"`): the same batches through the same steps, on a pool of Ray workers.

The run's batches become a Ray Data dataset; `map_batches` sends them to a pool of actors, each holding one loaded
detector and one SAM 2 model (a GPU each when the cluster has GPUs). A worker runs `BatchAnnotator.annotate`, exactly
the steps the local backend runs, with the same exporters, so both backends produce the same files.

A worker that dies is restarted and its batch retried: every file is written atomically and rewriting a batch gives
the same bytes, and the driver counts an image only when its batch comes back, so nothing is lost or counted twice.
Ray is optional (the package's ``[ray]`` extra) and imported only here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .batch import ImageOutcome
from .detectors import make_detector
from .images import ImageTask
from .settings import DetectorSettings, OutputSettings, VideoSettings
from .video_annotator import VideoReport
from .videos import VideoTask

INSTALL_HINT = (
    "backend='ray' needs Ray: pip install 'ray[data]>=2.40' (the package's [ray] extra: pip install '.[ray]' in its "
    "source folder)."
)
PROJECT_ROOT = Path(__file__).resolve().parents[1]


def import_ray() -> Any:
    """Ray and Ray Data, or ImportError saying how to install them."""
    try:
        import ray
        import ray.data
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return ray


def portable_sam(sam_model: Any) -> str:
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


class RayWorker:
    """A Ray Data actor: one detector and one SAM 2 model, loaded once, annotating whole batches of images or
    whole videos (a row holds one or the other)."""

    def __init__(
        self,
        det_model: Any,
        sam_model: str,
        detector: DetectorSettings,
        output: OutputSettings,
        video: VideoSettings,
        threads: int,
    ) -> None:
        import torch

        from sam2_model import ImagePredictor, load_model

        from .batch import BatchAnnotator
        from .video_annotator import VideoAnnotator

        torch.set_num_threads(threads)
        detector_model = make_detector(det_model, detector)
        torch.set_num_threads(threads)
        model = load_model(sam_model, detector.sam_device())
        self.annotator = BatchAnnotator(detector_model, ImagePredictor(model), output)
        self.videos = VideoAnnotator(detector_model, model, output, video)

    def __call__(self, rows: dict[str, Any]) -> dict[str, list[Any]]:
        sources, class_ids, failures, no_boxes, reports = [], [], [], [], []
        for payload in rows["batch"]:
            work = json.loads(payload)
            if isinstance(work, dict):  # a video
                reports.append(json.dumps(self.videos.annotate(VideoTask.from_dict(work)).to_dict()))
                sources.append(work["source"])
                class_ids.append("[]")
                failures.append("")
                no_boxes.append(False)
                continue
            for outcome in self.annotator.annotate([ImageTask.from_dict(task) for task in work]):
                sources.append(outcome.source)
                class_ids.append(json.dumps(list(outcome.class_ids)))
                failures.append(outcome.failure or "")
                no_boxes.append(outcome.no_boxes)
                reports.append("")
        return {"source": sources, "class_ids": class_ids, "failure": failures, "no_boxes": no_boxes, "report": reports}


class RayBackend:
    """Annotates batches on `workers` Ray actors of the cluster at `ray_address` (None: a local Ray for the run)."""

    def __init__(
        self,
        det_model: Any,
        sam_model: Any,
        detector: DetectorSettings,
        output: OutputSettings,
        workers: int,
        ray_address: str | None,
        video: VideoSettings | None = None,
    ) -> None:
        self.ray = import_ray()
        self.worker_kwargs = {
            "det_model": det_model,
            "sam_model": portable_sam(sam_model),
            "detector": detector,
            "output": output,
            "video": video or VideoSettings(),
        }
        self.workers = workers
        self.names = make_detector(det_model, detector).names  # the driver only reads the class names
        self._start(ray_address)

    def _start(self, ray_address: str | None) -> None:
        ray = self.ray
        if not ray.is_initialized():
            if ray_address is None:  # a local Ray for this run; workers import this project from its folder
                python_path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
                env_vars = {"PYTHONPATH": python_path, "YOLO_OFFLINE": os.environ.get("YOLO_OFFLINE", "")}
                ray.init(
                    num_cpus=os.cpu_count(),
                    include_dashboard=False,
                    log_to_driver=False,
                    logging_level=logging.WARNING,
                    runtime_env={"env_vars": env_vars},
                )
            else:
                ray.init(address=ray_address, log_to_driver=False, logging_level=logging.WARNING)
        ray.data.DataContext.get_current().enable_progress_bars = False  # auto_annotate shows its own
        logging.getLogger("ray.data").setLevel(logging.WARNING)

    def run(self, batches: Sequence[Sequence[ImageTask]]) -> Iterator[ImageOutcome]:
        """Outcomes of every image of `batches`, as the workers return their batches."""
        payloads = [json.dumps([task.to_dict() for task in batch]) for batch in batches]
        for row in self._map(payloads):
            failure = row["failure"] or None
            class_ids = () if failure else tuple(json.loads(row["class_ids"]))
            yield ImageOutcome(row["source"], class_ids=class_ids, failure=failure, no_boxes=bool(row["no_boxes"]))

    def run_videos(self, tasks: Sequence[VideoTask], progress: Callable[[int], None]) -> Iterator[VideoReport]:
        """Each video on one worker, videos spread over the pool; `progress(frames)` as each video comes back."""
        for row in self._map([json.dumps(task.to_dict()) for task in tasks]):
            report = VideoReport.from_dict(json.loads(row["report"]))
            progress(report.frames)
            yield report

    def _map(self, payloads: list[str]) -> Iterator[dict[str, Any]]:
        """The workers' rows for `payloads` (one JSON work item each), as they come back."""
        if not payloads:
            return
        ray = self.ray
        resources = ray.cluster_resources()
        gpus = 1 if resources.get("GPU", 0) >= 1 else 0
        threads = max(1, int(resources.get("CPU", 1)) // self.workers)
        items = [{"batch": payload} for payload in payloads]
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            RayWorker,
            fn_constructor_kwargs={**self.worker_kwargs, "threads": threads},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=self.workers),
            num_cpus=threads,
            num_gpus=gpus,
            # Ray Data restarts a dead actor and retries its batch by default (max_restarts=-1,
            # max_task_retries=-1): safe here, a batch run twice writes the same files
        )
        yield from dataset.iter_rows()
