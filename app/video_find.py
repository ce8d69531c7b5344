"""Find on a video's frame, Gradio-free: by name ("person, red car") or like the active object's box there (YOLOE's
visual prompt). Each box found becomes a new object of the tracking session, prompted by that box on that frame and
named after its phrase, ready for *Track*.

The detector runs as a GPU task (`find_tasks.detect_objects`), and each box reaches the video predictor as any box
a person draws (`VideoWorkflow.add_prompt`): the objects are tracked, undone and exported like the others.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from .find_tasks import VISUAL_PROMPT_DETECTORS, FindRequest, FindTasks
from .find_workflow import SAME_AS_EXAMPLE_IOU, FindWorkflow, box_iou, check_confidence
from .prompts import FIND_CONFIDENCE, class_name, frame_number, parse_phrases
from .refusals import Refusal
from .sessions import UserSession, VideoEdit
from .video_workflow import VideoWorkflow, require_idle, require_session


class VideoFind:
    """Find and Find similar on the frame a person looks at; the found objects join the tracking session."""

    def __init__(self, video: VideoWorkflow, find: FindWorkflow) -> None:
        self.video = video
        self.find_workflow = find
        self.services = video.services
        self.tasks = FindTasks(video.services.gpu)

    def find(
        self, user: UserSession, frame_idx: Any, text: Any, detector: str | None = None, confidence: Any = None
    ) -> tuple[int, torch.Tensor | None]:
        """Every instance of the names in `text` on frame `frame_idx`, scored `confidence` or more, becomes a new
        object prompted by its box there -> (the frame, every object's mask on it: Nx1xHxW bool)."""
        phrases = parse_phrases(text)
        session = require_session(user)
        require_idle(session)
        frame = frame_number(frame_idx, session.num_frames)
        name = self.find_workflow.detector_name(detector)
        conf, room = check_confidence(confidence, FIND_CONFIDENCE), self._room(user)
        with self.services.finders.borrow(name) as finder:
            embeddings = self.find_workflow.embeddings(name, finder, phrases)
            request = FindRequest(phrases=tuple(phrases), embeddings=embeddings, conf=conf, max_det=room)
            xyxy, _, class_id = self.tasks.detect_objects(finder, session.frames.rgb(frame), request)
        if not len(xyxy):
            raise Refusal(f"Found no {' or '.join(phrases)} scored {conf:g} or more on frame {frame}.")
        return frame, self._add(user, frame, xyxy, [phrases[int(i)] for i in class_id])

    def find_similar(
        self, user: UserSession, frame_idx: Any, detector: str | None = None, confidence: Any = None
    ) -> tuple[int, torch.Tensor | None]:
        """The other instances of what the active object's box on frame `frame_idx` holds become new objects named
        as it (else "similar") -> (the frame, every object's mask on it)."""
        session, video = require_session(user), user.video
        require_idle(session)
        frame = frame_number(frame_idx, session.num_frames)
        prompt = session.prompt(frame, video.active_obj) if video.active_obj in session.obj_ids else None
        if prompt is None or prompt.box is None:
            raise Refusal("Find similar: draw a box around one example on this frame first (mode Box), then choose "
                          "Find similar.")  # fmt: skip
        name = self.find_workflow.detector_name(detector)
        conf, room = check_confidence(confidence, FIND_CONFIDENCE), self._room(user)
        x0, y0, x1, y1 = (float(v) for v in prompt.box)
        example = (x0, y0, x1, y1)
        with self.services.finders.borrow(name) as finder:
            if type(finder).__name__ not in VISUAL_PROMPT_DETECTORS:
                raise Refusal(f"Find similar needs a YOLOE detector; {name} takes names only.")
            request = FindRequest(example=example, conf=conf, max_det=room + 1)
            xyxy, _, _ = self.tasks.detect_objects(finder, session.frames.rgb(frame), request)
        others = np.array([b for b in xyxy if box_iou(b, example) < SAME_AS_EXAMPLE_IOU][:room]).reshape(-1, 4)
        if not len(others):
            raise Refusal(f"Found nothing else like the example scored {conf:g} or more on frame {frame}.")
        label = video.class_names.get(video.active_obj) or "similar"
        return frame, self._add(user, frame, others, [label] * len(others))

    def _room(self, user: UserSession) -> int:
        """How many objects may still be added: the object limit, and the tracks a video may have."""
        session, limits = require_session(user), self.services.limits
        room = min(limits.max_objects, limits.max_tracks) - len(session.obj_ids)
        if room <= 0:
            raise Refusal(f"This video has {len(session.obj_ids)} objects, the most allowed here: remove some first.")
        return room

    def _add(self, user: UserSession, frame: int, xyxy: np.ndarray, names: list[str]) -> torch.Tensor | None:
        """Each box a new object (objects listed but not yet prompted are used first), prompted on `frame`."""
        video, session = user.video, require_session(user)
        free = [i for i in video.object_ids if i not in session.obj_ids]
        masks, first = None, None
        for box, name in zip(xyxy, names, strict=True):
            obj_id = free.pop(0) if free else max(video.object_ids, default=0) + 1  # add_prompt lists it
            video.class_names[obj_id] = class_name(name)
            masks = self.video.add_prompt(user, frame, obj_id, box=[float(v) for v in box])
            video.edits.append(VideoEdit("box", frame, obj_id))
            first = obj_id if first is None else first
        video.active_obj, video.box_corner = first if first is not None else video.active_obj, None
        return masks
