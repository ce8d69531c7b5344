"""The Review tab: a dataset's items in a grid (counts, status, filters, needs-a-look order) and an editor that draws
and edits an item as the Image tab does, with Accept, Next and Previous, Undo, Save or Download, and keys for them.

It only translates: widget values in, `ReviewWorkflow` calls, the user's `ReviewState` drawn back out as a
`ReviewView`. Pictures go out as display-sized previews, drawn by `media.draw_overlay` like the Image tab's.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any, NamedTuple

import gradio as gr
import numpy as np

from annotate.review import look_entry

from .canvas import (
    box_annotator,
    box_canvas_value,
    candidate_gallery,
    colour_slots,
    dragged_box,
    mode_canvases,
    overlay_of,
)
from .errors import guard
from .media import color_of, draw_overlay, preview_scale, to_preview
from .prompts import BOX, BOX_CLICKS, IMAGE_MODES, POSITIVE
from .review_filters import ALL, ANY_CLASS, NEEDS_A_LOOK, ORDERS, STATUSES
from .review_workflow import ItemRow, ReviewWorkflow
from .services import Services
from .sessions import ReviewState, UserSession

MODES = IMAGE_MODES  # the Image tab's: clicks, a box dragged (on its own canvas) or drawn by two clicks
GRID_MAX = 48  # thumbnails sent at once: the first of the filtered list (its count is shown)
THUMB_SIDE = 160
CANDIDATE_SIDE = 240
STEPS = """
1. Open the dataset (or upload its zip): the grid lists its images, what needs a look first.
2. Click an item. Click an instance to refine it (SAM 2 starts from its mask); *Negative click* takes a part away;
   *Box (drag)* or *Box (two clicks)* boxes it.
3. *Add object* and click or box a missed one; *Delete* a wrong one; change its class, or type a new class's name.
4. *Accept* marks it reviewed and opens the next. *Save* writes the dataset (hosted: a download).

Keys: **→** / **n** next, **←** / **p** previous, **a** accept, **Delete** / **d** delete, **z** undo.
"""
# The keys press the tab's buttons, when the tab is shown and no text box has the focus
KEYBOARD_JS = """
() => {
  const keys = {ArrowRight: 'review_next', n: 'review_next', ArrowLeft: 'review_prev', p: 'review_prev',
                a: 'review_accept', Delete: 'review_delete', d: 'review_delete', z: 'review_undo'};
  let dragging = false;  // a box being dragged on the box canvas: a key then would change the item under it
  document.addEventListener('pointerdown', (event) => {
    dragging = Boolean(event.target.closest && event.target.closest('#review_box_canvas'));
  }, true);
  for (const name of ['pointerup', 'pointercancel']) document.addEventListener(name, () => { dragging = false; }, true);
  document.addEventListener('keydown', (event) => {
    const shown = ['review_canvas', 'review_box_canvas'].some((id) => document.getElementById(id)?.offsetParent);
    const focus = document.activeElement;
    const typing = focus && (['TEXTAREA', 'SELECT'].includes(focus.tagName) || focus.isContentEditable ||
                             (focus.tagName === 'INPUT' && !['radio', 'checkbox', 'button'].includes(focus.type)));
    const id = keys[event.key];
    if (!id || typing || dragging || event.ctrlKey || event.metaKey || event.altKey || !shown) return;
    event.preventDefault();
    document.getElementById(id)?.click();
  });
}
"""

Events = dict[str, Any]


class ReviewView(NamedTuple):
    """What the tab shows after an action, in `ReviewPanels.view()` order: the editor's canvas (HxWx3 uint8 RGB
    preview with masks and prompts), the box canvas's value (drag mode) or no change, the active object's
    candidates, the object list, the hint, the active object's class (a dropdown of the dataset's classes that
    takes a new name), the grid [(thumbnail, caption)] and the status line."""

    canvas: Any
    box_canvas: Any
    candidates: Any
    objects: Any
    hint: str
    class_name: Any
    grid: Any
    status: str


@dataclass
class ReviewPanels:
    canvas: gr.Image
    box_canvas: Any  # gradio_image_annotation's image_annotator
    candidates: gr.Gallery
    objects: gr.Radio
    hint: gr.Markdown
    class_name: gr.Dropdown
    grid: gr.Gallery
    status: gr.Markdown
    by_class: gr.Dropdown  # the grid's class filter (not an output of `view`: its choices follow the classes)

    def view(self) -> list[Any]:
        return [getattr(self, name) for name in ReviewView._fields]


class ReviewTab:
    """Handlers of the Review tab; `build` lays it out and wires them (inside a `gr.Blocks` tab)."""

    def __init__(self, services: Services, workflow: ReviewWorkflow) -> None:
        self.services = services
        self.workflow = workflow
        self.opened: list[Any] = []  # the events that open a dataset (set by `build`)
        self.committing: list[Any] = []  # the events that may commit a typed new class (the class lists follow)

    # ------------------------------------------------------------------------------------------------- layout
    def build(self, model_events: Events) -> ReviewPanels:
        private: Events = {"api_visibility": "private"}
        quick: Events = {**private, "show_progress": "hidden"}
        local = self.workflow.local_dataset
        with gr.Row(equal_height=False):
            with gr.Column(scale=5, min_width=340):
                canvas = gr.Image(label="Click an instance to refine it", type="numpy", format="png",
                                  interactive=False, elem_id="review_canvas", show_label=False)  # fmt: skip
                box_canvas = box_annotator("review_box_canvas")
                hint = gr.Markdown("Open a dataset, then click an item of the grid.", elem_id="review_hint")
                with gr.Row(elem_classes=["toolbar"]):
                    mode = gr.Radio(MODES, value=POSITIVE, show_label=False, elem_id="review_mode", container=False)
                with gr.Row(elem_classes=["toolbar"]):
                    previous = gr.Button("← Previous", size="sm", min_width=80, elem_id="review_prev")
                    accept = gr.Button("Accept ✓", size="sm", min_width=80, variant="primary", elem_id="review_accept")
                    following = gr.Button("Next →", size="sm", min_width=80, elem_id="review_next")
                    add_object = gr.Button("Add object", size="sm", min_width=80, elem_id="review_add_object")
                    delete = gr.Button("Delete", size="sm", min_width=80, elem_id="review_delete")
                    undo = gr.Button("Undo", size="sm", min_width=80, elem_id="review_undo")
                candidates = gr.Gallery(label="Candidates for the active object: pick the best", columns=3,
                                        height=160, object_fit="contain", allow_preview=False, format="png",
                                        elem_id="review_candidates", elem_classes=["hide-when-empty"])  # fmt: skip
                objects = gr.Radio([], label="Instances (click one to work on it)", elem_id="review_objects",
                                   elem_classes=["object-list"])  # fmt: skip
                class_name = gr.Dropdown([], label="Class of the active instance (or type a new class)",
                                         allow_custom_value=True, elem_id="review_class")  # fmt: skip
            with gr.Column(scale=3, min_width=300):
                gr.Markdown(STEPS, elem_id="review_steps")
                open_local = gr.Button(f"Open {local.name}" if local else "Open", visible=local is not None,
                                       variant="primary", elem_id="review_open")  # fmt: skip
                upload = gr.File(label="Or upload a dataset zip (auto_annotate folder, YOLO-seg, COCO)",
                                 file_types=[".zip"], type="filepath", elem_id="review_upload", height=90)  # fmt: skip
                with gr.Row():
                    by_class = gr.Dropdown([ANY_CLASS], value=ANY_CLASS, label="Class", elem_id="review_filter_class",
                                           min_width=100)  # fmt: skip
                    status = gr.Dropdown(STATUSES, value=ALL, label="Status", elem_id="review_filter_status",
                                         min_width=100)  # fmt: skip
                    order = gr.Dropdown(ORDERS, value=NEEDS_A_LOOK, label="Order", elem_id="review_order",
                                        min_width=100)  # fmt: skip
                grid = gr.Gallery(label="Items", columns=2, height=420, allow_preview=False, object_fit="contain",
                                  format="png", elem_id="review_items", interactive=False)  # fmt: skip
                line = gr.Markdown("", elem_id="review_status")
                save = gr.Button("Save" if local else "Save and download", elem_id="review_save")
                download = gr.File(label="Corrected dataset", elem_id="review_download",
                                   elem_classes=["hide-when-empty"])  # fmt: skip
        panels = ReviewPanels(canvas, box_canvas, candidates, objects, hint, class_name, grid, line, by_class)
        view, size = panels.view(), len(ReviewView._fields)
        filters = [by_class, status, order]
        opened = [*view, by_class]
        self.opened = [  # the video section lists the dataset's videos after these
            open_local.click(guard(self.open_local, keep=size + 1), filters, opened, **model_events, **private),
            upload.upload(guard(self.open_upload, keep=size + 1), [upload, *filters], opened, **model_events,
                          **private),
        ]  # fmt: skip
        for control in filters:
            control.input(guard(self.list_items, keep=size), filters, view, **private)
        mode.input(guard(self.set_mode, keep=3), mode, [canvas, box_canvas, hint], **quick)
        canvas.select(guard(self.click, keep=size), mode, view, **model_events, **private)
        # no progress overlay: the canvas reports our own redraws as changes too, and an overlay over the box canvas
        # (which shrinks under it) would catch the next drag
        box_canvas.change(guard(self.draw_box, keep=size), box_canvas, view, **model_events, **quick)
        candidates.select(guard(self.pick_candidate, keep=size), None, view, **quick)
        objects.input(guard(self.select_object, keep=size), objects, view, **quick)
        class_name.input(guard(self.relabel, keep=size), [objects, class_name], view, **quick)
        add_object.click(guard(self.add_object, keep=size), class_name, view, **quick)
        delete.click(guard(self.delete, keep=size), None, view, **quick)
        self.undone = undone = undo.click(guard(self.undo, keep=size), None, view, **model_events, **private)
        self.committing = [  # each commits the item in the editor (undo: may take back a commit)
            grid.select(guard(self.pick_item, keep=size), filters, view, **model_events, **private),
            previous.click(guard(self.previous, keep=size), filters, view, **model_events, **private),
            following.click(guard(self.next, keep=size), filters, view, **model_events, **private),
            accept.click(guard(self.accept, keep=size), filters, view, **model_events, **private),
            undone,
            save.click(guard(self.save, keep=size + 1), filters, [*view, download], **private),
        ]
        return panels

    # ----------------------------------------------------------------------------------------------- handlers
    def open_local(self, by_class: str, status: str, order: str, request: gr.Request) -> tuple[Any, ...]:
        """The `--dataset` folder, listed with the filters reset (its classes are the class filter's choices)."""
        with self.services.user_session(request) as user:
            mode, user.review = user.review.image.mode, self.workflow.open_local(user.review)
            user.review.image.mode = mode  # the mode list and the canvas shown stay as the user left them
            return self._opened(user)

    def open_upload(self, path: str | None, by_class: str, status: str, order: str,
                    request: gr.Request) -> tuple[Any, ...]:  # fmt: skip
        with self.services.user_session(request) as user:
            mode, user.review = user.review.image.mode, self.workflow.open_upload(path, user.workdir)
            user.review.image.mode = mode  # as in open_local
            return self._opened(user)

    def list_items(self, by_class: str, status: str, order: str, request: gr.Request) -> ReviewView:
        with self.services.user_session(request) as user:
            return self.view(user, self.workflow.rows(user.review, by_class, status, order))

    def pick_item(self, by_class: str, status: str, order: str, evt: gr.SelectData,
                  request: gr.Request) -> ReviewView:  # fmt: skip
        """An item clicked in the grid (its index in the list as shown) opens in the editor."""
        with self.services.user_session(request) as user:
            shown = user.review.listed[:GRID_MAX]
            index = evt.index if isinstance(evt.index, int) else -1
            if 0 <= index < len(shown):
                self.workflow.load(user.review, shown[index])
            return self.view(user, self.workflow.rows(user.review, by_class, status, order))

    def click(self, mode: str, evt: gr.SelectData, request: gr.Request) -> ReviewView:
        with self.services.user_session(request) as user:
            if mode != user.review.image.mode:
                self.workflow.images.set_mode(user.review.image, mode)
            self.workflow.click(user.review, evt.index)
            return self.view(user)

    def set_mode(self, mode: str, request: gr.Request) -> tuple[Any, Any, str]:
        """Boxes by dragging happen on their own canvas: shown for Box (drag), the click canvas otherwise; the
        item's objects and prompts stay as they are."""
        with self.services.user_session(request) as user:
            self.workflow.images.set_mode(user.review.image, mode)
            return (*mode_canvases(user.review.image), self._hint(user.review))

    def draw_box(self, value: dict[str, Any] | None, request: gr.Request) -> ReviewView:
        """A box dragged on the box canvas (preview pixels) becomes the active instance's box. The canvas reports a
        change for a box just begun (no area yet) and for our own redraws (no box): those change nothing."""
        box = dragged_box(value)
        with self.services.user_session(request) as user:
            if box is None or not self.workflow.drag_box(user.review, box):
                return ReviewView(*(gr.skip() for _ in ReviewView._fields))
            return self.view(user)

    def pick_candidate(self, evt: gr.SelectData, request: gr.Request) -> ReviewView:
        with self.services.user_session(request) as user:
            self.workflow.images.pick_candidate(user.review.image, evt.index)
            return self.view(user)

    def select_object(self, number: Any, request: gr.Request) -> ReviewView:
        with self.services.user_session(request) as user:
            self.workflow.images.select_object(user.review.image, number)
            return self.view(user)

    def relabel(self, number: Any, class_name: str | None, request: gr.Request) -> ReviewView:
        with self.services.user_session(request) as user:
            self.workflow.relabel(user.review, number, class_name)
            return self.view(user)

    def previous(self, by_class: str, status: str, order: str, request: gr.Request) -> ReviewView:
        return self._step(-1, request)

    def next(self, by_class: str, status: str, order: str, request: gr.Request) -> ReviewView:
        return self._step(1, request)

    def accept(self, by_class: str, status: str, order: str, request: gr.Request) -> ReviewView:
        """Reviewed: the next item of the list as it was (the grid's captions follow; the list is filtered again
        when a filter changes, so an accepted item does not vanish under the user's cursor)."""
        with self.services.user_session(request) as user:
            moved = self.workflow.accept(user.review)
            return self.view(user, self._rows_as_listed(user.review), "" if moved else "The last item: accepted.")

    def add_object(self, class_name: str | None, request: gr.Request) -> ReviewView:
        with self.services.user_session(request) as user:
            self.workflow.add_object(user.review, class_name)
            return self.view(user)

    def delete(self, request: gr.Request) -> ReviewView:
        with self.services.user_session(request) as user:
            self.workflow.delete(user.review)
            return self.view(user)

    def undo(self, request: gr.Request) -> ReviewView:
        with self.services.user_session(request) as user:
            note = self.workflow.undo(user.review)  # the dataset's edit of an item: the grid's captions follow
            return self.view(user, self._rows_as_listed(user.review) if note else None, note)

    def save(self, by_class: str, status: str, order: str, request: gr.Request) -> tuple[Any, ...]:
        with self.services.user_session(request) as user:
            text, archive = self.workflow.save(user.review, user.workdir / "review_download")
            view = self.view(user, self._rows_as_listed(user.review), text)
            return (*view, None if archive is None else str(archive))

    # ------------------------------------------------------------------------------------------------- views
    def _opened(self, user: UserSession) -> tuple[Any, ...]:
        rows = self.workflow.rows(user.review)
        classes = gr.update(choices=[ANY_CLASS, *self.workflow.class_names(user.review)], value=ANY_CLASS)
        return (*self.view(user, rows), classes)

    def _step(self, delta: int, request: gr.Request) -> ReviewView:
        with self.services.user_session(request) as user:
            moved = self.workflow.step(user.review, delta)
            return self.view(user, self._rows_as_listed(user.review), "" if moved else "No more items that way.")

    def _rows_as_listed(self, state: ReviewState) -> list[ItemRow]:
        dataset = state.dataset
        if dataset is None:
            return []
        rows = []
        for i, key in enumerate(state.listed):  # why, for the rows the grid shows (their masks are decoded anyway)
            instances = dataset.instances(key)
            why = look_entry(key, instances, dataset.is_reviewed(key)).reasons if i < GRID_MAX else ()
            rows.append(ItemRow(key, tuple(a.class_name for a in instances), dataset.is_reviewed(key),
                                dataset.is_edited(key), why))  # fmt: skip
        return rows

    def view(self, user: UserSession, rows: list[ItemRow] | None = None, note: str = "") -> ReviewView:
        """The tab drawn from the user's review state; the grid is sent again only with `rows` (the list shown)."""
        state = user.review
        image = state.image
        grid: Any = gr.skip()
        if rows is not None:
            shown = [r.key for r in rows[:GRID_MAX]]
            pictures = [(self._thumbnail(state, r.key), self._caption(r)) for r in rows[:GRID_MAX]]
            grid = gr.update(value=pictures, selected_index=shown.index(state.key) if state.key in shown else None)
        status = self._status(state, rows, note)
        choices = [] if state.dataset is None else self.workflow.class_choices(state)
        objects = gr.update(choices=self._object_choices(state), value=str(image.active + 1) if image.objects else None)
        if state.key is None or image.image is None or image.preview is None:
            return ReviewView(None, None, [], objects, self._hint(state), gr.update(choices=choices, value=None),
                              grid, status)  # fmt: skip
        slots = colour_slots(state)
        overlay = overlay_of(image, slots)
        active = image.objects[image.active] if image.objects else None
        class_name = gr.update(choices=choices, value=active.class_name if active is not None else None)
        return ReviewView(overlay, box_canvas_value(image, overlay), candidate_gallery(image, CANDIDATE_SIDE, slots),
                          objects, self._hint(state), class_name, grid, status)  # fmt: skip

    def _thumbnail(self, state: ReviewState, key: str) -> np.ndarray:
        dataset = state.dataset
        if dataset is None:
            raise RuntimeError("Thumbnails need an opened dataset.")
        instances = dataset.instances(key)
        kept = state.thumbnails.get(key)
        if kept is not None and len(kept[0]) == len(instances) and all(map(operator.is_, kept[0], instances)):
            return kept[1]  # an edit makes new instances: the same ones, the same picture
        picture = self.services.open_image(str(dataset.item(key).image_path))
        height, width = picture.shape[:2]
        scale = preview_scale(height, width, max_side=THUMB_SIDE)
        thumbnail = draw_overlay(to_preview(picture, scale), [a.mask for a in instances], scale=scale)
        state.thumbnails[key] = (instances, thumbnail)
        return thumbnail

    @staticmethod
    def _caption(row: ItemRow) -> str:
        count = f"{len(row.classes)} instance{'s' * (len(row.classes) != 1)}"
        return " · ".join(part for part in (row.key.rsplit("/", 1)[-1], count, row.status, row.why) if part)

    @staticmethod
    def _status(state: ReviewState, rows: list[ItemRow] | None, note: str) -> str:
        if state.dataset is None:
            return note
        listed = len(state.listed)
        shown = f"{listed} item{'s' * (listed != 1)} listed" + (
            f" (the first {GRID_MAX} shown)" if listed > GRID_MAX else ""
        )
        where = f"; item {state.listed.index(state.key) + 1} of {listed}" if state.key in state.listed else ""
        return " ".join(part for part in (f"**{state.name}**: {shown}{where}.", note) if part)

    @staticmethod
    def _object_choices(state: ReviewState) -> list[tuple[str, str]]:
        image = state.image
        choices = []
        for i, obj in enumerate(image.objects):
            if state.video is not None and obj in state.originals:  # a video frame's instance: its track's
                what = "corrected" if obj.points or obj.box is not None else "as tracked"
                track = state.tracks[state.originals.index(obj)]
                choices.append((f"Track {track} · {obj.class_name} — {what}", str(i + 1)))
                continue
            what = "edited" if obj.points or obj.box is not None else ("as saved" if obj.prior is not None else "new")
            choices.append((f"Instance {i + 1} · {obj.class_name or 'no class'} — {what}", str(i + 1)))
        return choices

    @staticmethod
    def _hint(state: ReviewState) -> str:
        image = state.image
        if state.key is None:
            return "Open a dataset, then click an item of the grid."
        slots = colour_slots(state)
        number, colour = image.active + 1, color_of(slots[image.active] if slots else image.active).as_hex()
        swatch = f'<span style="color:{colour}">■</span>'
        where = f"**{state.key}**: "
        if image.box_corner is not None:
            return f"{where}{swatch} Instance {number}: now click the box's opposite corner."
        if image.mode == BOX_CLICKS:
            return f"{where}{swatch} Instance {number}: click one corner of its box, then the opposite corner."
        if image.mode == BOX:
            return f"{where}{swatch} Instance {number}: drag a box around it."
        return f"{where}click an instance to refine it ({swatch} instance {number} is active); Negative click removes."
