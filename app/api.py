"""The named API for programs (gradio_client): /segment_image, /find, /track_video, /auto_annotate.

Sessionless: each call gets a one-shot session, not counted among live users, freed when the call returns.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np

from annotate.settings import DetectorSettings
from sam2_model.rle import mask_to_rle

from .annotate_workflow import AnnotateWorkflow, parse_classes
from .find_workflow import FindWorkflow
from .image_workflow import ImageWorkflow
from .media import draw_overlay
from .prompts import (
    BOX_USAGE,
    POINTS_USAGE,
    PROMPTS_USAGE,
    PromptError,
    check_box,
    check_points,
    check_video_prompts,
    parse_json,
    parse_phrases,
)
from .refusals import FoundNothing, Refusal
from .services import Services
from .sessions import ImageObject, ImageState, UserSession
from .video_workflow import VideoWorkflow, require_session

API_FILES_TTL_S = 600  # an API call's result files outlive the call this long (Gradio copies them right away)
MAX_VIDEO_PROMPTS = 256  # prompt items per /track_video call


def no_progress(*_args: Any, **_kwargs: Any) -> None:
    return None


class NamedApi:
    """Handlers of the named endpoints: the same workflows as the tabs, called with a one-shot session."""

    def __init__(
        self,
        services: Services,
        image: ImageWorkflow,
        video: VideoWorkflow,
        annotate: AnnotateWorkflow,
        find: FindWorkflow | None = None,
    ) -> None:
        self.services = services
        self.image = image
        self.video = video
        self.annotate = annotate
        self.finder = find or FindWorkflow(services)

    def segment_image(
        self, image_path: str, points_json: str | None, box_json: str | None
    ) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
        """/segment_image: image file, points [[x, y, label], ...] and box [x0, y0, x1, y1] (JSON, image pixels) ->
        (binary mask PNG 0/255 at the image's size, overlay PNG, scores)."""
        # the cheap checks first: a bad prompt costs no image decoding
        points_value = parse_json(points_json or None, POINTS_USAGE)
        box_value = parse_json(box_json or None, BOX_USAGE)
        image = self.services.open_image(image_path)
        size = (image.shape[1], image.shape[0])
        points = check_points(points_value, size, self.services.limits.max_prompt_points)
        obj = ImageObject(points=points, box=check_box(box_value, size))
        if not obj.points and obj.box is None:
            raise Refusal("Give at least one point or a box.")
        self.image.segment(image, obj)
        mask = obj.mask
        if mask is None:
            raise Refusal("Give at least one point or a box.")
        overlay = draw_overlay(image, [mask], [obj.points], [obj.box])
        return mask.astype(np.uint8) * 255, overlay, {"scores": obj.scores, "chosen": obj.choice}

    def find(
        self, image_path: str, phrases: str | None, box_json: str | None, detector: str | None, confidence: float
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """/find: image file, names ("person, red car") or an example box [x0, y0, x1, y1] (JSON, image pixels; one
        of the two), detector name ("" for the default), the lowest detector score kept (0..1) -> (overlay PNG,
        {"objects": [{"name", "confidence" (the detector's), "score" (SAM 2's), "box" xyxy, "mask" (COCO RLE at the
        image's size)}]}, best first); nothing scored that high: the image and an empty list."""
        text = phrases if phrases and phrases.strip() else None
        box_value = parse_json(box_json or None, BOX_USAGE)
        if (text is None) == (box_value is None):
            raise PromptError('Give either names to find ("person, red car") or an example box [x0, y0, x1, y1].')
        if text is not None:
            parse_phrases(text)  # the cheap checks first: bad names cost no image decoding
        image = self.services.open_image(image_path)
        state = ImageState(image=image, preview=image, objects=[ImageObject()])
        try:
            if text is not None:
                self.finder.find(state, text, detector or None, confidence)
            else:
                state.objects = [ImageObject(box=check_box(box_value, (image.shape[1], image.shape[0])))]
                self.finder.find_similar(state, detector or None, confidence)
        except FoundNothing:
            return image, {"objects": []}
        found = [o for o in state.objects if o.confidence is not None and o.mask is not None]
        overlay = draw_overlay(image, [o.mask for o in found], boxes=[o.box for o in found])
        objects = [
            {"name": o.class_name, "confidence": o.confidence, "score": o.scores[0], "box": o.box,
             "mask": mask_to_rle(o.mask)}
            for o in found
            if o.mask is not None
        ]  # fmt: skip
        return overlay, {"objects": objects}

    def track_video(self, video_path: str, prompts_json: str) -> Iterator[tuple[str | None, str | None]]:
        """/track_video: video file and prompts JSON [{"frame": 0, "obj_id": 1, "points": [[x, y, label]],
        "box": [x0, y0, x1, y1] or null}] -> (overlay video, masks zip).

        A generator: it yields (None, None) after each tracked frame and the files last (gradio_client's `predict`
        returns the last). Gradio stops asking for more when the client disconnects, so the tracking stops there
        and its session is freed."""
        value = parse_json(prompts_json, PROMPTS_USAGE)
        if not isinstance(value, list) or not value:
            raise PromptError(f"{PROMPTS_USAGE}.")
        with one_shot_session() as user:
            self.video.open_video(user, video_path, no_progress)
            session = require_session(user)
            prompts = check_video_prompts(
                value,
                session.num_frames,
                (session.video_width, session.video_height),
                self.services.limits.max_prompt_points,
                MAX_VIDEO_PROMPTS,
            )
            for prompt in prompts:
                coords = [[x, y] for x, y, _ in prompt.points] or None
                labels = [label for _, _, label in prompt.points] or None
                self.video.add_prompt(user, prompt.frame, prompt.obj_id, points=coords, labels=labels, box=prompt.box)
            for step in self.video.tracking_steps(user):
                # (None, None) after each frame: a client that has gone stops being asked, and the tracking stops
                yield (None, None) if step.files is None else (str(step.files[0]), str(step.files[1]))

    def auto_annotate(self, files: list[str], detector: str, classes: str) -> str:
        """/auto_annotate: image and video files or zips of them, detector name, class ids ("0,2" or "": all) or,
        for an open-vocabulary detector (YOLOE, YOLO-World), names ("person, forklift") -> the dataset zip (videos:
        frames, labels, COCO with track ids, vis.json, tracks/, previews/)."""
        phrases = parse_phrases(classes) if self.annotate.is_open_vocabulary(detector) else None
        class_ids = None if phrases is not None else parse_classes(classes)
        with one_shot_session() as user:
            conf = DetectorSettings.conf  # the detector's default threshold
            _, archive, _ = self.annotate.annotate(user, files, detector, class_ids, conf, no_progress, phrases=phrases)
            return archive


@contextlib.contextmanager
def one_shot_session() -> Iterator[UserSession]:
    """A session for one API call: not counted among live users, its tensors freed when the call returns and its
    files removed once Gradio has copied the results (Gradio's own cache is cleaned by `delete_cache`)."""
    user = UserSession()
    try:
        yield user
    finally:
        user.video.close()
        timer = threading.Timer(API_FILES_TTL_S, shutil.rmtree, args=(user.workdir,), kwargs={"ignore_errors": True})
        timer.daemon = True
        timer.start()
