"""Find by name ("person, red car") and Find similar (one example box), Gradio-free: the Image tab and the named API
both call it.

An open-vocabulary detector lent by the services' `finders` pool proposes boxes, SAM 2 segments them in one batched
call (`find_tasks`), and each box becomes an object of the user's `ImageState`, named after the phrase that found
it, with the detector's score as its `confidence`. The confidence threshold only moves objects between
`state.objects` and `state.hidden`: no model call. Every method raises `Refusal` for what it will not do.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from annotate.detectors import load_text_embeddings, text_encoder_of

from .find_tasks import VISUAL_PROMPT_DETECTORS, FindRequest, FindTasks, Found
from .image_workflow import active, require_image, room
from .prompts import class_name, parse_phrases
from .refusals import FoundNothing, Refusal
from .services import Services
from .sessions import ImageEdit, ImageObject, ImageState

DETECT_FLOOR = 0.05  # Find detects down to this score (or the slider's, if lower): the slider then reveals them
MAX_CACHED_PHRASE_LISTS = 64  # text embeddings kept per (detector, phrase list): 16 x 512 floats each
SAME_AS_EXAMPLE_IOU = 0.7  # a box found by Find similar that overlaps its example this much is the example itself

Progress = Callable[..., Any]


def no_progress(*_args: Any, **_kwargs: Any) -> None:
    return None


class FindWorkflow:
    """Find and Find similar on a user's `ImageState` (the caller holds the user's lock)."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.tasks = FindTasks(services.gpu)
        self._embeddings: OrderedDict[tuple[str, tuple[str, ...]], torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def detectors(self) -> list[str]:
        """The open-vocabulary detectors users may pick, the default first."""
        return list(self.services.finders.names)

    def find(
        self,
        state: ImageState,
        text: Any,
        detector: str | None = None,
        confidence: Any = None,
        progress: Progress = no_progress,
    ) -> int:
        """Every instance of the names in `text` ("person, red car") becomes an object named after its phrase; the
        threshold (`confidence`, else the state's) hides the ones scored below it. Returns how many were found."""
        phrases = parse_phrases(text)
        image = require_image(state)
        name, threshold, room = self.detector_name(detector), self._threshold(state, confidence), self._room(state)
        progress(0.1, desc=f"Finding {', '.join(phrases)}")
        with self.services.finders.borrow(name) as finder:
            request = FindRequest(
                phrases=tuple(phrases), embeddings=self.embeddings(name, finder, phrases),
                conf=min(threshold, DETECT_FLOOR), max_det=room,
            )  # fmt: skip
            found = self.tasks.find_objects(finder, image, state.features, request)
        if not len(found):
            raise FoundNothing(f"Found no {' or '.join(phrases)} scored {request.conf:g} or more.")
        return self._add(state, found, [phrases[int(i)] for i in found.class_id], threshold)

    def find_similar(
        self, state: ImageState, detector: str | None = None, confidence: Any = None, progress: Progress = no_progress
    ) -> int:
        """The other instances of what the active object's box holds (YOLOE's visual prompt: no text encoder), named
        as that object (else "similar"). Returns how many were found."""
        image = require_image(state)
        example = active(state)
        if example.box is None:
            raise Refusal("Find similar: draw a box around one example first (mode Box), then choose Find similar.")
        name, threshold, room = self.detector_name(detector), self._threshold(state, confidence), self._room(state)
        progress(0.1, desc="Finding similar objects")
        with self.services.finders.borrow(name) as finder:
            if type(finder).__name__ not in VISUAL_PROMPT_DETECTORS:
                raise Refusal(f"Find similar needs a YOLOE detector; {name} takes names only.")
            box = (example.box[0], example.box[1], example.box[2], example.box[3])
            request = FindRequest(example=box, conf=min(threshold, DETECT_FLOOR), max_det=room + 1)
            found = self.tasks.find_objects(finder, image, state.features, request)
        others = [i for i in range(len(found)) if box_iou(found.xyxy[i], box) < SAME_AS_EXAMPLE_IOU][:room]
        if not others:
            raise FoundNothing(f"Found nothing else like the example scored {request.conf:g} or more.")
        kept = Found(*(field[others] for field in (found.xyxy, found.confidence, found.class_id, found.masks,
                                                   found.mask_scores)))  # fmt: skip
        return self._add(state, kept, [example.class_name or "similar"] * len(kept), threshold)

    def set_threshold(self, state: ImageState, confidence: Any) -> None:
        """Found objects scored below `confidence` (0..1) leave the object list (and the picture and the exports);
        those at or above it come back, best first, after the others. Objects a person prompted always stay."""
        state.min_confidence = value = self._threshold(state, confidence)
        everyone = state.objects + state.hidden
        shown = [o for o in state.objects if o.confidence is None or o.confidence >= value]
        back = sorted((o for o in state.hidden if o.confidence is not None and o.confidence >= value),
                      key=lambda o: -(o.confidence or 0.0))  # fmt: skip
        before = state.objects[state.active] if 0 <= state.active < len(state.objects) else None
        if back:  # an empty object waiting for clicks gives way to the ones coming back
            shown = [o for o in shown if o.candidates is not None or o.points or o.box is not None]
        state.objects = shown + back
        state.hidden = [o for o in everyone if o.confidence is not None and o.confidence < value]
        if not state.objects:
            state.objects.append(ImageObject())
        state.active = (
            state.objects.index(before) if before in state.objects else min(state.active, len(state.objects) - 1)
        )
        state.box_corner = None

    def embeddings(self, name: str, finder: Any, phrases: list[str]) -> torch.Tensor:
        """The 1xNxD float32 CPU text embeddings of `phrases` for detector `name`: cached per phrase list, from the
        server's text-embeddings file when it has them all, else from the detector's text encoder (a GPU task).
        Refusal naming the file and the fixes when neither can give them."""
        key = (name, tuple(phrases))
        with self._lock:
            if key in self._embeddings:
                self._embeddings.move_to_end(key)
                return self._embeddings[key]
        path, missing = self.services.finders.text_embeddings, ""
        vectors = None
        if path is not None:
            try:
                vectors = load_text_embeddings(path, phrases)
            except ValueError as error:  # a phrase the file lacks: its text encoder may still answer
                missing = f"{path.name} has no embedding for some of them ({str(error).split(' (')[0]}). "
        if vectors is None:
            try:
                vectors = self.tasks.embed_phrases(finder, tuple(phrases))
            except ConnectionError as error:
                raise Refusal(
                    f"Find by name needs {name}'s text encoder, {text_encoder_of(finder)}, which could not be loaded "
                    f"here (offline?). {missing}On a machine with internet, save the names' embeddings with "
                    f"annotate.detectors.save_text_embeddings(model, {phrases!r}, 'names.npz') and start the app with "
                    "--text-embeddings names.npz; or use Find similar: draw a box around one example (it needs no "
                    "text encoder)."
                ) from error
        with self._lock:
            self._embeddings[key] = vectors
            while len(self._embeddings) > MAX_CACHED_PHRASE_LISTS:
                self._embeddings.popitem(last=False)
        return vectors

    # ----------------------------------------------------------------------------------------------- helpers
    def _add(self, state: ImageState, found: Found, names: list[str], threshold: float) -> int:
        """Found objects after the objects that have prompts (empty ones go), then the threshold applied; one undo
        takes them all back."""
        kept = [o for o in state.objects if o.candidates is not None or o.points or o.box is not None]
        added = [
            ImageObject(box=[float(v) for v in found.xyxy[i]], candidates=found.masks[i][None],
                        scores=[float(found.mask_scores[i])], class_name=class_name(names[i]),
                        confidence=float(found.confidence[i]))
            for i in range(len(found))
        ]  # fmt: skip
        state.objects, state.active = kept + added, len(kept)
        state.edits.append(ImageEdit("everything", added[0], added=tuple(added)))
        self.set_threshold(state, threshold)
        first = next((o for o in added if o in state.objects), None)
        state.active = state.objects.index(first) if first is not None else 0
        return len(added)

    def detector_name(self, name: str | None) -> str:
        """`name` checked against the pool's (None or "": the default); Refusal for another."""
        names = self.detectors
        if name is None or name == "":
            return names[0]
        if name not in names:
            raise Refusal(f"Unknown detector {str(name)[:40]!r}; choose one of {', '.join(names)}.")
        return name

    @staticmethod
    def _threshold(state: ImageState, confidence: Any) -> float:
        return check_confidence(confidence, state.min_confidence)

    def _room(self, state: ImageState) -> int:
        limit = self.services.limits.max_objects
        left = room(state, limit)
        if left == 0:
            raise Refusal(f"An image can have at most {limit} objects here (hidden found ones count): remove some, "
                          "or Clear all, first.")  # fmt: skip
        return left


def check_confidence(confidence: Any, default: float) -> float:
    """A confidence from a slider or a program: a number from 0 to 1 (None: `default`); Refusal otherwise."""
    if confidence is None:
        return default
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        raise Refusal(f"The confidence must be a number from 0 to 1, got {str(confidence)[:40]!r}.")
    return float(confidence)


def box_iou(a: np.ndarray | tuple[float, ...], b: np.ndarray | tuple[float, ...]) -> float:
    """Intersection over union of two xyxy boxes (0 when either has no area)."""
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, float(width)) * max(0.0, float(height))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / float(union) if union > 0 else 0.0
