"""`Studio`: the app put together — the shared `Services`, a Gradio-free workflow per capability (image
segmentation, video tracking, auto-annotation, dataset review), the four tabs that translate widgets to those
workflows, and the named API that calls the same workflows. `demo.build_demo` lays the tabs out; tests call the
handlers directly.

Imports flow one way: studio -> tabs and api -> workflows -> services -> sessions, prompts, settings.
"""

from __future__ import annotations

from pathlib import Path

from sam2_model import Sam2Model

from . import examples_dir
from .annotate_tab import AnnotateTab
from .annotate_workflow import AnnotateWorkflow
from .api import NamedApi
from .clients import TrustedProxies
from .detector_pool import DetectorPool
from .find_workflow import FindWorkflow
from .gpu import GpuRunner
from .image_tab import ImageTab
from .image_workflow import ImageWorkflow
from .review_tab import ReviewTab
from .review_video import VideoReview
from .review_video_tab import ReviewVideoTab
from .review_workflow import ReviewWorkflow
from .services import Services
from .settings import Limits
from .video_tab import VideoTab
from .video_workflow import VideoWorkflow

EXAMPLES = examples_dir()  # shipped with the package


class Studio(Services):
    """The services, and the handlers: `image`, `video`, `annotate`, `review` (tabs) and `api` (named endpoints);
    `reviewing` and `reviewing_videos`, the Review tab's workflows (images, videos)."""

    def __init__(
        self,
        model: Sam2Model,
        limits: Limits | None = None,
        detectors: DetectorPool | None = None,
        proxies: TrustedProxies | None = None,
        runner: GpuRunner | None = None,
        finders: DetectorPool | None = None,
        dataset: str | Path | None = None,
    ):
        super().__init__(model, limits, detectors, proxies, runner, finders)
        find = FindWorkflow(self)
        image, video, annotate = ImageWorkflow(self), VideoWorkflow(self), AnnotateWorkflow(self, find)
        example_video = EXAMPLES / "video.mp4"
        self.image = ImageTab(self, image, sorted(EXAMPLES.glob("*.jpg")), find)
        self.video = VideoTab(self, video, example_video if example_video.is_file() else None, find)
        self.annotate = AnnotateTab(self, annotate)
        self.api = NamedApi(self, image, video, annotate, find)
        self.reviewing = ReviewWorkflow(self, image, dataset)  # `dataset`: sam2-studio --dataset PATH
        self.reviewing_videos = VideoReview(self.reviewing)
        self.review = ReviewTab(self, self.reviewing)
        self.review_videos = ReviewVideoTab(self.review, self.reviewing_videos)
