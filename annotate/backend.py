"""`Backend`: what runs an annotation's images and videos — `LocalBackend` (threads on this machine) or `RayBackend`
(workers on a Ray cluster). `auto_annotate` plans the work, hands it to one, and writes what comes back; both give
the same files byte for byte."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Protocol

from .batch import ImageOutcome
from .images import ImageTask
from .video_annotator import VideoReport
from .videos import VideoTask


class Backend(Protocol):
    """names: the detector's class names by id; run: image batches -> one outcome per image, in any order;
    run_videos: videos -> one report per video (`progress(frames)` as frames are done); notes: what the run should
    tell the user about how the backend runs it (a pool smaller than asked), for the summary."""

    notes: list[str]

    @property
    def names(self) -> dict[int, str]: ...

    def run(self, batches: Sequence[Sequence[ImageTask]]) -> Iterator[ImageOutcome]: ...

    def run_videos(self, tasks: Sequence[VideoTask], progress: Callable[[int], None]) -> Iterator[VideoReport]: ...
