"""The Image tab: upload, clicks and boxes per object, candidates, segment everything, undo in time order, exports.

The browser gets display-sized previews (at most `media.PREVIEW_MAX_SIDE` a side); clicks come back in preview pixels
and are scaled to the image's own pixels, which the model and the exports use.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np

from sam2_model import AutomaticMaskGenerator, ImagePredictor

from .exports import image_exports
from .media import color_of, draw_overlay, preview_scale, to_preview
from .prompts import PromptError, click_position, object_number
from .sessions import ImageEdit, ImageObject, ImageState, UserSession

if TYPE_CHECKING:
    from .studio import Studio

POSITIVE, NEGATIVE, BOX, BOX_CLICKS = "Positive click", "Negative click", "Box (drag)", "Box (two clicks)"
MODES = [POSITIVE, NEGATIVE, BOX, BOX_CLICKS]
THUMBNAIL_SIDE = 320  # candidates are shown whole at this size, with their scores
EVERYTHING_POINTS_PER_SIDE = 16  # "Segment everything": 256 clicks (32x32 takes minutes on a CPU)

# canvas, box canvas, candidates, object list, hint, class name of the active object
ImageView = tuple[Any, Any, list, Any, str, str]
VIEW_SIZE = 6


class ImageTab:
    """Handlers of the Image tab; each returns the tab's view (`ImageView`)."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    # ------------------------------------------------------------------------------------------------- image
    def upload(self, path: str | None, request: gr.Request, progress: Any = gr.Progress()) -> ImageView:
        """A new image (upload or example): embedded now, so that clicks only run the mask decoder. No file (the
        upload was cleared): an empty tab."""
        if not path:
            with self.studio.user_session(request) as user:
                user.image = ImageState()
                return self.view(user)
        image = self.studio.open_image(path)
        progress(0.1, desc="Computing the image embedding")
        with self.studio.user_session(request) as user:
            scale = preview_scale(*image.shape[:2])
            user.image = ImageState(
                image=image, preview=to_preview(image, scale), scale=scale, name=Path(path).name,
                objects=[ImageObject()],
            )  # fmt: skip
            ImagePredictor(self.studio.model).set_image(image)
            return self.view(user)

    def set_mode(self, mode: str, request: gr.Request) -> tuple[Any, Any, str]:
        """Boxes by dragging happen on their own canvas: show it for Box (drag), the click canvas otherwise."""
        with self.studio.user_session(request) as user:
            state = user.image
            if mode != BOX_CLICKS:
                state.box_corner = None  # a half-drawn box belongs to the two-click mode
            drag = mode == BOX
            box_canvas = self._box_canvas(state) if drag and state.preview is not None else None
            hint = self._hint(state, mode)
            return gr.update(visible=not drag), gr.update(visible=drag, value=box_canvas), hint

    # ------------------------------------------------------------------------------------------------ prompts
    def click(self, mode: str, evt: gr.SelectData, request: gr.Request) -> ImageView:
        with self.studio.user_session(request) as user:
            state = self._require_image(user)
            obj = self._active(state)
            try:
                x, y = click_position(evt.index, self._preview_size(state))
            except PromptError as error:
                raise gr.Error(str(error)) from error
            x, y = self._to_image(state, x, y)
            if mode in (BOX, BOX_CLICKS):  # two corners; the first is drawn as a corner mark
                if state.box_corner is None:
                    state.box_corner = (x, y)
                    state.edits.append(ImageEdit("corner", obj))
                    return self.view(user, mode)
                (x0, y0), state.box_corner = state.box_corner, None
                if state.edits and state.edits[-1].kind == "corner":
                    state.edits.pop()  # the finished box is one prompt: undo takes it back whole
                self._set_box(state, obj, [min(x0, x), min(y0, y), max(x0, x), max(y0, y)])
            else:
                limit = self.studio.limits.max_prompt_points
                if len(obj.points) >= limit:
                    raise gr.Error(f"This object has {limit} clicks, the most one object can have: undo some, or "
                                   "add an object.")  # fmt: skip
                obj.points.append((x, y, 1 if mode == POSITIVE else 0))
                state.edits.append(ImageEdit("point", obj))
            self.segment(state.image, obj)  # type: ignore[arg-type]
            return self.view(user, mode)

    def draw_box(self, value: dict | None, request: gr.Request) -> ImageView:
        """A box dragged on the box canvas (preview pixels) becomes the active object's box."""
        boxes = (value or {}).get("boxes") or []
        if not boxes:  # our own update of the canvas (it reports a change too), or a box removed
            return tuple(gr.skip() for _ in range(VIEW_SIZE))
        with self.studio.user_session(request) as user:
            state = self._require_image(user)
            box = boxes[-1]
            x0, y0 = self._to_image(state, float(box["xmin"]), float(box["ymin"]))
            x1, y1 = self._to_image(state, float(box["xmax"]), float(box["ymax"]))
            width, height = state.image.shape[1], state.image.shape[0]  # type: ignore[union-attr]
            corners = [max(0, x0), max(0, y0), min(width - 1, x1), min(height - 1, y1)]
            if corners[2] <= corners[0] or corners[3] <= corners[1]:
                raise gr.Error("Drag a box around the object: press, move, release.")
            obj = self._active(state)
            self._set_box(state, obj, corners)
            self.segment(state.image, obj)  # type: ignore[arg-type]
            return self.view(user, BOX)

    def pick_candidate(self, evt: gr.SelectData, request: gr.Request) -> ImageView:
        with self.studio.user_session(request) as user:
            obj = user.image.objects[user.image.active] if user.image.objects else None
            candidates = 0 if obj is None or obj.candidates is None else len(obj.candidates)
            if obj is not None and isinstance(evt.index, int) and 0 <= evt.index < candidates:
                obj.choice = evt.index
            return self.view(user)

    def undo(self, request: gr.Request) -> ImageView:
        """Take back the most recent prompt of any kind, on whichever object it was given."""
        with self.studio.user_session(request) as user:
            state = user.image
            while state.edits:
                edit = state.edits.pop()
                if edit.obj not in state.objects:
                    continue  # its object was removed since
                if edit.kind == "corner":
                    state.box_corner = None
                elif edit.kind == "point" and edit.obj.points:
                    edit.obj.points.pop()
                elif edit.kind == "box":
                    edit.obj.box = edit.previous_box
                if edit.kind != "corner" and state.image is not None:
                    self.segment(state.image, edit.obj)
                state.active = state.objects.index(edit.obj)
                break
            return self.view(user)

    # ------------------------------------------------------------------------------------------------ objects
    def add_object(self, request: gr.Request) -> ImageView:
        with self.studio.user_session(request) as user:
            limit = self.studio.limits.max_objects
            if len(user.image.objects) >= limit:
                raise gr.Error(f"An image can have at most {limit} objects here: remove one first.")
            user.image.objects.append(ImageObject())
            user.image.active = len(user.image.objects) - 1
            user.image.box_corner = None
            return self.view(user)

    def select_object(self, number: Any, request: gr.Request) -> ImageView:
        with self.studio.user_session(request) as user:
            if user.image.objects and number is not None:
                try:
                    chosen = object_number(number, self.studio.limits.max_objects)
                except PromptError as error:
                    raise gr.Error(str(error)) from error
                user.image.active = min(chosen, len(user.image.objects)) - 1
                user.image.box_corner = None
            return self.view(user)

    def name_object(self, name: str | None, request: gr.Request) -> ImageView:
        """The active object's class name (what the exports call it)."""
        with self.studio.user_session(request) as user:
            if user.image.objects:
                self._active(user.image).class_name = " ".join(str(name or "").split())[:64]
            return self.view(user)

    def remove_object(self, request: gr.Request) -> ImageView:
        with self.studio.user_session(request) as user:
            state = user.image
            if state.objects:
                del state.objects[state.active]
                state.active = max(0, min(state.active, len(state.objects) - 1))
                state.box_corner = None
            return self.view(user)

    def clear(self, request: gr.Request) -> tuple:
        """Every object and prompt, and the downloads: the image stays."""
        with self.studio.user_session(request) as user:
            state = user.image
            state.objects, state.active, state.box_corner, state.edits = [ImageObject()], 0, None, []
            return (*self.view(user), None)

    def segment_everything(self, request: gr.Request, progress: Any = gr.Progress()) -> ImageView:
        """SAM 2's automatic masks (a grid of clicks) become objects, largest first, each refinable by clicks."""
        with self.studio.user_session(request) as user:
            state = self._require_image(user)
            progress(0.1, desc="Segmenting everything (a grid of clicks)")
            generator = AutomaticMaskGenerator(self.studio.model, points_per_side=EVERYTHING_POINTS_PER_SIDE)
            records = generator.generate(state.image)  # type: ignore[arg-type]
            room = self.studio.limits.max_objects - sum(1 for o in state.objects if o.mask is not None)
            if not records:
                raise gr.Error("Segment everything found no object the model is confident about.")
            kept = [o for o in state.objects if o.mask is not None]
            for record in sorted(records, key=lambda r: -r["area"])[: max(0, room)]:
                x, y = record["point_coords"][0]
                kept.append(
                    ImageObject(
                        points=[(float(x), float(y), 1)],  # the grid click that found it: further clicks refine
                        candidates=record["segmentation"][None],
                        scores=[float(record["predicted_iou"])],
                    )
                )
            state.objects, state.active, state.box_corner, state.edits = kept, 0, None, []
            return self.view(user)

    def export(self, request: gr.Request) -> list[str]:
        """Mask PNGs (zip), COCO JSON with RLE, and YOLO-seg labels of every object with a mask, named after the
        upload; COCO's categories are the objects' class names."""
        with self.studio.user_session(request) as user:
            state = user.image
            if state.image is None or not any(o.mask is not None and o.mask.any() for o in state.objects):
                raise gr.Error("Nothing to export yet: segment at least one object.")
            objects = [(o.mask, o.class_name or "object") for o in state.objects]
            files = image_exports(state.image.shape[:2], objects, state.name, user.workdir / "image_export")
            return [str(path) for path in files]

    # ------------------------------------------------------------------------------------------------ helpers
    def segment(self, image: np.ndarray, obj: ImageObject) -> None:
        """Predict `obj`'s mask from its prompts: three candidates for one click, one mask otherwise."""
        if not obj.points and obj.box is None:
            obj.candidates, obj.scores, obj.choice = None, [], 0
            return
        predictor = ImagePredictor(self.studio.model)
        predictor.set_image(image)  # the embedding is cached: only the first click on an image runs the encoder
        coords = np.array([p[:2] for p in obj.points], np.float32) if obj.points else None
        labels = np.array([p[2] for p in obj.points], np.int32) if obj.points else None
        box = np.array(obj.box, np.float32) if obj.box is not None else None
        multimask = len(obj.points) == 1 and box is None
        masks, scores, _ = predictor.predict(coords, labels, box, multimask_output=multimask)
        order = np.argsort(-scores)
        obj.candidates = masks[order].astype(bool)
        obj.scores = [float(s) for s in scores[order]]
        obj.choice = 0

    def view(self, user: UserSession, mode: str | None = None) -> ImageView:
        """(canvas, box canvas, candidates of the active object (when one click left a choice), object list, hint,
        active object's class name)."""
        state = user.image
        objects = gr.update(choices=self._object_choices(state), value=str(state.active + 1) if state.objects else None)
        if state.image is None or state.preview is None:
            return None, None, [], objects, self._hint(state, mode), ""
        overlay = self._overlay(state)
        gallery = []
        active = self._active(state) if state.objects else None
        if active is not None and active.candidates is not None and len(active.candidates) > 1:
            height, width = state.image.shape[:2]
            small = preview_scale(height, width, max_side=THUMBNAIL_SIDE)
            base = to_preview(state.image, small)
            for i, candidate in enumerate(active.candidates):
                masks: list[np.ndarray | None] = [None] * state.active + [candidate]
                caption = f"candidate {i + 1}: score {active.scores[i]:.2f}"
                gallery.append((draw_overlay(base, masks, scale=small), caption))
        box_canvas = {"image": overlay, "boxes": []} if mode == BOX else gr.skip()
        class_name = active.class_name if active is not None else ""
        return overlay, box_canvas, gallery, objects, self._hint(state, mode), class_name

    def _overlay(self, state: ImageState) -> np.ndarray:
        assert state.preview is not None  # callers checked
        corner = None if state.box_corner is None else (state.box_corner[0], state.box_corner[1], state.active)
        return draw_overlay(
            state.preview,
            [o.mask for o in state.objects],
            [o.points for o in state.objects],
            [o.box for o in state.objects],
            scale=state.scale,
            corner=corner,
        )

    def _box_canvas(self, state: ImageState) -> dict:
        return {"image": self._overlay(state), "boxes": []}

    @staticmethod
    def _object_choices(state: ImageState) -> list[tuple[str, str]]:
        choices = []
        for i, obj in enumerate(state.objects):
            what = [f"{len(obj.points)} click{'s' * (len(obj.points) != 1)}"] if obj.points else []
            what += ["box"] if obj.box is not None else []
            what += [f"score {obj.scores[obj.choice]:.2f}"] if obj.scores else []
            name = f" · {obj.class_name}" if obj.class_name else ""
            choices.append((f"Object {i + 1}{name} — {', '.join(what) or 'no prompt yet'}", str(i + 1)))
        return choices

    @staticmethod
    def _hint(state: ImageState, mode: str | None) -> str:
        if state.image is None:
            return "Upload an image, or pick an example."
        number, colour = state.active + 1, color_of(state.active).as_hex()
        swatch = f'<span style="color:{colour}">■</span>'
        if state.box_corner is not None:
            return f"{swatch} Object {number}: now click the box's opposite corner."
        if mode == BOX:
            return f"{swatch} Object {number}: drag a box around it."
        if mode == BOX_CLICKS:
            return f"{swatch} Object {number}: click one corner of its box, then the opposite corner."
        return f"{swatch} Object {number}: click on it (Negative click removes a part)."

    @staticmethod
    def _require_image(user: UserSession) -> ImageState:
        state = user.image
        if state.image is None:
            raise gr.Error("Upload an image first.")
        if not state.objects:
            state.objects.append(ImageObject())
            state.active = 0
        return state

    @staticmethod
    def _active(state: ImageState) -> ImageObject:
        return state.objects[state.active]

    @staticmethod
    def _preview_size(state: ImageState) -> tuple[int, int]:
        assert state.preview is not None
        return state.preview.shape[1], state.preview.shape[0]

    @staticmethod
    def _to_image(state: ImageState, x: float, y: float) -> tuple[int, int]:
        """Preview pixels -> the image's own pixels (the preview is `scale` times smaller)."""
        return int(x * state.scale), int(y * state.scale)

    @staticmethod
    def _set_box(state: ImageState, obj: ImageObject, box: list[float]) -> None:
        state.edits.append(ImageEdit("box", obj, previous_box=obj.box))
        obj.box = box
