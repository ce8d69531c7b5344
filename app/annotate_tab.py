"""The Auto-annotate tab: uploaded images and videos (or zips of them) -> a gallery of masks, the tracked preview of
the first video, and the dataset as a zip. It translates between widgets and `AnnotateWorkflow`."""

from __future__ import annotations

from typing import Any

import gradio as gr

from annotate.settings import DetectorSettings, VideoSettings

from .annotate_workflow import AnnotateWorkflow, Gallery
from .errors import guard
from .prompts import parse_phrases
from .services import Services

STEPS = """
1. Upload images, videos, or zips of them.
2. Choose a detector and, if you like, the classes to keep; with YOLOE or YOLO-World, type any names as classes.
3. *Annotate*: the detector's boxes become SAM 2 masks: a YOLO-seg and COCO dataset to train on. In videos the
   detector runs every few frames and SAM 2 tracks each object in between, with one id per object.
"""

Events = dict[str, Any]


class AnnotateTab:
    """Handlers of the Auto-annotate tab; `build` lays it out and wires them (inside a `gr.Blocks` tab)."""

    def __init__(self, services: Services, workflow: AnnotateWorkflow) -> None:
        self.services = services
        self.workflow = workflow

    def build(self, model_events: Events) -> None:
        private: Events = {"api_visibility": "private"}
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=340):
                gallery = gr.Gallery(
                    label="Masks (the first images; each video's first, middle and last frame)", columns=3,
                    format="png", object_fit="contain", elem_id="annotate_gallery",
                )  # fmt: skip
                preview = gr.Video(label="Tracked video (ids drawn)", elem_id="annotate_preview", interactive=False,
                                   height=320, elem_classes=["hide-when-empty"])  # fmt: skip
                dataset = gr.File(
                    label="Dataset (images, labels, data.yaml, COCO JSON; for videos: vis.json, tracks, previews)",
                    elem_id="annotate_dataset", elem_classes=["hide-when-empty"],
                )  # fmt: skip
            with gr.Column(scale=3, min_width=300):
                gr.Markdown(STEPS)
                files = gr.File(label="Images, videos, or zips of them", file_count="multiple",
                                elem_id="annotate_files")  # fmt: skip
                names = self.services.detectors.names + self.services.finders.names  # closed-set, then open
                detector = gr.Dropdown(names, value=names[0], label="Detector (downloaded on first use)",
                                       elem_id="annotate_detector")  # fmt: skip
                classes = gr.Dropdown(
                    list(self.services.detectors.class_names(names[0]).values()), value=[], multiselect=True,
                    label="Classes to keep (none: all; YOLOE and YOLO-World: type names)", elem_id="annotate_classes",
                )  # fmt: skip
                conf = gr.Slider(0.0, 1.0, value=DetectorSettings.conf, step=0.01, label="Detector confidence",
                                 elem_id="annotate_conf")  # fmt: skip
                keyframes = gr.Slider(
                    1, 30, value=VideoSettings.keyframe_interval, step=1, elem_id="annotate_keyframes",
                    label="Videos: detector every N frames (SAM 2 tracks in between)",
                )  # fmt: skip
                run = gr.Button("Annotate", variant="primary", elem_id="annotate_run")
        detector.input(guard(self.class_names, keep=1), detector, classes, **private)
        run.click(guard(self.run, keep=3), [files, detector, classes, conf, keyframes],
                  [gallery, dataset, preview], **model_events, **private)  # fmt: skip

    def run(
        self,
        files: list[str] | None,
        detector: str,
        class_names: list[str] | None,
        conf: float,
        request: gr.Request,
        progress: Any = gr.Progress(),
        keyframe_interval: float = VideoSettings.keyframe_interval,
    ) -> tuple[Gallery, str, str | None]:
        """Images and videos (or zips of them) and the classes to keep, by name (none: all) -> a gallery of the
        first images and of each video's frames with their masks and counts, the dataset as a zip, and the first
        video's tracked preview; the progress bar moves with the images and frames. (Gradio puts the request and
        progress in their places; the keyframe slider, the fifth input, lands in `keyframe_interval`.)"""
        phrases = None
        if self.workflow.is_open_vocabulary(detector):  # the names typed are the classes
            phrases = parse_phrases(", ".join(str(n) for n in class_names or []))
        with self.services.user_session(request) as user:
            class_ids = None if phrases is not None else self.workflow.class_ids(detector, class_names)
            return self.workflow.annotate(
                user, files, detector, class_ids, conf, progress, keyframe_interval, notify=gr.Info, phrases=phrases
            )

    def class_names(self, detector: str) -> Any:
        """The detector's classes, for the class picker (names; the detector changed); an open-vocabulary detector
        takes the names typed there."""
        if self.workflow.is_open_vocabulary(detector):
            return gr.update(choices=[], value=[], allow_custom_value=True)
        if detector not in self.services.detectors.names:
            return gr.update(choices=[], value=[])
        names = list(self.services.detectors.class_names(detector).values())
        return gr.update(choices=names, value=[], allow_custom_value=False)
