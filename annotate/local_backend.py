"""The local backend: `BatchAnnotator`'s stages overlapped in this process.

    reader threads (decode, EXIF) -> detector (one batched call) -> SAM 2 (one call per image, all its boxes, on one
    image embedding) -> writer thread (mask upsampling, polygons, atomic files)

Decoding and writing overlap the models; only a bounded number of images is in flight, so memory does not grow with
the folder.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np

from sam2_model import ImagePredictor, load_model

from .batch import BatchAnnotator, ImageOutcome, read_task
from .detectors import make_detector
from .images import ImageReadError, ImageTask
from .settings import DetectorSettings, OutputSettings, VideoSettings, on_device
from .video_annotator import VideoAnnotator, VideoReport
from .videos import VideoTask


class LocalBackend:
    """Annotates batches in this process with one detector and the process's shared SAM 2 model."""

    def __init__(
        self,
        det_model: Any,
        sam_model: Any,
        detector: DetectorSettings,
        output: OutputSettings,
        workers: int,
        video: VideoSettings | None = None,
    ) -> None:
        model = load_model(sam_model, detector.sam_device())
        detector = on_device(detector, model.device)  # the detector on SAM 2's GPU, named the same way
        self.annotator = BatchAnnotator(make_detector(det_model, detector), ImagePredictor(model), output)
        self.videos = VideoAnnotator(self.annotator.detector, model, output, video or VideoSettings())
        self.workers = workers
        self.notes: list[str] = []

    def run_videos(self, tasks: Sequence[VideoTask], progress: Callable[[int], None]) -> Iterator[VideoReport]:
        """Each video in turn, in this process (one SAM 2 model: videos would only queue for it); `progress(n)` as
        frames are tracked."""
        for task in tasks:
            yield self.videos.annotate(task, progress)

    @property
    def names(self) -> dict[int, str]:
        return self.annotator.detector.names

    def run(self, batches: Sequence[Sequence[ImageTask]]) -> Iterator[ImageOutcome]:
        """Outcomes of every image of `batches`, as they finish (in order)."""
        annotator = self.annotator
        batch_size = max((len(b) for b in batches), default=1)
        writing: deque[Future[ImageOutcome]] = deque()
        with (
            ThreadPoolExecutor(self.workers, thread_name_prefix="annotate-read") as readers,
            ThreadPoolExecutor(1, thread_name_prefix="annotate-write") as writer,
        ):
            decoded = _read_ahead(readers, [task for batch in batches for task in batch], depth=2 * batch_size)
            for batch in batches:
                readable = []
                for task, image in (next(decoded) for _ in batch):
                    if isinstance(image, ImageReadError):
                        yield ImageOutcome(str(task.source), failure=image.reason)
                    else:
                        readable.append((task, image))
                for task, image, result in annotator.detect_and_segment(readable):
                    if isinstance(result, ImageOutcome):
                        yield result
                        continue
                    writing.append(writer.submit(annotator.write, task, image.shape, *result))
                    while len(writing) > 2 * batch_size:
                        yield writing.popleft().result()
            while writing:
                yield writing.popleft().result()


def _read_ahead(
    pool: ThreadPoolExecutor, tasks: list[ImageTask], depth: int
) -> Iterator[tuple[ImageTask, np.ndarray | ImageReadError]]:
    """Decode images in `pool`, at most `depth` ahead of the consumer (so memory does not grow with the folder)."""
    queue: deque[tuple[ImageTask, Future[np.ndarray | ImageReadError]]] = deque()
    for task in tasks:
        queue.append((task, pool.submit(read_task, task)))
        if len(queue) >= depth:
            head, job = queue.popleft()
            yield head, job.result()
    while queue:
        head, job = queue.popleft()
        yield head, job.result()
