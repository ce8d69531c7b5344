"""Segmenting one image with clicks and boxes, Gradio-free: the Image tab and the named API both call it.

Every method works on a user's `ImageState` (the caller holds the user's lock) and raises `Refusal` for what it will
not do. Coordinates: clicks and boxes arrive in preview pixels (what the browser shows, `state.scale` times smaller
than the image) and are kept in the image's own pixels, which the model and the exports use.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sam2_model.embedding_cache import ImageFeatures

from .exports import image_exports
from .gpu_tasks import Step, last_of
from .media import preview_scale, to_preview
from .prompts import BOX, BOX_CLICKS, IMAGE_MODES, POSITIVE, PromptError, class_name, click_position, object_number
from .refusals import Refusal
from .services import Services
from .sessions import ImageEdit, ImageObject, ImageState

EVERYTHING_POINTS_PER_SIDE = 16  # "Segment everything": 256 clicks (32x32 takes minutes on a CPU)
EVERYTHING_BATCH = 32  # grid clicks per step of "Segment everything" (its progress moves once per step)

Progress = Callable[..., Any]


class ImageWorkflow:
    """Prompts, objects, candidates, undo, segment everything and exports of one image."""

    def __init__(self, services: Services) -> None:
        self.services = services

    # ------------------------------------------------------------------------------------------------- image
    def open(self, state: ImageState, path: str, progress: Progress) -> ImageState:
        """A new image from an uploaded file -> a fresh state with one empty object, its embedding computed now
        (on the GPU; the file is decoded here), so that clicks only run the mask decoder. The mode carries over."""
        image = self.services.open_image(path)
        progress(0.1, desc="Computing the image embedding")
        scale = preview_scale(*image.shape[:2])
        features = self.services.gpu.embed_image(image)
        # in-process the model's bounded cache holds it (on the GPU); across processes the state carries it (CPU)
        return ImageState(
            image=image, preview=to_preview(image, scale), scale=scale, name=Path(path).name, objects=[ImageObject()],
            mode=state.mode, features=features if self.services.gpu.portable else None,
            min_confidence=state.min_confidence,
        )  # fmt: skip

    def set_mode(self, state: ImageState, mode: str) -> None:
        if mode not in IMAGE_MODES:
            raise Refusal(f"Unknown mode {str(mode)[:40]!r}; choose one of {', '.join(IMAGE_MODES)}.")
        state.mode = mode
        if mode != BOX_CLICKS:
            state.box_corner = None  # a half-drawn box belongs to the two-click mode

    # ------------------------------------------------------------------------------------------------ prompts
    def click(self, state: ImageState, index: Any) -> None:
        """A click on the preview at `index` ([x, y] preview pixels, as Gradio reports it), in the state's mode:
        a positive or negative point for the active object, or a corner of its box (two-click boxes; in the drag
        mode a click is the same as in the two-click mode)."""
        require_image(state)
        obj = active(state)
        x, y = click_position(index, preview_size(state))
        x, y = to_image(state, x, y)
        if state.mode in (BOX, BOX_CLICKS):  # two corners; the first is drawn as a corner mark
            if state.box_corner is None:
                state.box_corner = (x, y)
                state.edits.append(ImageEdit("corner", obj))
                return
            (x0, y0), state.box_corner = state.box_corner, None
            if state.edits and state.edits[-1].kind == "corner":
                state.edits.pop()  # the finished box is one prompt: undo takes it back whole
            set_box(state, obj, [min(x0, x), min(y0, y), max(x0, x), max(y0, y)])
        else:
            limit = self.services.limits.max_prompt_points
            if len(obj.points) >= limit:
                raise Refusal(f"This object has {limit} clicks, the most one object can have: undo some, or add an "
                              "object.")  # fmt: skip
            obj.points.append((x, y, 1 if state.mode == POSITIVE else 0))
            state.edits.append(ImageEdit("point", obj))
        self.segment(state.image, obj, state.features)  # type: ignore[arg-type]

    def drag_box(self, state: ImageState, xyxy_preview: tuple[float, float, float, float]) -> bool:
        """A box dragged on the preview (xyxy preview pixels) becomes the active object's box. Returns False,
        changing nothing, for a box with no area (the drag has only begun, or was a click)."""
        require_image(state)
        x0, y0 = to_image(state, xyxy_preview[0], xyxy_preview[1])
        x1, y1 = to_image(state, xyxy_preview[2], xyxy_preview[3])
        height, width = state.image.shape[:2]  # type: ignore[union-attr]
        corners = [max(0, min(x0, x1)), max(0, min(y0, y1)), min(width - 1, max(x0, x1)), min(height - 1, max(y0, y1))]
        if corners[2] <= corners[0] or corners[3] <= corners[1]:
            return False
        obj = active(state)
        set_box(state, obj, corners)
        self.segment(state.image, obj, state.features)  # type: ignore[arg-type]
        return True

    def pick_candidate(self, state: ImageState, index: Any) -> None:
        obj = state.objects[state.active] if state.objects else None
        candidates = 0 if obj is None or obj.candidates is None else len(obj.candidates)
        if obj is not None and isinstance(index, int) and 0 <= index < candidates:
            obj.choice = index

    def undo(self, state: ImageState) -> None:
        """Take back the most recent prompt of any kind, on whichever object it was given."""
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
            elif edit.kind == "everything":  # Segment everything's or Find's objects, hidden ones too
                state.objects = [o for o in state.objects if o not in edit.added]
                state.hidden = [o for o in state.hidden if o not in edit.added]
            if edit.kind not in ("corner", "everything") and state.image is not None:
                self.segment(state.image, edit.obj, state.features)
            if edit.kind == "everything":
                state.active = min(state.active, len(state.objects) - 1) if state.objects else 0
                if not state.objects:
                    state.objects.append(ImageObject())
            else:
                state.active = state.objects.index(edit.obj)
            return

    # ------------------------------------------------------------------------------------------------ objects
    def add_object(self, state: ImageState) -> None:
        limit = self.services.limits.max_objects
        if len(state.objects) >= limit or room(state, limit) == 0:
            raise Refusal(f"An image can have at most {limit} objects here (hidden found ones count): remove one, "
                          "or lower the Find slider and remove some, first.")  # fmt: skip
        state.objects.append(ImageObject())
        state.active = len(state.objects) - 1
        state.box_corner = None

    def select_object(self, state: ImageState, number: Any) -> None:
        """Object `number` (1-based, as the list shows it) becomes the one clicks go to."""
        if state.objects and number is not None:
            chosen = object_number(number, self.services.limits.max_objects)
            state.active = min(chosen, len(state.objects)) - 1
            state.box_corner = None

    def name_object(self, state: ImageState, number: Any, name: str | None) -> None:
        """Object `number`'s class name (what the exports call it). The number comes with the name, so a name
        typed before choosing another object lands on the object it was typed for, whatever order the two events
        reach the server in."""
        if not state.objects or number is None:
            return
        chosen = object_number(number, self.services.limits.max_objects)
        if chosen <= len(state.objects):
            state.objects[chosen - 1].class_name = class_name(name)

    def remove_object(self, state: ImageState) -> None:
        if state.objects:
            del state.objects[state.active]
            state.active = max(0, min(state.active, len(state.objects) - 1))
            state.box_corner = None

    def clear(self, state: ImageState) -> None:
        """Every object and prompt: the image stays."""
        state.objects, state.active, state.box_corner, state.edits = [ImageObject()], 0, None, []
        state.hidden = []

    def segment_everything(self, state: ImageState, progress: Progress) -> int:
        """SAM 2's automatic masks (a grid of clicks) become objects after the ones with masks, largest first, each
        refinable by clicks; one undo takes them all back. Returns how many were added; Refusal when none."""
        image = require_image(state)
        features = state.features if state.features is not None else self.services.gpu.embed_image(image)

        def show(step: Step) -> None:
            progress(step.done / step.total, desc=f"Segmenting everything: {step.done} of {step.total} grid clicks")

        records = last_of(self.services.gpu.segment_everything(image, features, EVERYTHING_POINTS_PER_SIDE), show)
        if not records:
            raise Refusal("Segment everything found no object the model is confident about.")
        kept = [o for o in state.objects if is_taken(o)]
        added = []
        for record in sorted(records, key=lambda r: -r["area"])[: room(state, self.services.limits.max_objects)]:
            x, y = record["point_coords"][0]
            added.append(
                ImageObject(
                    points=[(float(x), float(y), 1)],  # the grid click that found it: further clicks refine
                    candidates=record["segmentation"][None],
                    scores=[float(record["predicted_iou"])],
                )
            )
        state.objects, state.box_corner = kept + added, None
        state.active = len(kept) if added else 0
        if not state.objects:
            state.objects.append(ImageObject())
        state.edits.append(ImageEdit("everything", added[0] if added else ImageObject(), added=tuple(added)))
        return len(added)

    def export(self, state: ImageState, folder: Path) -> list[Path]:
        """Mask PNGs (zip), COCO JSON with RLE, and YOLO-seg labels with their class list, of every object with a
        mask, named after the upload; COCO's categories are the objects' class names."""
        if state.image is None or not any(o.mask is not None and o.mask.any() for o in state.objects):
            raise Refusal("Nothing to export yet: segment at least one object.")
        objects = [(o.mask, o.class_name or "object") for o in state.objects]
        return image_exports(state.image.shape[:2], objects, state.name, folder)

    # ----------------------------------------------------------------------------------------------- the model
    def segment(self, image: np.ndarray, obj: ImageObject, features: ImageFeatures | None = None) -> None:
        """Predict `obj`'s mask from its prompts: three candidates for one click, one mask otherwise. `features`:
        the image's embedding (computed first, on the GPU, when not given)."""
        if not obj.points and obj.box is None:  # back to what it was before any prompt
            obj.candidates, obj.scores, obj.choice = None if obj.prior is None else obj.prior[None], [], 0
            return
        if features is None:
            features = self.services.gpu.embed_image(image)
        coords = np.array([p[:2] for p in obj.points], np.float32) if obj.points else None
        labels = np.array([p[2] for p in obj.points], np.int32) if obj.points else None
        box = np.array(obj.box, np.float32) if obj.box is not None else None
        multimask = len(obj.points) == 1 and box is None and obj.prior is None  # a prior says which object it is
        obj.candidates, scores = self.services.gpu.segment_image(image, features, coords, labels, box, multimask,
                                                                 obj.prior)  # fmt: skip
        obj.scores = [float(s) for s in scores]
        obj.choice = 0


# ---------------------------------------------------------------------------------------------------- helpers
def require_image(state: ImageState) -> np.ndarray:
    """The state's image (and at least one object to click on); Refusal when nothing is uploaded."""
    if state.image is None:
        raise Refusal("Upload an image first.")
    if not state.objects:
        state.objects.append(ImageObject())
        state.active = 0
    return state.image


def active(state: ImageState) -> ImageObject:
    return state.objects[state.active]


def is_taken(obj: ImageObject) -> bool:
    """Whether an object holds work (a mask, clicks or a box): an empty one is only where the next click goes."""
    return obj.candidates is not None or bool(obj.points) or obj.box is not None


def room(state: ImageState, limit: int) -> int:
    """How many more objects the image may hold under `limit` (`Limits.max_objects`): objects holding work count,
    and so do found objects the Find slider hides (lowering it brings them back). Never negative."""
    return max(0, limit - sum(1 for o in state.objects if is_taken(o)) - len(state.hidden))


def preview_size(state: ImageState) -> tuple[int, int]:
    """(width, height) of the preview the browser shows."""
    if state.preview is None:
        raise PromptError("Upload an image first.")
    return state.preview.shape[1], state.preview.shape[0]


def to_image(state: ImageState, x: float, y: float) -> tuple[int, int]:
    """Preview pixels -> the image's own pixels (the preview is `scale` times smaller)."""
    return int(x * state.scale), int(y * state.scale)


def set_box(state: ImageState, obj: ImageObject, box: list[float]) -> None:
    state.edits.append(ImageEdit("box", obj, previous_box=obj.box))
    obj.box = box
