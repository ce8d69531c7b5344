"""The app's GPU work as module-level functions of picklable values, and `GpuTasks`, which calls them through the
runner (`gpu.GpuRunner`: ZeroGPU's decorator, or none) with a time budget from each call's work size.

Each task takes what it needs (HxWx3 uint8 RGB images, `ImageFeatures`, prompts in pixels, a `TrackerState`, a
detector) and returns what changed; long tasks are generators whose items are `Step`s (progress) and, last, their
result. No task decodes an upload, encodes a video or a picture, or zips: the workflows do that in the server.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Generator, Hashable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from annotate import auto_annotate
from annotate.refine import mask_side, mask_to_mask_input
from annotate.summary import AnnotationSummary
from annotate.track_propagate import propagate_track
from sam2_model import AutomaticMaskGenerator, ImagePredictor, Sam2Model, VideoPredictor
from sam2_model.embedding_cache import ImageFeatures, image_key

from . import gpu
from .tracker_state import TrackerState, open_session, state_of

Pass = tuple[int, bool]  # (start frame, reverse)


@dataclass(frozen=True)
class Step:
    """Progress of a long task: `done` of `total` units."""

    done: int
    total: int


@dataclass(frozen=True)
class TrackedFrame:
    """A frame a tracking went through: each object's mask there (COCO RLE, by object id) and the pass's direction."""

    frame: int
    reverse: bool
    rles: dict[Hashable, dict[str, Any]]


# ------------------------------------------------------------------------------------------------------ image
def embed_image(key: int, image: np.ndarray, portable: bool) -> ImageFeatures:
    """The image encoder's features of an HxWx3 uint8 RGB image (on the CPU when `portable`)."""
    gpu.fork_safe()
    predictor = ImagePredictor(gpu.model_by_key(key))
    predictor.set_image(image)
    return _features_to(predictor.image_features, torch.device("cpu")) if portable else predictor.image_features


def segment_image(
    key: int,
    image: np.ndarray,
    features: ImageFeatures,
    points: np.ndarray | None,
    labels: np.ndarray | None,
    box: np.ndarray | None,
    multimask: bool,
    prior: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Masks of one object on an image whose `features` are known: (CxHxW bool, C float32 scores), best first.
    points: Nx2 float32 (x, y) pixels, labels N int32, box xyxy float32 pixels; prior: HxW bool, a stored mask
    given as Meta's ``mask_input`` (`annotate.refine`: what `Dataset.refine_instance` gives for these clicks)."""
    gpu.fork_safe()
    predictor = _predictor_on(gpu.model_by_key(key), image, features)
    mask_input = None if prior is None else mask_to_mask_input(prior, mask_side(predictor))
    masks, scores, _ = predictor.predict(points, labels, box, mask_input, multimask_output=multimask)
    order = np.argsort(-scores)
    return masks[order].astype(bool), scores[order]


def segment_everything(
    key: int, image: np.ndarray, features: ImageFeatures, points_per_side: int
) -> Iterator[Step | list[dict[str, Any]]]:
    """SAM 2's automatic masks of an image: `Step`s over the grid clicks, then the records (see
    `AutomaticMaskGenerator.generate`: HxW bool "segmentation", "area", "predicted_iou", "point_coords")."""
    gpu.fork_safe()
    model = gpu.model_by_key(key)
    _predictor_on(model, image, features)  # the generator finds the embedding in the model's cache
    generator = AutomaticMaskGenerator(model, points_per_side=points_per_side)
    yield from _with_steps(lambda progress: generator.generate(image, progress=progress))


# ------------------------------------------------------------------------------------------------------ video
_PREDICTORS: dict[int, VideoPredictor] = {}


def video_predictor(key: int) -> VideoPredictor:
    """The video predictor on the model registered as `key` (one per process)."""
    model = gpu.model_by_key(key)
    predictor = _PREDICTORS.get(key)
    if predictor is None or predictor.model is not model:  # a key is a model's id: another model may reuse it
        predictor = _PREDICTORS[key] = VideoPredictor(model)
    return predictor


def prompt_video(
    key: int,
    state: TrackerState,
    frame: int,
    obj_id: Hashable,
    points: Sequence[Sequence[float]] | None,
    labels: Sequence[int] | None,
    box: Sequence[float] | None,
    clear_old_points: bool,
    portable: bool,
) -> tuple[TrackerState, torch.Tensor]:
    """Clicks and/or a box (video pixels) for `obj_id` on `frame` -> (the new state, every object's mask on that
    frame: Nx1xHxW bool on the CPU, the state's object order). ValueError for prompts the predictor refuses."""
    gpu.fork_safe()
    predictor = video_predictor(key)
    session = open_session(state, predictor.model, portable)
    _, _, logits = predictor.add_new_points_or_box(
        session, frame, obj_id, points=points, labels=labels, box=box, clear_old_points=clear_old_points
    )
    return state_of(session, portable), (logits > 0).cpu()


def track_video(key: int, state: TrackerState, passes: Sequence[Pass], portable: bool) -> Iterator[Any]:
    """Track every object through `passes` (start frame, reverse): a `TrackedFrame` after each frame, then the new
    `TrackerState`. A caller that stops reading gets no state: the frames it read are what was tracked."""
    gpu.fork_safe()
    predictor = video_predictor(key)
    session = open_session(state, predictor.model, portable)
    for start, reverse in passes:
        with contextlib.closing(predictor.propagate_in_video(session, start, reverse=reverse)) as frames:
            for frame, _, _ in frames:
                yield TrackedFrame(frame, reverse, session.frame_rles(frame))
    yield state_of(session, portable)


def propagate_mask(key: int, frames: list[np.ndarray], frame: int, mask: np.ndarray) -> dict[int, np.ndarray]:
    """One object's HxW bool `mask` on `frames[frame]` carried by SAM 2 over all of `frames` (HxWx3 uint8 RGB, video
    order), forward then backward -> {index in `frames`: HxW bool} (the Review tab's corrected track)."""
    gpu.fork_safe()
    return propagate_track(video_predictor(key), frames.__getitem__, range(len(frames)), frame, mask)


def tracked_visits(num_frames: int, passes: Sequence[Pass]) -> int:
    """Frames the passes go through together (a forward pass from its start to the end, a reverse one to 0)."""
    return sum(start + 1 if reverse else num_frames - start for start, reverse in passes)


# --------------------------------------------------------------------------------------------------- annotate
def annotate_files(
    key: int, detector: Any, inputs: Path, output_dir: Path, options: dict[str, Any]
) -> Iterator[Step | AnnotationSummary]:
    """`annotate.auto_annotate` of the files in `inputs` into `output_dir` with `detector` and SAM 2: `Step`s over
    images and video frames, then the summary. options: auto_annotate's keyword arguments (conf, classes...)."""
    gpu.fork_safe()
    model = gpu.model_by_key(key)

    def run(progress: Callable[[int, int], None]) -> AnnotationSummary:
        return auto_annotate(inputs, det_model=detector, sam_model=model, output_dir=output_dir, progress=progress,
                             **options)  # fmt: skip

    yield from _with_steps(run)


def annotate_work(inputs: Path) -> tuple[int, int]:
    """(files, video frames) in an upload folder, from names and container headers (nothing decoded)."""
    from annotate.images import find_images
    from annotate.videos import find_videos

    videos = find_videos(inputs)
    frames = 0
    for video in videos:
        with contextlib.suppress(Exception):  # an unreadable video fails in the run, with its reason
            import av

            with av.open(str(video)) as container:
                frames += int(container.streams.video[0].frames or 0)
    return len(find_images(inputs)) + len(videos), frames


# ---------------------------------------------------------------------------------------------------- helpers
def _features_to(features: ImageFeatures, device: torch.device) -> ImageFeatures:
    return ImageFeatures(
        features.image_embed.to(device), tuple(t.to(device) for t in features.high_res_feats), features.orig_hw
    )


def _predictor_on(model: Sam2Model, image: np.ndarray, features: ImageFeatures) -> ImagePredictor:
    """A predictor set on `image` without running the encoder: its `features` go into the model's cache first."""
    cache_key = image_key(image)
    if model.embedding_cache.get(cache_key) is None:
        model.embedding_cache.put(cache_key, _features_to(features, model.device))
    predictor = ImagePredictor(model)
    predictor.set_image(image)  # a cache hit (an encoding only when the cache is disabled)
    return predictor


def _with_steps(run: Callable[[Callable[[int, int], None]], Any]) -> Iterator[Any]:
    """`run(progress)` on a thread, its progress calls yielded as `Step`s as they come, then its result (its
    exception is raised here)."""
    items: queue.Queue[tuple[str, Any]] = queue.Queue()

    def target() -> None:
        try:
            items.put(("result", run(lambda done, total: items.put(("step", Step(done, total))))))
        except BaseException as error:  # handed to the reader, which raises it
            items.put(("error", error))

    thread = threading.Thread(target=target, daemon=True, name="gpu-task")
    thread.start()
    while True:
        kind, value = items.get()
        if kind == "step":
            yield value
        elif kind == "error":
            raise value
        else:
            yield value
            return


# ---------------------------------------------------------------------------------------------- the facade
def _click_budget(*_args: Any, **_kwargs: Any) -> int:
    return gpu.click_seconds()


def _everything_budget(*_args: Any, **_kwargs: Any) -> int:
    return gpu.everything_seconds()


def _track_budget(key: int, state: TrackerState, passes: Sequence[Pass], portable: bool) -> int:
    return gpu.track_seconds(tracked_visits(state.num_frames, passes), len(state.tracks))


def _propagate_budget(key: int, frames: list[np.ndarray], frame: int, mask: np.ndarray) -> int:
    return gpu.track_seconds(len(frames), 1)


def _annotate_budget(key: int, detector: Any, inputs: Path, output_dir: Path, options: dict[str, Any]) -> int:
    return gpu.annotate_seconds(*annotate_work(inputs))


class GpuTasks:
    """The GPU tasks on one model, run by `runner`; what the workflows call. `portable`: results cross a process
    boundary (the runner is isolated), so tensors come back on the CPU."""

    def __init__(self, model: Sam2Model, runner: gpu.GpuRunner | None = None) -> None:
        runner = runner or gpu.default_runner()
        self.runner = runner  # for tasks defined elsewhere (`find_tasks`), run the same way
        self.key = gpu.register_model(model)
        self.portable = runner.isolated
        self.video_predictor = video_predictor(self.key)  # the one the tasks use (and a forked worker inherits)
        self._embed = runner.wrap(embed_image, _click_budget)
        self._segment = runner.wrap(segment_image, _click_budget)
        self._everything = runner.wrap(segment_everything, _everything_budget)
        self._prompt = runner.wrap(prompt_video, _click_budget)
        self._track = runner.wrap(track_video, _track_budget)
        self._propagate = runner.wrap(propagate_mask, _propagate_budget)
        self._annotate = runner.wrap(annotate_files, _annotate_budget)

    def embed_image(self, image: np.ndarray) -> ImageFeatures:
        """See `embed_image` (module function)."""
        features: ImageFeatures = self._embed(self.key, image, self.portable)
        return features

    def segment_image(
        self,
        image: np.ndarray,
        features: ImageFeatures,
        points: np.ndarray | None,
        labels: np.ndarray | None,
        box: np.ndarray | None,
        multimask: bool,
        prior: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """See `segment_image` (module function)."""
        result: tuple[np.ndarray, np.ndarray] = self._segment(
            self.key, image, features, points, labels, box, multimask, prior
        )
        return result

    def segment_everything(self, image: np.ndarray, features: ImageFeatures, points_per_side: int) -> Iterator[Any]:
        """See `segment_everything` (module function)."""
        steps: Iterator[Any] = self._everything(self.key, image, features, points_per_side)
        return steps

    def prompt_video(
        self,
        state: TrackerState,
        frame: int,
        obj_id: Hashable,
        points: Sequence[Sequence[float]] | None = None,
        labels: Sequence[int] | None = None,
        box: Sequence[float] | None = None,
        clear_old_points: bool = True,
    ) -> tuple[TrackerState, torch.Tensor]:
        """See `prompt_video` (module function)."""
        result: tuple[TrackerState, torch.Tensor] = self._prompt(
            self.key, state, frame, obj_id, points, labels, box, clear_old_points, self.portable
        )
        return result

    def track_video(self, state: TrackerState, passes: Sequence[Pass]) -> Generator[Any, None, None]:
        """See `track_video` (module function)."""
        steps: Generator[Any, None, None] = self._track(self.key, state, tuple(passes), self.portable)
        return steps

    def propagate_mask(self, frames: list[np.ndarray], frame: int, mask: np.ndarray) -> dict[int, np.ndarray]:
        """See `propagate_mask` (module function); an `annotate.track_propagate.FramePropagator`."""
        masks: dict[int, np.ndarray] = self._propagate(self.key, frames, frame, mask)
        return masks

    def annotate_files(self, detector: Any, inputs: Path, output_dir: Path, **options: Any) -> Iterator[Any]:
        """See `annotate_files` (module function)."""
        steps: Iterator[Any] = self._annotate(self.key, detector, inputs, output_dir, options)
        return steps


def last_of(steps: Iterator[Any], on_step: Callable[[Step], Any]) -> Any:
    """Read a long task to its end: each `Step` to `on_step`, then its result."""
    result = None
    for item in steps:
        if isinstance(item, Step):
            on_step(item)
        else:
            result = item
    return result
