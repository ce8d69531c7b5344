"""The Image tab: upload, clicks and boxes per object, candidates, undo, exports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np

from sam2_model import ImagePredictor

from .exports import image_exports
from .media import draw_overlay
from .prompts import PromptError, click_position, object_number
from .sessions import ImageObject, UserSession

if TYPE_CHECKING:
    from .studio import Studio

POSITIVE, NEGATIVE, BOX = "Positive click", "Negative click", "Box (two corner clicks)"

ImageView = tuple[np.ndarray | None, list, str, int]  # overlay, candidates gallery, object list, active number


class ImageTab:
    """Handlers of the Image tab; each returns the tab's view (`ImageView`)."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    def upload(self, path: str | None, request: gr.Request, progress: Any = gr.Progress()) -> ImageView:
        image = self.studio.open_image(path)
        progress(0.1, desc="Computing the image embedding")
        with self.studio.user_session(request) as user:
            state = user.image
            state.image, state.objects, state.active, state.box_corner = image, [ImageObject()], 0, None
            ImagePredictor(self.studio.model).set_image(image)  # embed now: later clicks only run the mask decoder
            return self.view(user)

    def click(self, mode: str, evt: gr.SelectData, request: gr.Request) -> ImageView:
        with self.studio.user_session(request) as user:
            state = user.image
            if state.image is None:
                raise gr.Error("Upload an image first.")
            if not state.objects:
                state.objects.append(ImageObject())
                state.active = 0
            try:
                x, y = click_position(evt.index, (state.image.shape[1], state.image.shape[0]))
            except PromptError as error:
                raise gr.Error(str(error)) from error
            obj = state.objects[state.active]
            if mode == BOX:
                if state.box_corner is None:
                    state.box_corner = (x, y)
                    return self.view(user)
                (x0, y0), state.box_corner = state.box_corner, None
                obj.box = [min(x0, x), min(y0, y), max(x0, x), max(y0, y)]
            else:
                limit = self.studio.limits.max_prompt_points
                if len(obj.points) >= limit:
                    raise gr.Error(f"This object has {limit} clicks, the most one object can have: undo some, or "
                                   "start a new object.")  # fmt: skip
                obj.points.append((x, y, 1 if mode == POSITIVE else 0))
            self.segment(state.image, obj)
            return self.view(user)

    def pick_candidate(self, evt: gr.SelectData, request: gr.Request) -> ImageView:
        with self.studio.user_session(request) as user:
            obj = user.image.objects[user.image.active] if user.image.objects else None
            candidates = 0 if obj is None or obj.candidates is None else len(obj.candidates)
            if obj is not None and isinstance(evt.index, int) and 0 <= evt.index < candidates:
                obj.choice = evt.index
            return self.view(user)

    def new_object(self, request: gr.Request) -> ImageView:
        with self.studio.user_session(request) as user:
            limit = self.studio.limits.max_objects
            if len(user.image.objects) >= limit:
                raise gr.Error(f"An image can have at most {limit} objects here: remove one first.")
            user.image.objects.append(ImageObject())
            user.image.active = len(user.image.objects) - 1
            user.image.box_corner = None
            return self.view(user)

    def select_object(self, number: float | None, request: gr.Request) -> ImageView:
        with self.studio.user_session(request) as user:
            if user.image.objects and number is not None:
                try:
                    chosen = object_number(number, self.studio.limits.max_objects)
                except PromptError as error:
                    raise gr.Error(str(error)) from error
                user.image.active = min(chosen, len(user.image.objects)) - 1
            return self.view(user)

    def undo(self, request: gr.Request) -> ImageView:
        with self.studio.user_session(request) as user:
            state = user.image
            if state.box_corner is not None:
                state.box_corner = None
            elif state.objects:
                obj = state.objects[state.active]
                if obj.points:
                    obj.points.pop()
                elif obj.box is not None:
                    obj.box = None
                if state.image is not None:
                    self.segment(state.image, obj)
            return self.view(user)

    def remove_object(self, request: gr.Request) -> ImageView:
        with self.studio.user_session(request) as user:
            state = user.image
            if state.objects:
                del state.objects[state.active]
                state.active = max(0, min(state.active, len(state.objects) - 1))
            return self.view(user)

    def clear(self, request: gr.Request) -> ImageView:
        with self.studio.user_session(request) as user:
            user.image.objects, user.image.active, user.image.box_corner = [ImageObject()], 0, None
            return self.view(user)

    def export(self, request: gr.Request) -> list[str]:
        """Mask PNGs (zip), COCO JSON with RLE, and YOLO-seg labels of every object with a mask."""
        with self.studio.user_session(request) as user:
            state = user.image
            if state.image is None or not any(o.mask is not None and o.mask.any() for o in state.objects):
                raise gr.Error("Nothing to export yet: segment at least one object.")
            masks = [o.mask for o in state.objects]
            files = image_exports(state.image.shape[:2], masks, user.workdir / "image_export")
            return [str(path) for path in files]

    # ------------------------------------------------------------------------------------------------- helpers
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

    def view(self, user: UserSession) -> ImageView:
        """(overlay, candidate gallery of the active object, object list as Markdown, active object number)."""
        state = user.image
        if state.image is None:
            return None, [], "No image yet.", 1
        overlay = draw_overlay(
            state.image,
            [o.mask for o in state.objects],
            [o.points for o in state.objects],
            [o.box for o in state.objects],
        )
        if state.box_corner is not None:
            overlay = draw_overlay(overlay, [], [[(*state.box_corner, 1)]])
        gallery = []
        active = state.objects[state.active] if state.objects else None
        if active is not None and active.candidates is not None:
            for i, candidate in enumerate(active.candidates):
                masks: list[np.ndarray | None] = [None] * state.active + [candidate]
                gallery.append((draw_overlay(state.image, masks), f"{active.scores[i]:.3f}"))
        lines = [
            f"{'**→**' if i == state.active else '-'} object {i + 1}: {len(o.points)} click(s)"
            f"{', box' if o.box is not None else ''}{f', score {o.scores[o.choice]:.3f}' if o.scores else ''}"
            for i, o in enumerate(state.objects)
        ]
        return overlay, gallery, "\n".join(lines) or "No objects yet: click on the image.", state.active + 1
