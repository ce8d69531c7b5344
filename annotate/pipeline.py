"""`auto_annotate`: a detector's boxes become SAM 2 prompts; the masks become a YOLO-seg (and COCO) dataset.

A compatible superset of `ultralytics.data.annotator.auto_annotate`: the same arguments with the same meaning, plus
videos, output formats, resume, failure isolation and speed. A run is three steps:

    plan (find the images and videos, name each one in the dataset, skip those an earlier run finished)
    -> run on a backend (local threads, or Ray workers): image batches, then whole videos, writing every format
    -> finish (the validation split; each format completes the dataset: data.yaml with train.txt/val.txt, the COCO
       file, the VIS file, the MOT sequences' labels; the summary)
"""

from __future__ import annotations

import logging
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
from sam2_model.auto import AUTO

from .backend import Backend
from .batch import ImageOutcome
from .box_sources import BoxSource, is_box_source, open_box_source
from .dataset_classes import names_kept_by_review
from .detectors import names_dict
from .exporters import Exporter
from .exporters import formats as known_formats
from .exporters.base import DatasetIndex, VideoEntry, class_name
from .images import ImageTask, find_images, plan_tasks
from .mot import finish_mot, gt_path
from .run_record import REVIEW_FILE, ReviewRecord, RunRecord
from .settings import DetectorSettings, OutputSettings, VideoSettings
from .splits import VAL_FRACTION, held_out
from .summary import SUMMARY_FILE, AnnotationSummary
from .video_annotator import VideoReport, read_video_record
from .video_outputs import finish_vis
from .video_stream import is_video, video_length
from .videos import FRAME_SUFFIX, VideoTask, find_videos, frame_number, plan_videos
from .writers import link_file

logger = logging.getLogger("annotate")

_DEFAULTS = DetectorSettings()
_VIDEO = VideoSettings()
FORMATS = known_formats()


def auto_annotate(
    data: str | Path,
    det_model: str | Path | Any | Callable[[np.ndarray], sv.Detections] = AUTO,
    sam_model: str | Path | Sam2Model = AUTO,
    device: str = _DEFAULTS.device,
    conf: float = _DEFAULTS.conf,
    iou: float = _DEFAULTS.iou,
    imgsz: int = _DEFAULTS.imgsz,
    max_det: int = _DEFAULTS.max_det,
    classes: Sequence[int] | Sequence[str] | None = None,
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
    keyframe_interval: int = _VIDEO.keyframe_interval,
    frame_stride: int = _VIDEO.frame_stride,
    match_iou: float = _VIDEO.match_iou,
    reprompt_iou: float | None = _VIDEO.reprompt_iou,
    end_after: int = _VIDEO.end_after,
    preview: bool = _VIDEO.preview,
    max_tracks: int | None = _VIDEO.max_tracks,
    text_embeddings: str | Path | None = None,
    val_fraction: float = VAL_FRACTION,
) -> AnnotationSummary:
    """Annotate every image and video under `data` with a detector and SAM 2; write a dataset ultralytics trains on.

    Args (the first ten as in `ultralytics.data.annotator.auto_annotate`):
        data: a folder of images and/or videos (searched recursively; other files are ignored), or one video file.
            Videos: .mp4, .mov, .webm, .mkv, .avi, .m4v.
        det_model: YOLO name or path (downloaded by ultralytics), a loaded `YOLO`, or a callable taking an HxWx3
            uint8 RGB image and returning `supervision.Detections` (xyxy pixels, class_id, confidence); class names
            come from its `names` attribute when it has one. "auto" (the default): yolo11n.pt on a CPU, yolo11x.pt
            on a CUDA GPU (`annotate.settings.AUTO_DETECTORS`). Or boxes you already have, to become masks: a
            folder of YOLO detection labels (``<image name>.txt``; a video's keyframes ``<video>/<frame>.txt``) or
            a COCO .json with boxes, matched to the images by name; images without boxes are skipped and
            reported (`summary.no_boxes`), labels naming no image too (`summary.unmatched_boxes`); see
            `annotate.box_sources`.
        sam_model: anything `sam2_model.load_model` accepts, or a loaded `Sam2Model` (share the app's). "auto" (the
            default): SAM 2.1 tiny on a CPU, base_plus on a CUDA GPU, as in the app (`sam2_model.auto`).
        device: "" (auto), "cpu", "cuda", "cuda:N", "N" or "mps", for both models.
        conf, iou, imgsz, max_det, classes: the detector's confidence threshold, NMS IoU, input size, maximum
            detections per image, and the classes to keep (None keeps all); see `DetectorSettings`. `classes` may
            be class names: a YOLO keeps the classes of those names; an open-vocabulary detector (YOLOE, e.g.
            "yoloe-11s-seg.pt", or YOLO-World) is prompted with them, whatever they are (["person", "forklift"]).
        output_dir: the dataset folder; default ``<data's parent>/<data's name>_auto_annotate_labels``, or
            ``./<data's name>_auto_annotate_labels`` (the current directory) when the data lies inside a Python
            package, e.g. the shipped examples (`default_output`).
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
        keyframe_interval, frame_stride, match_iou, reprompt_iou, end_after, preview: how videos are annotated
            (defaults 10, 1, 0.5, None, 2, False); see `VideoSettings`. In short: the detector runs on every
            `keyframe_interval`-th used frame and SAM 2 tracks in between, with one id per object for the whole
            video; every `frame_stride`-th frame is used and written.
        max_tracks: track at most this many objects per video (None: no limit); each costs SAM 2 work on every
            frame it lives. Detections past it are not tracked, and each video's summary counts them
            (`untracked_detections`).
        text_embeddings: for class names on an open-vocabulary detector where its text encoder cannot be loaded
            (offline): an .npz saved by `annotate.detectors.save_text_embeddings` on a machine with internet.
        val_fraction: the share of images and videos held out for validation (``val.txt``), in [0, 1); a video is
            held out whole, never split. At least one is held out, and at least one kept, when there are two or
            more; with a single image or video, or 0, validation is the training set. Deterministic (a seeded
            hash of the names; see `annotate.splits`).

    Returns:
        An `AnnotationSummary` (also written to ``summary.json`` in the output folder).

    Output folder: ``images/`` (links to the source images, keeping their relative paths; a folder named ``images``
    becomes ``images_``), ``labels/`` (one YOLO-seg ``.txt`` per image: one line per detected instance, an empty
    file when nothing was found), ``data.yaml`` with ``train.txt`` and ``val.txt``, ``annotations.json`` (COCO
    instances with RLE masks) and ``masks/`` when asked for, and ``.auto_annotate/`` (the run's record of finished
    images, for resuming). A video adds its frames as images (``images/<video>/<frame number>.jpg``, labelled like
    any image, with its track in COCO), a MOTChallenge ground-truth sequence ``mot/<sequence>/`` (``gt/gt.txt``,
    ``gt/labels.txt``, ``seqinfo.ini``, ``img1/``), tracker results ``tracks/<sequence>.txt``, its tracks in
    ``vis.json`` (YouTube-VIS) and, with `preview`, ``previews/<video>.mp4`` (H.264, masks and track ids drawn).
    The format table of docs/datasets.md says what each file holds.
    """
    started = time.perf_counter()
    if batch_size < 1 or workers < 1:
        raise ValueError(f"batch_size and workers must be >= 1, got {batch_size} and {workers}.")
    if backend not in ("local", "ray"):
        raise ValueError(f"backend must be 'local' or 'ray', got {backend!r}.")
    wanted: Any = None if classes is None else tuple(classes)  # ids or names: DetectorSettings checks which
    embeddings = None if text_embeddings is None else str(text_embeddings)
    detector = DetectorSettings(conf, iou, imgsz, max_det, wanted, device, embeddings)
    video = VideoSettings(frame_stride, keyframe_interval, match_iou, reprompt_iou, end_after, preview, max_tracks)
    data = Path(data)
    if is_box_source(det_model):  # boxes you already have: opened once, here, to report names that match nothing
        det_model = open_box_source(det_model)
    folder = Path(output_dir) if output_dir else default_output(data)
    output = OutputSettings(folder, tuple(formats), min_mask_area, simplify, val_fraction)
    plan = plan_run(data, output, overwrite, video)

    runner: Backend
    if backend == "ray":
        from .ray_backend import RayBackend

        runner = RayBackend(det_model, sam_model, detector, output, workers, ray_address, video)
    else:
        from .local_backend import LocalBackend

        runner = LocalBackend(det_model, sam_model, detector, output, workers, video)
    names = {**names_kept_by_review(folder), **runner.names, **names_dict(class_names)}  # classes added in review

    summary = AnnotationSummary(
        images=len(plan.tasks),
        skipped=plan.skipped + len(plan.videos) - len(plan.videos_todo),
        input_dir=str(data if data.is_dir() else data.parent),
        output_dir=str(output.output),
        notes=list(runner.notes),
    )
    if isinstance(det_model, BoxSource):
        summary.unmatched_boxes = det_model.unmatched([t.name for t in plan.tasks], [v.name for v in plan.videos])
    instances: Counter[str] = Counter()
    batches = [plan.todo[i : i + batch_size] for i in range(0, len(plan.todo), batch_size)]
    total = len(plan.todo) + sum(plan.frames_todo)  # one unit per image and per video frame
    report = progress if callable(progress) else None
    # one unit per image and per video frame, as the summary counts them
    desc = "auto_annotate (images and frames)" if plan.videos_todo else "auto_annotate"
    with tqdm(total=total, disable=report is not None or not progress, unit="img", desc=desc) as bar:
        done = 0

        def advance(units: int) -> None:
            nonlocal done
            done += units
            bar.update(units)
            if report is not None:
                report(done, total)

        for outcome in runner.run(batches):
            _count(outcome, summary, instances, names)
            advance(1)
        for video_report in runner.run_videos(plan.videos_todo, advance):
            _count_video(video_report, summary, instances, names)
        if done < total:  # failed videos, or videos shorter than their headers said, still complete the bar
            advance(total - done)
    summary.instances = dict(sorted(instances.items()))
    finish(plan, output, names, summary)
    summary.seconds = time.perf_counter() - started
    for line in summary.box_lines():
        logger.warning(line.strip())
    summary.write(output.output / SUMMARY_FILE)
    return summary


@dataclass(frozen=True)
class AnnotationPlan:
    """What a run will do: every image of the folder (`tasks`, dataset order) and those still to annotate; every
    video (`videos`), those still to annotate and how many frames each will use (for the progress bar)."""

    tasks: list[ImageTask]
    todo: list[ImageTask]
    videos: list[VideoTask]
    videos_todo: list[VideoTask]
    frames_todo: list[int]

    @property
    def skipped(self) -> int:
        return len(self.tasks) - len(self.todo)


def default_output(data: Path) -> Path:
    """Where a run writes when no `output_dir` is given: ``<data's name>_auto_annotate_labels`` beside the data (as
    ultralytics does), or in the current directory when the data lies inside a Python package (an installed one,
    or this project's own, e.g. `app.examples_dir()`): a package's folder is no place for outputs."""
    name = f"{data.name}_auto_annotate_labels"
    return Path.cwd() / name if inside_a_package(data) else data.parent / name


def inside_a_package(path: Path) -> bool:
    """Whether `path` lies in site-packages (any of this interpreter's) or in this project's package folders."""
    import site
    import sysconfig

    roots = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    roots.update(getattr(site, "getsitepackages", list)())
    roots.add(site.getusersitepackages())
    project = Path(__file__).resolve().parents[1]
    folders = [Path(root).resolve() for root in roots] + [project / name for name in ("annotate", "app", "sam2_model")]
    resolved = path.resolve()
    return any(resolved.is_relative_to(folder) for folder in folders)


def plan_run(data: Path, output: OutputSettings, overwrite: bool, video: VideoSettings = _VIDEO) -> AnnotationPlan:
    """Find the images and videos under `data` (or the one video `data` is) and decide which to annotate: all with
    `overwrite`, else those that the run record and every requested format do not already have."""
    if not data.exists():
        raise FileNotFoundError(f"Input not found: {data}. Pass a folder of images and/or videos, or a video file.")
    folder = output.output
    if data.is_file():
        if not is_video(data):
            raise ValueError(
                f"{data} is a file; auto_annotate takes a folder of images and/or videos, or one video file "
                "(.mp4, .mov, .webm, .mkv, .avi, .m4v)."
            )
        images, videos = [], [data]
    else:
        # absolute(), not resolve(): the dataset's image links resolve to the inputs, and must still be left out
        inside = folder.absolute()
        images = [p for p in find_images(data) if not p.absolute().is_relative_to(inside)]
        videos = [p for p in find_videos(data) if not p.absolute().is_relative_to(inside)]
    if not images and not videos:
        raise ValueError(
            f"No images or videos found in {data} (searched its subfolders for .jpg, .png, .webp, .bmp, .tif..., "
            ".mp4, .mov, .webm, .mkv, .avi)."
        )
    tasks = plan_tasks(data, images, folder) if images else []
    record, exporters = RunRecord(folder), output.exporters()
    reviewed = ReviewRecord(folder / REVIEW_FILE).protected()  # a person's work: never redone, even with overwrite
    todo = []
    for task in tasks:
        done = record.is_done(task.key) and all(e.is_done(task.key) for e in exporters)
        if task.key in reviewed or (not overwrite and done):
            link_file(task.source, task.image_link)  # the dataset folder may have been moved or pruned
        else:
            record.forget(task.key)  # not done until every format has it again
            todo.append(task)
    video_tasks = plan_videos(data, videos, (t.key for t in tasks))
    videos_todo = [t for t in video_tasks if not _video_done(folder, t, exporters, overwrite, reviewed)]
    return AnnotationPlan(tasks, todo, video_tasks, videos_todo, [_used_frames(t, video) for t in videos_todo])


def _video_done(output: Path, task: VideoTask, exporters: Sequence[Exporter], overwrite: bool,
                reviewed: frozenset[str]) -> bool:  # fmt: skip
    """Whether a video is finished: its record, its MOT ground truth and every requested format for its frames (a
    format asked for later redoes it), and not to redo (`overwrite`); or a person reviewed or edited a frame of it."""
    record = read_video_record(output, task.key)
    if record is None or not gt_path(output, task.sequence).is_file():
        return False
    if not reviewed.isdisjoint(record.frame_keys):
        return True  # a person's work outranks `overwrite`
    return not overwrite and all(exporter.is_done(key) for exporter in exporters for key in record.frame_keys)


def _used_frames(task: VideoTask, video: VideoSettings) -> int:
    """The frames a video will use (0 when it cannot be read: annotating it reports why)."""
    try:
        frames, _ = video_length(task.source)
    except ValueError:
        return 0
    return -(-frames // video.frame_stride)


def finish(plan: AnnotationPlan, output: OutputSettings, names: dict[int, str], summary: AnnotationSummary) -> None:
    """Split the dataset and let every format complete it for all images and video frames written so far (this
    run's and earlier runs'); write the videos' VIS file and their MOT sequences' labels."""
    index = dataset_index(plan, output)
    keys = [task.key for task in plan.tasks] + [k for video in index.videos for k in video.frame_keys]
    for exporter in output.exporters():
        path = exporter.finish(keys, names, index)
        if path is not None:
            summary.files[exporter.format] = str(path)
    vis = finish_vis(output.output, index.videos, names)
    if vis is not None:
        summary.files["vis"] = str(vis)
    finish_mot(output.output, [video.sequence for video in index.videos], names)
    summary.split = split_counts(index, output.val_fraction)
    summary.failures.sort()
    summary.no_boxes.sort()


def dataset_index(plan: AnnotationPlan, output: OutputSettings) -> DatasetIndex:
    """The written images (by the run record) and finished videos (by their records) of the plan, and the keys held
    out for validation: whole images and whole videos (`annotate.splits.held_out`)."""
    folder = output.output
    record = RunRecord(folder)
    images = folder / "images"
    files = {t.key: t.image_link.relative_to(images).as_posix() for t in plan.tasks if record.is_done(t.key)}
    units: dict[str, list[str]] = {f"image:{key}": [key] for key in files}
    videos: list[VideoEntry] = []
    for task in plan.videos:
        report = read_video_record(folder, task.key)
        if report is None:
            continue
        frames = tuple(report.frame_keys)
        numbers = tuple(frame_number(k) for k in frames)
        entry = VideoEntry(len(videos) + 1, task.key, task.sequence, frames, numbers, report.fps, report.width,
                           report.height)  # fmt: skip
        videos.append(entry)
        files.update({key: f"{key}{FRAME_SUFFIX}" for key in frames})
        units[f"video:{task.key}"] = list(frames)
    val_units = held_out(units, output.val_fraction)
    if val_units is None and output.val_fraction > 0 and units:
        logger.warning("One image or video only: nothing to hold out for validation, which is the training set.")
    val_keys = None if val_units is None else frozenset(k for unit in val_units for k in units[unit])
    return DatasetIndex(files, tuple(videos), val_keys)


def split_counts(index: DatasetIndex, val_fraction: float) -> dict[str, Any]:
    """What `AnnotationSummary.split` says of the split: images and frames on each side, videos held out, and
    whether validation is the training set."""
    held = index.val_keys or frozenset()
    val_videos = sum(bool(held.intersection(v.frame_keys)) for v in index.videos)
    train = len(index.files) - len(held)
    return {
        "val_fraction": val_fraction,
        "train": train,
        "val": len(held) if index.val_keys is not None else train,
        "train_videos": len(index.videos) - val_videos,
        "val_videos": val_videos,
        "val_is_train": index.val_keys is None,
    }


def _count(outcome: ImageOutcome, summary: AnnotationSummary, instances: Counter[str], names: dict[int, str]) -> None:
    if outcome.no_boxes:
        summary.no_boxes.append(outcome.source)
    elif outcome.failure is not None:
        summary.failed += 1
        summary.failures.append((outcome.source, outcome.failure))
    else:
        instances.update(class_name(names, c) for c in outcome.class_ids)
        summary.labelled += bool(outcome.class_ids)
        summary.no_detections += not outcome.class_ids


def _count_video(
    report: VideoReport, summary: AnnotationSummary, instances: Counter[str], names: dict[int, str]
) -> None:
    if report.no_boxes:
        summary.no_boxes.append(report.source)
        return
    summary.videos.append(report.summary(names))
    if report.failure is not None:
        summary.failed_videos += 1
        summary.failures.append((report.source, report.failure))
    else:
        instances.update({class_name(names, c): n for c, n in report.instances.items()})
