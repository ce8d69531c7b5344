"""The Image tab's Find controls: what to find (names), the detector, *Find*, *Find similar* (the active object's box
as the example) and the confidence slider, which hides and shows found objects live, without a model call.

It only translates widget values to `FindWorkflow` calls; the tab draws the result (`view`, the tab's `ImageView`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gradio as gr

from .errors import guard
from .find_workflow import FindWorkflow
from .prompts import FIND_CONFIDENCE, MAX_PHRASE_CHARS, MAX_PHRASES
from .services import Services
from .sessions import UserSession

Events = dict[str, Any]
View = Callable[[UserSession], Any]


class FindControls:
    """Handlers of the Find controls; `layout` places them (inside the tab's work column), `wire` connects them."""

    def __init__(self, services: Services, workflow: FindWorkflow, view: View) -> None:
        self.services = services
        self.workflow = workflow
        self.view = view

    def layout(self) -> None:
        """The controls, where the caller's layout is now."""
        names = self.workflow.detectors
        self.text = gr.Textbox(
            placeholder='Find by name: "person, red car"', show_label=False, container=False,
            max_length=MAX_PHRASES * (MAX_PHRASE_CHARS + 2), elem_id="image_find_text",
        )  # fmt: skip
        with gr.Row(elem_classes=["toolbar"], equal_height=True):
            self.detector = gr.Dropdown(names, value=names[0], show_label=False, container=False, scale=2,
                                        min_width=120, elem_id="image_find_detector")  # fmt: skip
            self.find_button = gr.Button("Find", size="sm", min_width=60, elem_id="image_find")
            self.similar_button = gr.Button("Find similar", size="sm", min_width=90, elem_id="image_find_similar")
        self.confidence = gr.Slider(
            0.0, 1.0, value=FIND_CONFIDENCE, step=0.01, label="Confidence: found objects scored below it are hidden",
            elem_id="image_find_confidence",
        )  # fmt: skip

    def wire(self, view: list[Any], model_events: Events) -> None:
        """Find and Find similar run the model; the slider only redraws (no progress overlay over the picture). No
        handler is called `find`: Gradio names private events after their function, and /find is the named API's."""
        private: Events = {"api_visibility": "private"}
        redraw = {"keep": len(view)}
        inputs = [self.text, self.detector, self.confidence]
        self.find_button.click(guard(self.find_by_name, **redraw), inputs, view, **model_events, **private)
        self.text.submit(guard(self.find_by_name, **redraw), inputs, view, **model_events, **private)
        self.similar_button.click(guard(self.find_similar, **redraw), [self.detector, self.confidence], view,
                                  **model_events, **private)  # fmt: skip
        self.confidence.change(guard(self.set_confidence, **redraw), self.confidence, view, show_progress="hidden",
                               trigger_mode="always_last", **private)  # fmt: skip

    # ----------------------------------------------------------------------------------------------- handlers
    def find_by_name(
        self, text: str | None, detector: str | None, confidence: float, request: gr.Request,
        progress: Any = gr.Progress(),
    ) -> Any:  # fmt: skip
        with self.services.user_session(request) as user:
            self.workflow.find(user.image, text, detector, confidence, progress)
            return self.view(user)

    def find_similar(
        self, detector: str | None, confidence: float, request: gr.Request, progress: Any = gr.Progress()
    ) -> Any:
        with self.services.user_session(request) as user:
            self.workflow.find_similar(user.image, detector, confidence, progress)
            return self.view(user)

    def set_confidence(self, confidence: float, request: gr.Request) -> Any:
        with self.services.user_session(request) as user:
            self.workflow.set_threshold(user.image, confidence)
            return self.view(user)
