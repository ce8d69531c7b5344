"""The Image tab: its panels and controls, their events, and what they show, drawn from the user's `ImageState`.

It only translates: widget values in, `ImageWorkflow` calls, the user's state drawn back out as an `ImageView`. The
browser gets display-sized previews (at most `media.PREVIEW_MAX_SIDE` a side).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import gradio as gr
import numpy as np

from .canvas import box_annotator, box_canvas_value, candidate_gallery, dragged_box, mode_canvases, overlay_of
from .errors import guard
from .find_controls import FindControls
from .find_workflow import FindWorkflow
from .image_workflow import ImageWorkflow, active
from .media import color_of
from .prompts import BOX, BOX_CLICKS, IMAGE_MODES, POSITIVE
from .services import Services
from .sessions import ImageState, UserSession

THUMBNAIL_SIDE = 320  # candidates are shown whole at this size, with their scores
STEPS = """
1. Upload an image, or click an example.
2. Click the object; a *Negative click* takes a part away. Or draw a box: *Box (drag)*, or *Box (two clicks)*.
3. One click gives three candidates under the image: pick the best.
4. *Add object* for the next one; click an object in the list to work on it again; name it for the exports.
5. *Export*, or *Segment everything* to start from SAM 2's own masks.
6. Or type names and *Find* every such object ("person, red car"), or box one example and *Find similar*; the
   confidence slider hides weak finds.
"""

Events = dict[str, Any]


class ImageView(NamedTuple):
    """What the Image tab shows after any action, in the order of `ImagePanels.view()`: the canvas (HxWx3 uint8 RGB
    preview with masks and prompts), the box canvas's value (drag mode) or no change, the active object's candidates
    [(picture, caption)] when one click left a choice, the object list, the hint, the active object's class name."""

    canvas: Any
    box_canvas: Any
    candidates: list[tuple[np.ndarray, str]]
    objects: Any
    hint: str
    class_name: str


@dataclass
class ImagePanels:
    """The tab's components that handlers update (their names are `ImageView`'s fields) and its controls."""

    canvas: gr.Image
    box_canvas: Any  # gradio_image_annotation's image_annotator
    candidates: gr.Gallery
    objects: gr.Radio
    hint: gr.Markdown
    class_name: gr.Textbox

    def view(self) -> list[Any]:
        """The components in `ImageView` order: the outputs of every event that redraws the tab."""
        return [getattr(self, name) for name in ImageView._fields]


class ImageTab:
    """Handlers of the Image tab; `build` lays it out and wires them (inside a `gr.Blocks` tab)."""

    def __init__(
        self, services: Services, workflow: ImageWorkflow, examples: list[Path], find: FindWorkflow | None = None
    ) -> None:
        self.services = services
        self.workflow = workflow
        self.examples = examples
        self.find = FindControls(services, find or FindWorkflow(services), self.view)

    # ------------------------------------------------------------------------------------------------- layout
    def build(self, model_events: Events) -> ImagePanels:
        """The tab's Blocks: the work surface with its primary controls first (on a phone the columns stack), then
        the upload, the object list and the exports."""
        private: Events = {"api_visibility": "private"}
        quick: Events = {**private, "show_progress": "hidden"}  # no overlay over what the person clicks next
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=340):
                canvas = gr.Image(label="Click to segment", type="numpy", format="png", interactive=False,
                                  elem_id="image_canvas", show_label=False)  # fmt: skip
                box_canvas = box_annotator("image_box_canvas")
                hint = gr.Markdown("Upload an image, or click an example.", elem_id="image_hint")
                with gr.Row(elem_classes=["toolbar"]):
                    mode = gr.Radio(IMAGE_MODES, value=POSITIVE, show_label=False, elem_id="image_mode",
                                    container=False)  # fmt: skip
                with gr.Row(elem_classes=["toolbar"]):
                    add_object = gr.Button("Add object", size="sm", min_width=90, elem_id="image_add_object")
                    remove = gr.Button("Remove object", size="sm", min_width=90, elem_id="image_remove")
                    undo = gr.Button("Undo", size="sm", min_width=90, elem_id="image_undo")
                    clear = gr.Button("Clear all", size="sm", min_width=90, elem_id="image_clear")
                    everything = gr.Button("Segment everything", size="sm", min_width=90, elem_id="image_everything")
                candidates = gr.Gallery(
                    label="Candidates for the active object: pick the best", columns=3, height=200,
                    object_fit="contain", allow_preview=False, format="png", elem_id="image_candidates",
                    elem_classes=["hide-when-empty"],
                )  # fmt: skip
                objects = gr.Radio([], label="Objects (click one to work on it)", elem_id="image_objects",
                                   elem_classes=["object-list"])  # fmt: skip
                class_name = gr.Textbox(label="Class of the active object (for the exports)", placeholder="object",
                                        elem_id="image_class")  # fmt: skip
            with gr.Column(scale=3, min_width=300):
                gr.Markdown(STEPS, elem_id="image_steps")
                upload = gr.File(  # a file, not gr.Image: see the guarded opener (services.open_image)
                    label="Upload an image", file_types=["image"], type="filepath", elem_id="image_upload", height=110
                )
                examples = gr.Gallery(
                    [(str(p), p.stem) for p in self.examples], label="Examples: click one", columns=4, rows=1,
                    height=110, allow_preview=False, object_fit="contain", elem_id="image_examples",
                    interactive=False, visible=bool(self.examples), buttons=[], fit_columns=False,
                )  # fmt: skip
                self.find.layout()  # beside the work surface: the left column is the click loop, within one screen
                export = gr.Button("Export masks, COCO and YOLO labels", variant="primary", elem_id="image_export")
                exported = gr.File(label="Downloads", file_count="multiple", elem_id="image_downloads",
                                   elem_classes=["hide-when-empty"])  # fmt: skip
        panels = ImagePanels(canvas, box_canvas, candidates, objects, hint, class_name)
        view, size = panels.view(), len(ImageView._fields)
        redraw = {"keep": size}
        upload.change(guard(self.upload, **redraw), upload, view, **model_events, **private)
        examples.select(guard(self.load_example, **redraw), None, view, **model_events, **private)
        mode.input(guard(self.set_mode, keep=3), mode, [canvas, box_canvas, hint], **quick)
        # the mode travels with the click: a mode change and a click can reach the server in either order
        canvas.select(guard(self.click, **redraw), mode, view, **model_events, **private)
        # no progress overlay: the canvas reports our own redraws as changes too, and an overlay over the box canvas
        # (which shrinks under it) would catch the next drag
        box_canvas.change(guard(self.draw_box, **redraw), box_canvas, view, **model_events, **quick)
        candidates.select(guard(self.pick_candidate, **redraw), None, view, **quick)
        objects.input(guard(self.select_object, **redraw), [objects, class_name], view, **quick)
        # the name travels with the object it was typed for (the list's value when the box loses focus)
        class_name.submit(guard(self.name_object, keep=1), [objects, class_name], objects, **quick)
        class_name.blur(guard(self.name_object, keep=1), [objects, class_name], objects, **quick)
        add_object.click(guard(self.add_object, **redraw), class_name, view, **quick)
        undo.click(guard(self.undo, **redraw), None, view, **model_events, **private)
        remove.click(guard(self.remove_object, **redraw), None, view, **quick)
        clear.click(guard(self.clear, keep=size + 1), None, [*view, exported], **private)
        everything.click(guard(self.segment_everything, **redraw), None, view, **model_events, **private)
        export.click(guard(self.export, keep=1), None, exported, **private)
        self.find.wire(view, model_events)
        return panels

    # ----------------------------------------------------------------------------------------------- handlers
    def upload(self, path: str | None, request: gr.Request, progress: Any = gr.Progress()) -> ImageView:
        """A new image (upload): embedded now. No file (the upload was cleared): an empty tab."""
        with self.services.user_session(request) as user:
            user.image = self.workflow.open(user.image, path, progress) if path else ImageState(mode=user.image.mode)
            return self.view(user)

    def load_example(self, evt: gr.SelectData, request: gr.Request, progress: Any = gr.Progress()) -> ImageView:
        """An example picked from the thumbnails: loaded and ready to click (its path is ours, never the
        browser's)."""
        index = evt.index if isinstance(evt.index, int) else -1
        if not 0 <= index < len(self.examples):
            return self.refresh(request)
        return self.upload(str(self.examples[index]), request, progress)

    def set_mode(self, mode: str, request: gr.Request) -> tuple[Any, Any, str]:
        """Boxes by dragging happen on their own canvas: show it for Box (drag), the click canvas otherwise."""
        with self.services.user_session(request) as user:
            self.workflow.set_mode(user.image, mode)
            return (*mode_canvases(user.image), self._hint(user.image))

    def click(self, mode: str, evt: gr.SelectData, request: gr.Request) -> ImageView:
        with self.services.user_session(request) as user:
            if mode != user.image.mode:
                self.workflow.set_mode(user.image, mode)
            self.workflow.click(user.image, evt.index)
            return self.view(user)

    def draw_box(self, value: dict[str, Any] | None, request: gr.Request) -> ImageView:
        """A box dragged on the box canvas (preview pixels) becomes the active object's box. The canvas reports a
        change for a box just begun (no area yet) and for our own redraws (no box): those change nothing."""
        box = dragged_box(value)
        with self.services.user_session(request) as user:
            if box is None or not self.workflow.drag_box(user.image, box):
                return ImageView(*(gr.skip() for _ in ImageView._fields))
            return self.view(user)

    def pick_candidate(self, evt: gr.SelectData, request: gr.Request) -> ImageView:
        with self.services.user_session(request) as user:
            self.workflow.pick_candidate(user.image, evt.index)
            return self.view(user)

    def undo(self, request: gr.Request) -> ImageView:
        with self.services.user_session(request) as user:
            self.workflow.undo(user.image)
            return self.view(user)

    def add_object(self, request: gr.Request, name: str | None = None) -> ImageView:
        """A new object becomes the active one; `name`, the name box's text, is the previous one's name first."""
        with self.services.user_session(request) as user:
            self._keep_name(user.image, name)
            corner_shown = user.image.box_corner is not None  # the one mark of the picture that goes
            self.workflow.add_object(user.image)
            return self.view(user, picture=corner_shown)

    def select_object(self, number: Any, request: gr.Request, name: str | None = None) -> ImageView:
        """Object `number` becomes the active one. `name`, the name box's text as the click left it, names the
        object that was active: its name is kept even when this event reaches the server before the name box's."""
        with self.services.user_session(request) as user:
            self._keep_name(user.image, name)
            corner_shown = user.image.box_corner is not None  # the one mark of the picture that goes
            self.workflow.select_object(user.image, number)
            return self.view(user, picture=corner_shown)

    def name_object(self, number: Any, name: str | None, request: gr.Request) -> Any:
        """Object `number`'s class name -> the object list's labels. Nothing else changes: the active object and
        the name box stay as the user has them now (another event may have moved on to the next object)."""
        with self.services.user_session(request) as user:
            self.workflow.name_object(user.image, number, name)
            return gr.update(choices=self._object_choices(user.image))

    def remove_object(self, request: gr.Request) -> ImageView:
        with self.services.user_session(request) as user:
            self.workflow.remove_object(user.image)
            return self.view(user)

    def clear(self, request: gr.Request) -> tuple[Any, ...]:
        """Every object and prompt, and the downloads: the image stays."""
        with self.services.user_session(request) as user:
            self.workflow.clear(user.image)
            return (*self.view(user), None)

    def segment_everything(self, request: gr.Request, progress: Any = gr.Progress()) -> ImageView:
        with self.services.user_session(request) as user:
            progress(0.0, desc="Segmenting everything")
            self.workflow.segment_everything(user.image, progress)
            return self.view(user)

    def export(self, request: gr.Request) -> list[str]:
        with self.services.user_session(request) as user:
            return [str(path) for path in self.workflow.export(user.image, user.workdir / "image_export")]

    def refresh(self, request: gr.Request) -> ImageView:
        with self.services.user_session(request) as user:
            return self.view(user)

    def _keep_name(self, state: ImageState, name: str | None) -> None:
        if name is not None and state.objects:
            self.workflow.name_object(state, state.active + 1, name)

    # ------------------------------------------------------------------------------------------------- views
    def view(self, user: UserSession, picture: bool = True) -> ImageView:
        """The tab drawn from the user's state (see `ImageView`). `picture=False` for a change that leaves the
        picture as it was (another object chosen or added, no box corner to take off: the overlay does not depend
        on which object is active): the canvases are not sent again, so a box being dragged meanwhile is not lost
        to the box canvas reloading."""
        state = user.image
        objects = gr.update(choices=self._object_choices(state), value=str(state.active + 1) if state.objects else None)
        if state.image is None or state.preview is None:
            return ImageView(None, None, [], objects, self._hint(state), "")
        overlay = overlay_of(state) if picture else gr.skip()
        gallery = candidate_gallery(state, THUMBNAIL_SIDE)
        box_canvas = box_canvas_value(state, overlay)
        chosen = active(state) if state.objects else None
        class_name = chosen.class_name if chosen is not None else ""
        return ImageView(overlay, box_canvas, gallery, objects, self._hint(state), class_name)

    @staticmethod
    def _object_choices(state: ImageState) -> list[tuple[str, str]]:
        choices = []
        for i, obj in enumerate(state.objects):
            what = [f"{len(obj.points)} click{'s' * (len(obj.points) != 1)}"] if obj.points else []
            what += ["box"] if obj.box is not None else []
            what += [f"score {obj.scores[obj.choice]:.2f}"] if obj.scores else []
            what += [f"found {obj.confidence:.2f}"] if obj.confidence is not None else []
            name = f" · {obj.class_name}" if obj.class_name else ""
            choices.append((f"Object {i + 1}{name} — {', '.join(what) or 'no prompt yet'}", str(i + 1)))
        return choices

    @staticmethod
    def _hint(state: ImageState) -> str:
        if state.image is None:
            return "Upload an image, or click an example."
        number, colour = state.active + 1, color_of(state.active).as_hex()
        swatch = f'<span style="color:{colour}">■</span>'
        if state.box_corner is not None:
            return f"{swatch} Object {number}: now click the box's opposite corner."
        if state.mode == BOX:
            return f"{swatch} Object {number}: drag a box around it."
        if state.mode == BOX_CLICKS:
            return f"{swatch} Object {number}: click one corner of its box, then the opposite corner."
        return f"{swatch} Object {number}: click on it (Negative click removes a part)."
