"""The Video tab: upload, clicks and boxes on any frame for several objects, tracking both ways that the user watches
and can cancel, a timeline of each object, undo in time order, the overlay video and exports.

Prompts, objects and masks live in the user's `VideoSession`; this tab reads them through its public face. The
frame panel always shows the slider's frame.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np
import torch

from annotate.previews import write_h264
from sam2_model import VideoSession

from .exports import safe_stem, video_exports
from .image_tab import BOX_CLICKS, NEGATIVE, POSITIVE
from .prompts import PromptError, click_position, frame_number, object_number
from .sessions import UserSession, VideoEdit
from .video_view import frame_overlay, object_choices, progress_note, status_text, timeline_html

if TYPE_CHECKING:
    from .studio import Studio

MODES = [POSITIVE, NEGATIVE, BOX_CLICKS]
PREVIEW_EVERY = 5  # frames between two previews for callers that want fewer (the browser gets every frame)

Progress = Callable[..., Any]
# frame panel, slider, status, timeline, object list
VideoView = tuple[Any, Any, str, str, Any]


class VideoTab:
    """Handlers of the Video tab; `open_video`, `add_prompt` and `run_tracking` also serve the named API."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        self.predictor = studio.video_predictor

    # ------------------------------------------------------------------------------------------------- video
    def upload(self, path: str | None, request: gr.Request, progress: Any = gr.Progress()) -> VideoView:
        with self.studio.user_session(request) as user:
            self.open_video(user, path, progress)
            return self.view(user, 0)

    def open_video(self, user: UserSession, path: str | None, progress: Progress) -> VideoSession:
        """Open `path` as the user's video, closing the previous one (and stopping its tracking)."""
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
        user.video.name = safe_stem(Path(path).name)
        return session

    def show_frame(self, frame_idx: float, request: gr.Request) -> tuple[Any, str]:
        """The slider moved: the panel shows that frame with its masks and prompts."""
        with self.studio.user_session(request) as user:
            session = user.video.session
            if session is None:
                return None, ""
            try:
                frame = frame_number(frame_idx, session.num_frames)
            except PromptError as error:
                raise gr.Error(str(error)) from error
            return self.frame_view(user, frame), self.timeline(user, frame)

    # ------------------------------------------------------------------------------------------------ objects
    def add_object(self, frame_idx: float, request: gr.Request) -> VideoView:
        with self.studio.user_session(request) as user:
            video, limit = user.video, self.studio.limits.max_objects
            if len(video.object_ids) >= limit:
                raise gr.Error(f"A video can have at most {limit} objects here: remove one first.")
            video.active_obj, video.box_corner = max(video.object_ids, default=0) + 1, None
            video.object_ids.append(video.active_obj)
            return self.view(user, self._frame(user, frame_idx))

    def select_object(self, number: Any, frame_idx: float, request: gr.Request) -> VideoView:
        with self.studio.user_session(request) as user:
            try:
                chosen = object_number(number, max([*user.video.object_ids, 1]))
            except PromptError as error:
                raise gr.Error(str(error)) from error
            if chosen in user.video.object_ids:
                user.video.active_obj, user.video.box_corner = chosen, None
            return self.view(user, self._frame(user, frame_idx))

    def remove_object(self, frame_idx: float, request: gr.Request) -> VideoView:
        with self.studio.user_session(request) as user:
            video, obj_id = user.video, user.video.active_obj
            session = self.session_of(user)
            if obj_id in session.obj_ids:
                try:
                    self.predictor.remove_object(session, obj_id)
                except RuntimeError as error:
                    raise gr.Error("Tracking is in progress: wait until it has finished, or Cancel it.") from error
            video.object_ids = [i for i in video.object_ids if i != obj_id] or [1]
            video.edits = [e for e in video.edits if e.obj_id != obj_id]
            video.active_obj, video.box_corner = video.object_ids[-1], None
            return self.view(user, self._frame(user, frame_idx))

    # ------------------------------------------------------------------------------------------------ prompts
    def click(self, frame_idx: float, mode: str, evt: gr.SelectData, request: gr.Request) -> VideoView:
        with self.studio.user_session(request) as user:
            session = self.session_of(user)
            video = user.video
            try:
                frame = frame_number(frame_idx, session.num_frames)
                x, y = click_position(evt.index, (session.video_width, session.video_height))
            except PromptError as error:
                raise gr.Error(str(error)) from error
            obj_id = video.active_obj
            if mode == BOX_CLICKS:
                if video.box_corner is None or video.box_corner[0] != frame:
                    video.box_corner = (frame, x, y)
                    video.edits.append(VideoEdit("corner", frame, obj_id))
                    return self.view(user, frame)
                _, x0, y0 = video.box_corner
                video.box_corner = None
                if video.edits and video.edits[-1].kind == "corner":
                    video.edits.pop()  # the finished box is one prompt: undo takes it back whole
                box = [min(x0, x), min(y0, y), max(x0, x), max(y0, y)]
                prompt = session.prompt(frame, obj_id) if obj_id in session.obj_ids else None
                points = [] if prompt is None else [[float(px), float(py)] for px, py in prompt.points]
                labels = [] if prompt is None else [int(v) for v in prompt.labels]
                logits = self.add_prompt(user, frame, obj_id, points=points or None, labels=labels or None, box=box)
                video.edits.append(VideoEdit("box", frame, obj_id))
            else:
                limit = self.studio.limits.max_prompt_points
                prompt = session.prompt(frame, obj_id) if obj_id in session.obj_ids else None
                if prompt is not None and len(prompt.points) >= limit:
                    raise gr.Error(f"Object {obj_id} has {limit} clicks on this frame, the most allowed.")
                label = 0 if mode == NEGATIVE else 1
                logits = self.add_prompt(user, frame, obj_id, points=[[x, y]], labels=[label], clear_old_points=False)
                video.edits.append(VideoEdit("point", frame, obj_id))
            return self.view(user, frame, logits)

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
            raise gr.Error("Tracking is in progress: wait until it has finished, or Cancel it.") from error
        except (ValueError, IndexError) as error:
            raise gr.Error(str(error)) from error
        if new:
            session.set_object_info(obj_id, class_id=obj_id, label=f"object {obj_id}")
            if obj_id not in user.video.object_ids:
                user.video.object_ids.append(obj_id)
        return logits

    def undo(self, frame_idx: float, request: gr.Request) -> VideoView:
        """Take back the most recent prompt of any kind, on whichever object and frame it was given; the slider
        goes to that frame."""
        with self.studio.user_session(request) as user:
            video, session = user.video, self.session_of(user)
            if not video.edits:
                return self.view(user, self._frame(user, frame_idx))
            edit = video.edits.pop()
            if edit.kind == "corner":
                video.box_corner = None
                return self.view(user, edit.frame)
            prompt = session.prompt(edit.frame, edit.obj_id) if edit.obj_id in session.obj_ids else None
            if prompt is None:
                return self.view(user, edit.frame)
            points, labels, box = prompt.points.tolist(), prompt.labels.tolist(), prompt.box
            if edit.kind == "point" and points:
                points, labels = points[:-1], labels[:-1]
            elif edit.kind == "box":
                box = None
            try:
                self.predictor.clear_all_prompts_in_frame(session, edit.frame, edit.obj_id, need_output=False)
                if points or box is not None:
                    self.add_prompt(
                        user, edit.frame, edit.obj_id, points=points or None, labels=labels or None,
                        box=None if box is None else box.tolist(),
                    )  # fmt: skip
                elif not session.prompted_frames(edit.obj_id):
                    self.predictor.remove_object(session, edit.obj_id)
            except RuntimeError as error:
                raise gr.Error("Tracking is in progress: wait until it has finished, or Cancel it.") from error
            video.active_obj = edit.obj_id
            return self.view(user, edit.frame)

    # ------------------------------------------------------------------------------------------------ tracking
    def track(self, request: gr.Request) -> Iterator[tuple]:
        """Track forward from the first prompted frame, then backward from the last, showing every frame as it is
        tracked (slider, panel, progress with a time estimate, timeline); then the overlay video and the files."""
        user = self.studio.find_session(request)
        with user.in_use():  # locked per step below, not for the whole (long) tracking
            for frame, logits, note, done in self.run_tracking_steps(user):
                with user.lock:
                    if done is None:
                        yield (self.frame_view(user, frame, logits), gr.update(value=frame), note,
                               self.timeline(user, frame), gr.skip(), gr.skip(), gr.skip())  # fmt: skip
                    else:
                        overlay, masks_zip, coco = done
                        yield (self.frame_view(user, frame), gr.update(value=frame), note, self.timeline(user, frame),
                               self._object_list(user), str(overlay), [str(masks_zip), str(coco)])  # fmt: skip

    def cancel(self, request: gr.Request) -> Any:
        """Stop the running tracking at its next frame; what was tracked stays (and is exported). With nothing
        running (say the tracking finished as Cancel was clicked) the status is left as it is: it says how the
        last tracking ended."""
        user = self.studio.find_session(request)
        if user.video.session is None or not user.video.session.is_propagating:
            return gr.skip()
        user.video.cancel.set()
        return "Cancelling: tracking stops after the frame it is on."

    def run_tracking(self, user: UserSession, progress: Progress, previews: bool = True) -> Iterator[tuple]:
        """Both passes, as (preview frame or None, None, None) while tracking, then (gr.update(), overlay video path,
        [masks zip path, COCO path]). With `previews`, a preview every PREVIEW_EVERY frames; without, (None, None,
        None) after every frame: a caller (Gradio) that stops asking stops the tracking there, which is how the
        named API stops work whose client has gone."""
        count = 0
        for frame, logits, _, done in self.run_tracking_steps(user, progress):
            if done is not None:
                yield gr.update(), str(done[0]), [str(done[1]), str(done[2])]
            elif not previews:
                yield None, None, None
            else:
                count += 1
                if count % PREVIEW_EVERY == 1:
                    with user.lock:
                        yield self.frame_view(user, frame, logits), None, None

    def run_tracking_steps(
        self, user: UserSession, progress: Progress | None = None
    ) -> Iterator[tuple[int, torch.Tensor | None, str, tuple[Path, Path, Path] | None]]:
        """Both passes over the user's session: (frame, its logits, progress note, None) after every tracked frame,
        and (last frame shown, None, summary, (overlay video, masks zip, COCO)) at the end, also after Cancel."""
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
        total = (session.num_frames - first) + (last + 1 if last > 0 else 0)  # the frames both passes process
        done, started, frame = 0, time.monotonic(), first
        for start, reverse in passes:
            with contextlib.closing(self.predictor.propagate_in_video(session, start, reverse=reverse)) as frames:
                try:
                    for frame, _, logits in frames:
                        done += 1
                        note = progress_note(done, total, frame, session.num_frames, reverse, started)
                        if progress is not None:
                            progress(done / total, desc=note)
                        yield frame, logits, note, None
                        if cancel.is_set():
                            break
                except RuntimeError:
                    if session.closed:  # the video was replaced under the tracking: stop quietly
                        return
                    raise
            if cancel.is_set():
                break
        if session.closed:
            return
        with user.lock:
            outputs = self.outputs(user)
        what = "Cancelled" if cancel.is_set() else "Tracked"
        yield frame, None, f"{what}: {done} of {total} frames in {time.monotonic() - started:.0f} s.", outputs

    # ------------------------------------------------------------------------------------------------- views
    def view(self, user: UserSession, frame: int, logits: torch.Tensor | None = None) -> VideoView:
        """(frame panel, slider, status, timeline, object list) with the panel on `frame`."""
        session = user.video.session
        if session is None:
            return None, gr.update(value=0), "No video yet.", "", self._object_list(user)
        slider = gr.update(maximum=max(1, session.num_frames - 1), value=frame)
        return self.frame_view(user, frame, logits), slider, self.status(user), self.timeline(user, frame), \
            self._object_list(user)  # fmt: skip

    def status(self, user: UserSession) -> str:
        return status_text(user.video)

    def frame_view(self, user: UserSession, frame_idx: int, logits: torch.Tensor | None = None) -> np.ndarray:
        """Frame `frame_idx` with every object's mask and prompts (see `video_view.frame_overlay`)."""
        self.session_of(user)
        return frame_overlay(user.video, frame_idx, logits)

    def timeline(self, user: UserSession, frame: int) -> str:
        return timeline_html(user.video, frame)

    def _object_list(self, user: UserSession) -> Any:
        return gr.update(choices=object_choices(user.video), value=str(user.video.active_obj))

    def outputs(self, user: UserSession) -> tuple[Path, Path, Path]:
        """(overlay video, masks zip, COCO JSON) of the tracked video, in the user's folder, named after it."""
        session = self.session_of(user)
        folder = user.workdir / "video_export"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        name = user.video.name
        overlay = write_h264(
            (self.frame_view(user, t) for t in range(session.num_frames)), folder / f"{name}_tracked.mp4",
            user.video.fps,
        )  # fmt: skip
        masks_zip, coco = video_exports(session, folder / "files", name)
        return overlay, masks_zip, coco

    @staticmethod
    def session_of(user: UserSession) -> VideoSession:
        """The user's video session; gr.Error asking for a video when there is none."""
        if user.video.session is None:
            raise gr.Error("Upload a video first.")
        return user.video.session

    def _frame(self, user: UserSession, frame_idx: Any) -> int:
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
