"""The Video tab: its panels and controls, their events, and what they show, drawn from the user's `VideoState`.

It only translates: widget values in, `VideoWorkflow` calls, the state drawn back out as a `VideoView`. The frame
panel always shows the slider's frame; tracking is watched frame by frame, the slider following.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import numpy as np
import torch

from .errors import guard
from .find_workflow import FindWorkflow
from .prompts import FIND_CONFIDENCE, MAX_PHRASE_CHARS, MAX_PHRASES, POSITIVE, VIDEO_MODES, frame_number
from .services import Services
from .sessions import UserSession
from .video_find import VideoFind
from .video_view import frame_overlay, object_choices, status_text, timeline_html
from .video_workflow import VideoWorkflow, require_session, shown_frame

STEPS = """
1. Upload a video, or click the example.
2. Move the slider to a frame where the object shows, and click it. *Add object* for more; name each for the exports.
3. *Track*: watch the masks appear frame by frame. *Cancel* keeps what is tracked.
4. Scrub the slider to check any frame; click there to correct, then *Track* again.
5. Download the overlay video, the masks and COCO.
6. Or *Find* objects by name on the frame ("person, red car"), or box one and *Find similar*: each becomes an object.
"""

Events = dict[str, Any]


class VideoView(NamedTuple):
    """What the Video tab shows after any action, in the order of `VideoPanels.view()`: the frame (HxWx3 uint8 RGB
    with masks and prompts), the slider, the status line, the timeline (HTML), the object list, the active object's
    class name."""

    frame: Any
    slider: Any
    status: str
    timeline: str
    objects: Any
    class_name: Any


@dataclass
class VideoPanels:
    """The tab's components that handlers update (their names are `VideoView`'s fields), and the tracking's files."""

    frame: gr.Image
    slider: gr.Slider
    status: gr.Markdown
    timeline: gr.HTML
    objects: gr.Radio
    class_name: gr.Textbox
    tracked: gr.Video
    files: gr.File

    def view(self) -> list[Any]:
        """The components in `VideoView` order: the outputs of every event that redraws the tab."""
        return [getattr(self, name) for name in VideoView._fields]


class VideoTab:
    """Handlers of the Video tab; `build` lays it out and wires them (inside a `gr.Blocks` tab)."""

    def __init__(
        self, services: Services, workflow: VideoWorkflow, example: Path | None, find: FindWorkflow | None = None
    ) -> None:
        self.services = services
        self.workflow = workflow
        self.example = example
        self.finder = VideoFind(workflow, find or FindWorkflow(services))

    # ------------------------------------------------------------------------------------------------- layout
    def build(self, model_events: Events) -> VideoPanels:
        """The frame with the slider and the primary controls first (on a phone the columns stack), then the
        upload, the object list and the tracking's outputs."""
        private: Events = {"api_visibility": "private"}
        quick: Events = {**private, "show_progress": "hidden"}  # no overlay over what the person clicks next
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=340):
                frame = gr.Image(label="Frame: click objects", type="numpy", format="png", interactive=False,
                                 elem_id="video_frame", show_label=False)  # fmt: skip
                slider = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="frame_slider")
                with gr.Row(elem_classes=["toolbar"]):
                    mode = gr.Radio(VIDEO_MODES, value=POSITIVE, show_label=False, elem_id="video_mode",
                                    container=False)  # fmt: skip
                with gr.Row(elem_classes=["toolbar"]):
                    track = gr.Button("Track", variant="primary", size="sm", min_width=90, elem_id="track")
                    cancel = gr.Button("Cancel", variant="stop", size="sm", min_width=90, elem_id="cancel")
                    undo = gr.Button("Undo", size="sm", min_width=90, elem_id="video_undo")
                    add = gr.Button("Add object", size="sm", min_width=90, elem_id="video_add_object")
                    remove = gr.Button("Remove object", size="sm", min_width=90, elem_id="video_remove")
                with gr.Row(elem_classes=["toolbar"], equal_height=True):  # Find on this frame (see video_find)
                    find_text = gr.Textbox(placeholder='Find on this frame: "person, red car"', show_label=False,
                                           container=False, scale=4, min_width=160, elem_id="video_find_text",
                                           max_length=MAX_PHRASES * (MAX_PHRASE_CHARS + 2))  # fmt: skip
                    names = self.finder.find_workflow.detectors
                    detector = gr.Dropdown(names, value=names[0], show_label=False, container=False, scale=2,
                                           min_width=120, elem_id="video_find_detector")  # fmt: skip
                    find = gr.Button("Find", size="sm", min_width=60, elem_id="video_find")
                    similar = gr.Button("Find similar", size="sm", min_width=90, elem_id="video_find_similar")
                    confidence = gr.Number(FIND_CONFIDENCE, minimum=0, maximum=1, step=0.05, label="Confidence",
                                           min_width=90, scale=1, elem_id="video_find_confidence")  # fmt: skip
                status = gr.Markdown("No video yet.", elem_id="video_status")
                timeline = gr.HTML("", elem_id="video_timeline")
                objects = gr.Radio([], label="Objects (click one to work on it)", elem_id="video_objects",
                                   elem_classes=["object-list"])  # fmt: skip
                class_name = gr.Textbox(label="Class of the active object (for the exports)", placeholder="object 1",
                                        elem_id="video_class")  # fmt: skip
            with gr.Column(scale=3, min_width=300):
                gr.Markdown(STEPS, elem_id="video_steps")
                upload = gr.Video(label="Upload a video (mp4, mov, webm)", elem_id="video_upload", height=200,
                                  sources=["upload"])  # fmt: skip
                example = gr.Gallery(
                    [(str(self.example), self.example.stem)] if self.example else [], label="Example: click it",
                    columns=4, rows=1, height=110, allow_preview=False, object_fit="contain", elem_id="video_example",
                    interactive=False, visible=self.example is not None, buttons=[], fit_columns=False,
                )  # fmt: skip
                tracked = gr.Video(label="Tracked", elem_id="tracked_video", format="mp4", height=240,
                                   elem_classes=["hide-when-empty"])  # fmt: skip
                files = gr.File(label="Masks (PNG zip) and COCO JSON", file_count="multiple", elem_id="video_files",
                                elem_classes=["hide-when-empty"])  # fmt: skip
        panels = VideoPanels(frame, slider, status, timeline, objects, class_name, tracked, files)
        view, size = panels.view(), len(VideoView._fields)
        redraw = {"keep": size}
        upload.upload(guard(self.upload, **redraw), upload, view, **model_events, **private)
        example.select(guard(self.load_example, **redraw), None, view, **model_events, **private)
        slider.input(guard(self.show_frame, keep=2), slider, [frame, timeline], **quick)
        # the frame and the mode travel with the click (see ImageTab.build)
        frame.select(guard(self.click, **redraw), [slider, mode], view, **model_events, **private)
        objects.input(guard(self.select_object, **redraw), [objects, slider, class_name], view, **quick)
        class_name.submit(guard(self.name_object, keep=1), [objects, class_name], objects, **quick)
        class_name.blur(guard(self.name_object, keep=1), [objects, class_name], objects, **quick)
        add.click(guard(self.add_object, **redraw), [slider, class_name], view, **quick)
        undo.click(guard(self.undo, **redraw), slider, view, **model_events, **private)
        find_inputs = [slider, find_text, detector, confidence]
        find.click(guard(self.find_by_name, **redraw), find_inputs, view, **model_events, **private)
        find_text.submit(guard(self.find_by_name, **redraw), find_inputs, view, **model_events, **private)
        similar.click(guard(self.find_similar, **redraw), [slider, detector, confidence], view, **model_events,
                      **private)  # fmt: skip
        remove.click(guard(self.remove_object, **redraw), slider, view, **quick)
        track.click(guard(self.track, keep=size + 2), None, [*view, tracked, files], **model_events,
                    show_progress="hidden", **private)  # fmt: skip
        # not in the model's concurrency group: it must run while Track holds a model slot
        cancel.click(guard(self.cancel, keep=1), None, status, concurrency_limit=None, **private)
        return panels

    # ----------------------------------------------------------------------------------------------- handlers
    def upload(self, path: str | None, request: gr.Request, progress: Any = gr.Progress()) -> VideoView:
        with self.services.user_session(request) as user:
            self.workflow.open_video(user, path, progress)
            return self.view(user, 0)

    def load_example(self, evt: gr.SelectData, request: gr.Request, progress: Any = gr.Progress()) -> VideoView:
        """The example video, loaded and ready to click (its path is ours, never the browser's)."""
        return self.upload(str(self.example) if self.example else None, request, progress)

    def show_frame(self, frame_idx: float, request: gr.Request) -> tuple[Any, str]:
        """The slider moved: the panel shows that frame with its masks and prompts."""
        with self.services.user_session(request) as user:
            session = user.video.session
            if session is None:
                return None, ""
            frame = frame_number(frame_idx, session.num_frames)
            return frame_overlay(user.video, frame), timeline_html(user.video, frame)

    def add_object(self, frame_idx: float, request: gr.Request, name: str | None = None) -> VideoView:
        """A new object becomes the active one; `name` (the name box's text) names the previous one first."""
        with self.services.user_session(request) as user:
            self._keep_name(user, name)
            self.workflow.add_object(user.video)
            return self.view(user, shown_frame(user, frame_idx))

    def select_object(self, number: Any, frame_idx: float, request: gr.Request, name: str | None = None) -> VideoView:
        """Object `number` becomes the active one; `name` names the one that was (see ImageTab.select_object)."""
        with self.services.user_session(request) as user:
            self._keep_name(user, name)
            self.workflow.select_object(user.video, number)
            return self.view(user, shown_frame(user, frame_idx))

    def name_object(self, number: Any, name: str | None, request: gr.Request) -> Any:
        """Object `number`'s class name -> the object list's labels (see ImageTab.name_object)."""
        with self.services.user_session(request) as user:
            self.workflow.name_object(user.video, number, name)
            return gr.update(choices=object_choices(user.video))

    def remove_object(self, frame_idx: float, request: gr.Request) -> VideoView:
        with self.services.user_session(request) as user:
            self.workflow.remove_object(user)
            return self.view(user, shown_frame(user, frame_idx))

    def click(
        self, frame_idx: float, mode: str, evt: gr.SelectData, request: gr.Request, progress: Any = gr.Progress()
    ) -> VideoView:
        with self.services.user_session(request) as user:
            frame, logits = self.workflow.click(user, frame_idx, evt.index, mode, progress)
            return self.view(user, frame, logits)

    def undo(self, frame_idx: float, request: gr.Request) -> VideoView:
        """Take back the most recent prompt; the slider goes to its frame."""
        with self.services.user_session(request) as user:
            frame = self.workflow.undo(user)
            return self.view(user, shown_frame(user, frame_idx) if frame is None else frame)

    def track(self, request: gr.Request) -> Iterator[tuple[Any, ...]]:
        """Both passes, every frame shown as it is tracked (slider, panel, progress with a time estimate, timeline);
        then the overlay video and the files. The lock is taken per frame, and released before each yield."""
        user = self.services.find_session(request)
        with user.in_use():
            for step in self.workflow.tracking_steps(user):
                with user.lock:
                    frame, slider = self.frame_view(user, step.frame), gr.update(value=step.frame)
                    timeline = timeline_html(user.video, step.frame)
                    if step.files is None:
                        shown = (frame, slider, step.note, timeline, gr.skip(), gr.skip(), gr.skip(), gr.skip())
                    else:
                        overlay, masks_zip, coco = step.files
                        objects = self._object_list(user)
                        shown = (frame, slider, step.note, timeline, objects, gr.skip(), str(overlay),
                                 [str(masks_zip), str(coco)])  # fmt: skip
                yield shown

    def cancel(self, request: gr.Request) -> Any:
        """Stop the running tracking at its next frame; what was tracked stays (and is exported). With nothing
        running (say the tracking finished as Cancel was clicked) the status is left as it is."""
        user = self.services.find_session(request)
        if not self.workflow.cancel(user):
            return gr.skip()
        return "Cancelling: tracking stops after the frame it is on."

    def find_by_name(
        self, frame_idx: float, text: str | None, detector: str | None, confidence: float | None, request: gr.Request
    ) -> VideoView:
        with self.services.user_session(request) as user:
            frame, logits = self.finder.find(user, frame_idx, text, detector, confidence)
            return self.view(user, frame, logits)

    def find_similar(
        self, frame_idx: float, detector: str | None, confidence: float | None, request: gr.Request
    ) -> VideoView:
        with self.services.user_session(request) as user:
            frame, logits = self.finder.find_similar(user, frame_idx, detector, confidence)
            return self.view(user, frame, logits)

    def _keep_name(self, user: UserSession, name: str | None) -> None:
        if name is not None:
            self.workflow.name_object(user.video, user.video.active_obj, name)

    # ------------------------------------------------------------------------------------------------- views
    def view(self, user: UserSession, frame: int, logits: torch.Tensor | None = None) -> VideoView:
        """The tab drawn from the user's state with the panel on `frame`."""
        session, video = user.video.session, user.video
        name = video.class_names.get(video.active_obj, "")
        if session is None:
            return VideoView(None, gr.update(value=0), "No video yet.", "", self._object_list(user), name)
        slider = gr.update(maximum=max(1, session.num_frames - 1), value=frame)
        return VideoView(self.frame_view(user, frame, logits), slider, status_text(video),
                         timeline_html(video, frame), self._object_list(user), name)  # fmt: skip

    def frame_view(self, user: UserSession, frame_idx: int, logits: torch.Tensor | None = None) -> np.ndarray:
        """Frame `frame_idx` with every object's mask and prompts (see `video_view.frame_overlay`)."""
        require_session(user)
        return frame_overlay(user.video, frame_idx, logits)

    @staticmethod
    def _object_list(user: UserSession) -> Any:
        return gr.update(choices=object_choices(user.video), value=str(user.video.active_obj))
