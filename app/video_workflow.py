"""Tracking objects through one video, Gradio-free: the Video tab and the named API both call it.

Prompts, objects and masks live in the user's `VideoSession` (read through its public face); the rest of the tab's
state (object list, names, undo, a box being drawn) in its `VideoState`. Methods that edit take the user's lock from
their caller; `tracking_steps` takes it per frame and never across a yield (Gradio resumes generators on any thread).
The model runs in GPU tasks (`services.gpu`), which get the session's `TrackerState` and return the new one: this
process owns the session and writes every result into it (on ZeroGPU the tasks run in another process).
Coordinates are the video's pixels; frames are 0-based, as the slider counts.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from annotate.previews import write_h264
from sam2_model import TrackingInProgressError, VideoSession
from sam2_model.video_frames import VideoFrames

from .exports import safe_stem, video_exports
from .prompts import (
    BOX_CLICKS,
    NEGATIVE,
    VIDEO_MODES,
    PromptError,
    class_name,
    click_position,
    frame_number,
    object_number,
)
from .refusals import Refusal, TrackingInProgress
from .services import Services
from .sessions import UserSession, VideoEdit, VideoState
from .tracker_state import TrackerState, apply_frame, apply_state, state_of
from .tracking_progress import TrackingEstimate, TrackingPlan, progress_note
from .video_view import frame_overlay

Progress = Callable[..., Any]


@dataclass(frozen=True)
class TrackingStep:
    """One step of a tracking: a frame just tracked (its masks are in the session), or the end (`files`: overlay
    video, masks zip, COCO JSON), with the line to show."""

    frame: int
    note: str
    files: tuple[Path, Path, Path] | None = None


class VideoWorkflow:
    """Open a video, prompt objects on any frame, undo, track both ways with an estimate and Cancel, export."""

    def __init__(self, services: Services, clock: Callable[[], float] = time.monotonic) -> None:
        self.services = services
        self.predictor = services.video_predictor
        self.clock = clock
        # called with each frame as it is tracked, before it is shown: a seam for pacing a tracking (tests slow it
        # down so that a person's Cancel or click lands mid-run on any machine)
        self.after_frame: Callable[[int], None] = lambda frame: None

    # ------------------------------------------------------------------------------------------------- video
    def open_video(self, user: UserSession, path: str | None, progress: Progress) -> VideoSession:
        """Open `path` as the user's video, closing the previous one (and stopping its tracking). The video is
        decoded here; no GPU is needed until the first click."""
        limits = self.services.limits
        if not path:
            raise Refusal("Upload a video first.")
        progress(0.05, desc="Reading the video")
        fps, seconds = video_rate_and_length(path)
        if seconds is not None and seconds > limits.max_video_seconds:
            raise Refusal(f"The video lasts {seconds:.0f} s; the limit is {limits.max_video_seconds:.0f} s.")
        user.video.cancel.set()  # a tracking of the previous video stops at its next frame
        user.video.close()
        try:
            frames = VideoFrames(path, limits.max_video_frames, limits.max_video_pixels)
        except ValueError as error:
            message = str(error).replace(str(path), "the video")
            if "limit" not in message:
                message = "This file could not be read as a video (corrupt, empty or not a video)."
            raise Refusal(message) from error
        device = self.services.model.device
        # across processes the memories come back on the CPU: the session keeps them there
        storage = torch.device("cpu") if self.services.gpu.portable else device
        session = VideoSession(frames=frames, device=device, storage_device=storage)
        user.video.session, user.video.predictor, user.video.fps = session, self.predictor, fps or 25.0
        user.video.name = safe_stem(Path(path).name)
        return session

    # ------------------------------------------------------------------------------------------------ objects
    def add_object(self, video: VideoState) -> None:
        limit = self.services.limits.max_objects
        if len(video.object_ids) >= limit:
            raise Refusal(f"A video can have at most {limit} objects here: remove one first.")
        video.active_obj, video.box_corner = max(video.object_ids, default=0) + 1, None
        video.object_ids.append(video.active_obj)

    def select_object(self, video: VideoState, number: Any) -> None:
        chosen = object_number(number, max([*video.object_ids, 1]))
        if chosen in video.object_ids:
            video.active_obj, video.box_corner = chosen, None

    def name_object(self, video: VideoState, number: Any, name: str | None) -> None:
        """Object `number`'s class name (the exports' category); the number travels with the name."""
        if number is None:
            return
        chosen = object_number(number, max([*video.object_ids, 1]))
        if chosen in video.object_ids:
            video.class_names[chosen] = class_name(name)
            if video.session is not None and chosen in video.session.obj_ids:
                video.session.set_object_info(chosen, class_id=chosen, label=self.label(video, chosen))

    def remove_object(self, user: UserSession) -> None:
        video, session = user.video, require_session(user)
        obj_id = video.active_obj
        if obj_id in session.obj_ids:
            with editing(session):
                self.predictor.remove_object(session, obj_id, need_output=False)
        video.object_ids = [i for i in video.object_ids if i != obj_id] or [1]
        video.edits = [e for e in video.edits if e.obj_id != obj_id]
        video.class_names.pop(obj_id, None)
        video.active_obj, video.box_corner = video.object_ids[-1], None

    @staticmethod
    def label(video: VideoState, obj_id: int) -> str:
        return video.class_names.get(obj_id) or f"object {obj_id}"

    # ------------------------------------------------------------------------------------------------ prompts
    def click(
        self, user: UserSession, frame_idx: Any, index: Any, mode: str, progress: Progress | None = None
    ) -> tuple[int, torch.Tensor | None]:
        """A click at `index` ([x, y] video pixels) on frame `frame_idx` in `mode` -> (frame, every object's mask
        on it, Nx1xHxW bool, or None when the click was a box's first corner). `progress` says when the frame must be
        encoded first (seconds on a CPU)."""
        session, video = require_session(user), user.video
        require_idle(session)
        if mode not in VIDEO_MODES:
            raise Refusal(f"Unknown mode {str(mode)[:40]!r}; choose one of {', '.join(VIDEO_MODES)}.")
        frame = frame_number(frame_idx, session.num_frames)
        if progress is not None and frame not in session.feature_cache:
            progress(0.0, desc=f"Reading frame {frame} with SAM 2 (its first click)")
        x, y = click_position(index, (session.video_width, session.video_height))
        obj_id = video.active_obj
        prompt = session.prompt(frame, obj_id) if obj_id in session.obj_ids else None
        if mode == BOX_CLICKS:
            if video.box_corner is None or video.box_corner[0] != frame:
                video.box_corner = (frame, x, y)
                video.edits.append(VideoEdit("corner", frame, obj_id))
                return frame, None
            _, x0, y0 = video.box_corner
            video.box_corner = None
            if video.edits and video.edits[-1].kind == "corner":
                video.edits.pop()  # the finished box is one prompt: undo takes it back whole
            box = [min(x0, x), min(y0, y), max(x0, x), max(y0, y)]
            points = [] if prompt is None else [[float(px), float(py)] for px, py in prompt.points]
            labels = [] if prompt is None else [int(v) for v in prompt.labels]
            logits = self.add_prompt(user, frame, obj_id, points=points or None, labels=labels or None, box=box)
            video.edits.append(VideoEdit("box", frame, obj_id))
            return frame, logits
        limit = self.services.limits.max_prompt_points
        if prompt is not None and len(prompt.points) >= limit:
            raise Refusal(f"Object {obj_id} has {limit} clicks on this frame, the most allowed.")
        label = 0 if mode == NEGATIVE else 1
        logits = self.add_prompt(user, frame, obj_id, points=[[x, y]], labels=[label], clear_old_points=False)
        video.edits.append(VideoEdit("point", frame, obj_id))
        return frame, logits

    def add_prompt(
        self,
        user: UserSession,
        frame: int,
        obj_id: int,
        points: Sequence[Sequence[float]] | None = None,
        labels: Sequence[int] | None = None,
        box: Sequence[float] | None = None,
        clear_old_points: bool = True,
    ) -> torch.Tensor:
        """Add clicks and/or a box for object `obj_id` on a frame (a GPU task) -> every object's mask on that frame
        (Nx1xHxW bool on the CPU, the session's object order).

        A new object gets class id `obj_id` and its name ("object 2" unless named): its category in the exports."""
        session = require_session(user)
        new = obj_id not in session.obj_ids
        if new and len(session.obj_ids) >= self.services.limits.max_objects:
            raise Refusal(
                f"A video can have at most {self.services.limits.max_objects} objects here: remove one first."
            )
        try:
            with editing(session):
                session.require_editable()
                state, masks = self.services.gpu.prompt_video(
                    state_of(session, self.services.gpu.portable), frame, obj_id, points, labels, box,
                    clear_old_points,
                )  # fmt: skip
                apply_state(session, state)
        except ValueError as error:  # our predictor's prompt checks: the message names the problem
            raise Refusal(str(error)) from error
        if new:
            session.set_object_info(obj_id, class_id=obj_id, label=self.label(user.video, obj_id))
            if obj_id not in user.video.object_ids:
                user.video.object_ids.append(obj_id)
        return masks

    def undo(self, user: UserSession) -> int | None:
        """Take back the most recent prompt of any kind, on whichever object and frame it was given -> that frame
        (None when there was nothing to undo)."""
        video, session = user.video, require_session(user)
        if not video.edits:
            return None
        require_idle(session)
        edit = video.edits.pop()
        if edit.kind == "corner":
            video.box_corner = None
            return edit.frame
        prompt = session.prompt(edit.frame, edit.obj_id) if edit.obj_id in session.obj_ids else None
        if prompt is None:
            return edit.frame
        points, labels, box = prompt.points.tolist(), prompt.labels.tolist(), prompt.box
        if edit.kind == "point" and points:
            points, labels = points[:-1], labels[:-1]
        elif edit.kind == "box":
            box = None
        with editing(session):
            self.predictor.clear_all_prompts_in_frame(session, edit.frame, edit.obj_id, need_output=False)
        if points or box is not None:
            self.add_prompt(
                user, edit.frame, edit.obj_id, points=points or None, labels=labels or None,
                box=None if box is None else box.tolist(),
            )  # fmt: skip
        elif not session.prompted_frames(edit.obj_id):
            with editing(session):
                self.predictor.remove_object(session, edit.obj_id, need_output=False)
        video.active_obj = edit.obj_id
        return edit.frame

    # ------------------------------------------------------------------------------------------------ tracking
    def tracking_steps(self, user: UserSession, progress: Progress | None = None) -> Iterator[TrackingStep]:
        """Track forward from the first prompted frame, then backward from the last (one GPU task): a step after every
        tracked frame, and a last one with the files, also after Cancel. The user's lock is taken per frame, never
        held while the caller has a step. Cancel stops reading the task (ZeroGPU then stops its worker); the frames
        read until then are kept."""
        with user.lock:
            session = require_session(user)
            if not session.obj_ids:
                raise Refusal("Click on an object in the video first.")
            require_idle(session)
            cancel = user.video.cancel = threading.Event()
            prompted = sorted({t for obj in session.objects for t in obj.prompted_frames})
            state = state_of(session, self.services.gpu.portable)
            session.propagating = True  # edits wait for the tracking (Cancel ends it)
        first, last = prompted[0], prompted[-1]
        passes = [(first, False)] + ([(last, True)] if last > 0 else [])
        plan = TrackingPlan(
            ((session.num_frames - first, sum(t >= first for t in prompted)),)
            + (((last + 1, sum(t <= last for t in prompted)),) if last > 0 else ())
        )
        estimate = TrackingEstimate(plan, memory_frames=int(getattr(self.services.model.net, "num_maskmem", 7)))
        done, started, frame, index, position = 0, self.clock(), first, 0, 0
        try:
            with contextlib.closing(self.services.gpu.track_video(state, passes)) as steps:
                tick = self.clock()
                for item in steps:
                    if session.closed:  # the video was replaced under the tracking: stop quietly
                        return
                    with user.lock:
                        if isinstance(item, TrackerState):
                            apply_state(session, item)
                            break
                        apply_frame(session, item)
                    frame = item.frame
                    self.after_frame(frame)
                    now = self.clock()
                    done += 1
                    if int(item.reverse) != index:
                        index, position = int(item.reverse), 0
                    if frame not in prompted:
                        position += 1
                        estimate.add(position, now - tick)
                    note = progress_note(done, plan.total, frame, session.num_frames, item.reverse,
                                         estimate.seconds_left(index, position))  # fmt: skip
                    if progress is not None:
                        progress(done / plan.total, desc=note)
                    yield TrackingStep(frame, note)
                    if cancel.is_set():
                        break
                    tick = self.clock()
        except (RuntimeError, OSError):
            if session.closed:  # its frames were deleted under the tracking
                return
            raise
        finally:
            session.propagating = False
        if session.closed:
            return
        with user.lock:
            files = self.outputs(user)
        what = "Cancelled" if cancel.is_set() else "Tracked"
        yield TrackingStep(frame, f"{what}: {done} of {plan.total} frames in {self.clock() - started:.0f} s.", files)

    @staticmethod
    def cancel(user: UserSession) -> bool:
        """Stop the running tracking at its next frame (what was tracked stays); False when none is running."""
        if user.video.session is None or not user.video.session.is_propagating:
            return False
        user.video.cancel.set()
        return True

    def outputs(self, user: UserSession) -> tuple[Path, Path, Path]:
        """(overlay video, masks zip, COCO JSON) of the tracked video, in the user's folder, named after it."""
        session = require_session(user)
        folder = user.workdir / "video_export"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        name = user.video.name
        overlay = write_h264(
            (frame_overlay(user.video, t) for t in range(session.num_frames)), folder / f"{name}_tracked.mp4",
            user.video.fps,
        )  # fmt: skip
        masks_zip, coco = video_exports(session, folder / "files", name)
        return overlay, masks_zip, coco


def require_session(user: UserSession) -> VideoSession:
    """The user's video session; Refusal asking for a video when there is none."""
    if user.video.session is None:
        raise Refusal("Upload a video first.")
    return user.video.session


def require_idle(session: VideoSession) -> None:
    """TrackingInProgress while the session is being tracked: edits wait for it, or for Cancel."""
    if session.is_propagating:
        raise TrackingInProgress()


@contextlib.contextmanager
def editing(session: VideoSession) -> Iterator[None]:
    """An edit of the session's prompts or objects: TrackingInProgress while it is tracked, also when a tracking
    starts between the check and the edit (the predictor then refuses the edit with TrackingInProgressError). Any
    other error of the edit (a CUDA out-of-memory error, also a RuntimeError) goes on as it is."""
    require_idle(session)
    try:
        yield
    except TrackingInProgressError as error:
        raise TrackingInProgress() from error


def shown_frame(user: UserSession, frame_idx: Any) -> int:
    """The slider's value as a frame of the user's video (0 when there is none or the value is not a frame)."""
    session = user.video.session
    if session is None:
        return 0
    try:
        return frame_number(frame_idx, session.num_frames)
    except PromptError:
        return 0


def video_rate_and_length(path: str) -> tuple[float | None, float | None]:
    """(frames per second, seconds) from the container, when it says; None when it cannot tell."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            seconds = float(container.duration / 1_000_000) if container.duration else None
            return fps, seconds
    except Exception:  # not a readable container: init_state reports it properly
        return None, None
