"""The Video tab: upload, clicks on any frame for several objects, tracking both ways, overlay video and exports.

Prompts, objects and masks live in the user's `VideoSession`; this tab reads them through its public face.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np
import torch

from sam2_model import VideoSession

from .exports import video_exports
from .image_tab import NEGATIVE
from .media import draw_overlay, write_h264
from .prompts import PromptError, click_position, frame_number, object_number
from .sessions import UserSession

if TYPE_CHECKING:
    from .studio import Studio

PREVIEW_EVERY = 5  # frames between two live previews while tracking

Progress = Callable[..., Any]


class VideoTab:
    """Handlers of the Video tab; `open_video` and `track` also serve the named API."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.predictor = studio.video_predictor

    def upload(self, path: str | None, request: gr.Request, progress: Any = gr.Progress()) -> tuple:
        with self.studio.user_session(request) as user:
            return self.open_video(user, path, progress)

    def open_video(self, user: UserSession, path: str | None, progress: Progress) -> tuple:
        """Open `path` as the user's video (closing the previous one) -> (first frame, slider update, status)."""
        limits = self.studio.limits
        if not path:
            raise gr.Error("Upload a video first.")
        progress(0.05, desc="Reading the video")
        fps, seconds = video_rate_and_length(path)
        if seconds is not None and seconds > limits.max_video_seconds:
            raise gr.Error(f"The video lasts {seconds:.0f} s; the limit is {limits.max_video_seconds:.0f} s.")
        user.video.cancel.set()  # a tracking of the previous video stops at its next frame
        user.video.close()
        try:
            session = self.predictor.init_state(
                path, max_frames=limits.max_video_frames, max_frame_pixels=limits.max_video_pixels
            )
        except ValueError as error:
            message = str(error).replace(str(path), "the video")
            if "limit" not in message:
                message = "This file could not be read as a video (corrupt, empty or not a video)."
            raise gr.Error(message) from error
        user.video.session, user.video.predictor, user.video.fps = session, self.predictor, fps or 25.0
        user.video.active_obj = 1
        frame = session.frames.rgb(0)
        return frame, gr.update(maximum=session.num_frames - 1, value=0), self.status(user)

    def show_frame(self, frame_idx: float, request: gr.Request) -> np.ndarray | None:
        with self.studio.user_session(request) as user:
            session = user.video.session
            if session is None:
                return None
            try:
                return self.frame_view(user, frame_number(frame_idx, session.num_frames))
            except PromptError as error:
                raise gr.Error(str(error)) from error

    def set_object(self, number: float | None, request: gr.Request) -> str:
        with self.studio.user_session(request) as user:
            try:
                user.video.active_obj = object_number(1 if number is None else number, self.studio.limits.max_objects)
            except PromptError as error:
                raise gr.Error(str(error)) from error
            return self.status(user)

    def click(self, frame_idx: float, mode: str, evt: gr.SelectData, request: gr.Request) -> tuple:
        with self.studio.user_session(request) as user:
            session = self.session_of(user)
            try:
                frame = frame_number(frame_idx, session.num_frames)
                x, y = click_position(evt.index, (session.video_width, session.video_height))
            except PromptError as error:
                raise gr.Error(str(error)) from error
            obj_id, limit = user.video.active_obj, self.studio.limits.max_prompt_points
            prompt = session.prompt(frame, obj_id) if obj_id in session.obj_ids else None
            if prompt is not None and len(prompt.points) >= limit:
                raise gr.Error(f"Object {obj_id} has {limit} clicks on this frame, the most allowed.")
            label = 0 if mode == NEGATIVE else 1
            logits = self.add_prompt(user, frame, obj_id, points=[[x, y]], labels=[label], clear_old_points=False)
            return self.frame_view(user, frame, logits), self.status(user)

    def add_prompt(
        self,
        user: UserSession,
        frame: int,
        obj_id: int,
        points: list | None = None,
        labels: list | None = None,
        box: list | None = None,
        clear_old_points: bool = True,
    ) -> torch.Tensor:
        """Add clicks and/or a box for object `obj_id` on a frame -> every object's logits on that frame.

        A new object is named after its number ("object 2", class id 2: its category in the COCO export)."""
        session = self.session_of(user)
        new = obj_id not in session.obj_ids
        if new and len(session.obj_ids) >= self.studio.limits.max_objects:
            raise gr.Error(f"A video can have at most {self.studio.limits.max_objects} objects here: remove one first.")
        try:
            _, _, logits = self.predictor.add_new_points_or_box(
                session, frame, obj_id, points=points, labels=labels, box=box, clear_old_points=clear_old_points
            )
        except RuntimeError as error:  # a propagation is running on this session
            raise gr.Error("Tracking is in progress: wait until it has finished, then add prompts.") from error
        except (ValueError, IndexError) as error:
            raise gr.Error(str(error)) from error
        if new:
            session.set_object_info(obj_id, class_id=obj_id, label=f"object {obj_id}")
        return logits

    def remove_object(self, request: gr.Request) -> tuple:
        with self.studio.user_session(request) as user:
            session, obj_id = user.video.session, user.video.active_obj
            if session is None or obj_id not in session.obj_ids:
                raise gr.Error(f"Object {obj_id} has no prompts to remove.")
            try:
                self.predictor.remove_object(session, obj_id)
            except RuntimeError as error:
                raise gr.Error("Tracking is in progress: wait until it has finished, then remove objects.") from error
            return gr.update(), self.status(user)

    def track(self, request: gr.Request, progress: Any = gr.Progress()) -> Iterator[tuple]:
        """Track forward from the first prompted frame, then backward from the last; preview as it goes, then the
        overlay video, the masks zip and COCO JSON."""
        user = self.studio.find_session(request)
        with user.in_use():  # locked per step below, not for the whole (long) tracking
            yield from self.run_tracking(user, progress)

    def run_tracking(self, user: UserSession, progress: Progress, previews: bool = True) -> Iterator[tuple]:
        """Both passes over the user's session, yielding (preview frame, None, None) every few frames and finally
        (gr.update(), overlay video path, [masks zip path, COCO path]). Without `previews`, it yields
        (None, None, None) after every frame instead: a caller (Gradio) that stops asking stops the tracking there,
        which is how the named API stops work whose client has gone."""
        session = user.video.session
        if session is None:
            raise gr.Error("Upload a video first, then click on an object in it.")
        if not session.obj_ids:
            raise gr.Error("Click on an object in the video first.")
        if session.is_propagating:
            raise gr.Error("Tracking is already running for this video.")
        cancel = user.video.cancel = threading.Event()
        prompted = [t for obj in session.objects for t in obj.prompted_frames]
        first, last = min(prompted), max(prompted)
        passes = [(first, False)] + ([(last, True)] if last > 0 else [])
        total, done = session.num_frames + (last + 1 if last > 0 else 0), 0
        for start, reverse in passes:
            with contextlib.closing(self.predictor.propagate_in_video(session, start, reverse=reverse)) as frames:
                try:
                    for frame_idx, _, logits in frames:
                        if cancel.is_set():
                            break
                        done += 1
                        progress(done / total, desc=f"Tracking frame {frame_idx + 1}/{session.num_frames}")
                        if not previews:
                            yield None, None, None
                        elif done % PREVIEW_EVERY == 1:
                            with user.lock:
                                yield self.frame_view(user, frame_idx, logits), None, None
                except RuntimeError:
                    if cancel.is_set():  # the video was replaced or closed under the tracking: stop quietly
                        return
                    raise
            if cancel.is_set():
                return
        with user.lock:
            overlay, masks_zip, coco = self.outputs(user)
        yield gr.update(), str(overlay), [str(masks_zip), str(coco)]  # the frame keeps its last preview

    @staticmethod
    def session_of(user: UserSession) -> VideoSession:
        """The user's video session; gr.Error asking for a video when there is none."""
        if user.video.session is None:
            raise gr.Error("Upload a video first.")
        return user.video.session

    # ------------------------------------------------------------------------------------------------- views
    def status(self, user: UserSession) -> str:
        session = user.video.session
        if session is None:
            return "No video yet."
        prompted = {obj.obj_id: list(obj.prompted_frames) for obj in session.objects if obj.prompted_frames}
        listing = "; ".join(f"object {obj}: frames {frames}" for obj, frames in prompted.items()) or "none yet"
        return (
            f"{session.num_frames} frames, {session.video_width}x{session.video_height}. "
            f"Prompts: {listing}. Clicking adds to object {user.video.active_obj}."
        )

    def frame_view(self, user: UserSession, frame_idx: int, logits: torch.Tensor | None = None) -> np.ndarray:
        """Frame `frame_idx` with every object's mask (from `logits`, Nx1xHxW, or the session's newest masks) and
        the clicks on that frame."""
        session = self.session_of(user)
        frame = session.frames.rgb(frame_idx)
        if logits is not None:
            masks: list[np.ndarray | None] = list((logits[:, 0] > 0).cpu().numpy())
        else:
            found = session.frame_masks(frame_idx)
            masks = [found.get(obj_id) for obj_id in session.obj_ids]
        points, boxes = [], []
        for obj_id in session.obj_ids:
            prompt = session.prompt(frame_idx, obj_id)
            clicks = [] if prompt is None else zip(prompt.points.tolist(), prompt.labels.tolist(), strict=True)
            points.append([(x, y, label) for (x, y), label in clicks])
            boxes.append(None if prompt is None or prompt.box is None else prompt.box.tolist())
        return draw_overlay(frame, masks, points, boxes)

    def outputs(self, user: UserSession) -> tuple[Path, Path, Path]:
        """(overlay video, masks zip, COCO JSON) of the tracked video, in the user's folder."""
        session = self.session_of(user)
        folder = user.workdir / "video_export"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        overlay = write_h264(
            (self.frame_view(user, t) for t in range(session.num_frames)), folder / "tracked.mp4", user.video.fps
        )
        masks_zip, coco = video_exports(session, folder / "files")
        return overlay, masks_zip, coco


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
