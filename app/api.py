"""The named API for programs (gradio_client): /segment_image, /track_video, /auto_annotate.

Sessionless: each call gets a one-shot session, not counted among live users, freed when the call returns.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np

from annotate.settings import DetectorSettings

from .media import draw_overlay
from .sessions import ImageObject, UserSession

if TYPE_CHECKING:
    from .studio import Studio

API_FILES_TTL_S = 600  # an API call's result files outlive the call this long (Gradio copies them right away)
PROMPTS_USAGE = 'prompts must be a JSON list like [{"frame": 0, "obj_id": 1, "points": [[x, y, 1]]}].'


def no_progress(*_args: Any, **_kwargs: Any) -> None:
    return None


class NamedApi:
    """Handlers of the named endpoints."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    def segment_image(
        self, image_path: str, points_json: str | None, box_json: str | None
    ) -> tuple[np.ndarray, np.ndarray, dict]:
        """/segment_image: image file, points [[x, y, label], ...] and box [x0, y0, x1, y1] (JSON, image pixels) ->
        (binary mask PNG 0/255 at the image's size, overlay PNG, scores)."""
        image = self.studio.open_image(image_path)
        try:
            points = json.loads(points_json) if points_json else []
            box = json.loads(box_json) if box_json and box_json.strip() != "null" else None
            obj = ImageObject(points=[(float(x), float(y), int(label)) for x, y, label in points], box=box)
        except (ValueError, TypeError) as error:
            raise gr.Error("points must be JSON [[x, y, label], ...] and box JSON [x0, y0, x1, y1] or null.") from error
        if not obj.points and obj.box is None:
            raise gr.Error("Give at least one point or a box.")
        try:
            self.studio.image.segment(image, obj)
        except ValueError as error:
            raise gr.Error(str(error)) from error
        mask = obj.mask
        if mask is None:
            raise gr.Error("Give at least one point or a box.")
        overlay = draw_overlay(image, [mask], [obj.points], [obj.box])
        return mask.astype(np.uint8) * 255, overlay, {"scores": obj.scores, "chosen": obj.choice}

    def track_video(self, video_path: str, prompts_json: str) -> tuple[str, str]:
        """/track_video: video file and prompts JSON [{"frame": 0, "obj_id": 1, "points": [[x, y, label]],
        "box": [x0, y0, x1, y1] or null}] -> (overlay video, masks zip)."""
        try:
            prompts = json.loads(prompts_json)
        except (TypeError, ValueError) as error:
            raise gr.Error(PROMPTS_USAGE) from error
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, dict) for p in prompts):
            raise gr.Error(PROMPTS_USAGE)
        video = self.studio.video
        with one_shot_session() as user:
            video.open_video(user, video_path, no_progress)
            for prompt in prompts:
                points = prompt.get("points") or []
                try:
                    frame, obj_id, box = int(prompt.get("frame", 0)), int(prompt.get("obj_id", 1)), prompt.get("box")
                    coords, labels = [p[:2] for p in points] or None, [p[2] for p in points] or None
                except (TypeError, ValueError, IndexError) as error:
                    raise gr.Error(f"Bad prompt {json.dumps(prompt)}: {PROMPTS_USAGE}") from error
                try:
                    video.add_prompt(user, frame, obj_id, points=coords, labels=labels, box=box)
                except gr.Error as error:
                    raise gr.Error(f"Bad prompt {json.dumps(prompt)}: {error.message}") from error
            *_, last = video.run_tracking(user, no_progress)
            return last[1], last[2][0]

    def auto_annotate(self, files: list[str], detector: str, classes: str) -> str:
        """/auto_annotate: image files or zips, detector name, class ids ("0,2" or "") -> the dataset zip."""
        with one_shot_session() as user:
            conf = DetectorSettings.conf  # the detector's default threshold
            _, archive = self.studio.annotate.annotate(user, files, detector, classes, conf, no_progress)
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
