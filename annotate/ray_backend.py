"""The Ray backend (`backend="ray"`): the same batches through the same steps, on a pool of Ray workers.

The run's batches become a Ray Data dataset; `map_batches` sends them to a pool of actors, each holding one loaded
detector and one SAM 2 model on one device (a GPU each for a CUDA run, at most one actor per GPU: `actor_plan`). A
worker runs `BatchAnnotator.annotate`, exactly the steps the local backend runs, with the same exporters, so both
backends produce the same files.

A worker that dies is restarted and its batch retried: every file is written atomically and rewriting a batch gives
the same bytes, and the driver counts an image only when its batch comes back, so nothing is lost or counted twice.
Ray is optional (the package's ``[ray]`` extra) and imported only here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .batch import ImageOutcome
from .detectors import make_detector
from .images import ImageTask
from .settings import DetectorSettings, OutputSettings, VideoSettings, on_device
from .video_annotator import VideoReport
from .videos import VideoTask

INSTALL_HINT = (
    "backend='ray' needs Ray: pip install 'ray[data]>=2.40' (the package's [ray] extra: pip install '.[ray]' in its "
    "source folder)."
)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("annotate")


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


@dataclass(frozen=True)
class ActorPlan:
    """How the pool of Ray actors is sized: `workers` actors, each asking Ray for `num_gpus` GPUs (1 or 0) and
    `num_cpus` CPUs (also its torch threads), loading both models on `device` (ultralytics' device string: "cuda"
    is the GPU Ray gives the actor, which it sees as cuda:0); `note` says when the pool was made smaller than asked."""

    workers: int
    num_gpus: int
    num_cpus: int
    device: str
    note: str | None = None


def actor_plan(device: str, cluster: Mapping[str, float], workers: int) -> ActorPlan:
    """The actors for a run on `device` ("" auto, "cpu", "cuda", "cuda:N", "N", "mps") on a cluster with `cluster`
    resources (`ray.cluster_resources()`: "CPU", "GPU" counts) when `workers` actors are asked for.

    A GPU per actor only for a CUDA device, or for "auto" on a cluster with GPUs; a CPU run never holds a GPU (nor
    waits for one). A GPU run has at most one actor per GPU of the cluster: more would wait for a GPU forever (a
    Ray actor holds its GPU for its life), so the pool is capped and `note` says so. Inside an actor Ray makes its
    GPU the only one visible: any CUDA device becomes "cuda" there (a "cuda:1" would not exist in the actor, which
    would fail and be restarted forever). ValueError for a CUDA device on a cluster without GPUs.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}.")
    requested = DetectorSettings(device=device).sam_device()
    gpus, cpus = int(cluster.get("GPU", 0)), max(1, int(cluster.get("CPU", 1)))
    cuda = requested is not None and requested.startswith("cuda")
    if cuda and gpus < 1:
        raise ValueError(
            f"device={device!r} asks for a CUDA GPU, but the Ray cluster has no GPU (it has {cpus} CPUs): use "
            "device='cpu', or join a cluster whose nodes have GPUs (ray start --num-gpus N)."
        )
    if not (cuda or (requested is None and gpus >= 1)):
        return ActorPlan(workers, 0, max(1, cpus // workers), device)
    pool, note = min(workers, gpus), None
    if pool < workers:
        note = (
            f"Ray: {workers} workers were asked for, but the cluster has {gpus} GPU{'s' * (gpus != 1)}: running "
            f"{pool} worker{'s' * (pool != 1)}, one GPU each."
        )
    return ActorPlan(pool, 1, max(1, cpus // pool), "cuda", note)


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
        model = load_model(sam_model, detector.sam_device())  # "cuda": the GPU Ray gave this actor, its cuda:0
        detector_model = make_detector(det_model, on_device(detector, model.device))  # on SAM 2's device
        torch.set_num_threads(threads)
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
        self.names = make_detector(det_model, detector).names  # the driver only reads the class names
        self._start(ray_address)
        self.plan = actor_plan(detector.device, self.ray.cluster_resources(), workers)
        self.worker_kwargs["detector"] = replace(detector, device=self.plan.device)
        self.notes = [self.plan.note] if self.plan.note else []
        for note in self.notes:
            logger.warning(note)

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
                    # Ray starts its workers at nice 15, to keep a cluster's driver responsive; here the workers do
                    # all of the run's work, and beside any busy process they starved (a worker got ~4% of a core
                    # next to two busy loops, the run took many times longer): they run at the caller's priority.
                    _system_config={"worker_niceness": 0},
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
        ray, plan = self.ray, self.plan
        items = [{"batch": payload} for payload in payloads]
        # no more actors than work items: an idle actor would only hold a GPU (and Ray warns about it)
        workers = min(plan.workers, len(items))
        dataset = ray.data.from_items(items, override_num_blocks=len(items)).map_batches(
            RayWorker,
            fn_constructor_kwargs={**self.worker_kwargs, "threads": plan.num_cpus},
            batch_size=1,
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=plan.num_cpus,
            num_gpus=plan.num_gpus,
            # Ray Data restarts a dead actor and retries its batch by default (max_restarts=-1,
            # max_task_retries=-1): safe here, a batch run twice writes the same files
        )
        yield from dataset.iter_rows()
