"""`Studio`: the app's handlers on one shared model, as plain methods (the Blocks in `demo.py` only wire them).

Each handler takes its inputs and the `gr.Request` (for the caller's server-side session), and raises `gr.Error`
with a message fit for the user; server paths and tracebacks never reach the browser.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import threading
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import gradio as gr
import numpy as np
import torch

from annotate import auto_annotate
from annotate.images import find_images
from sam2_model import ImagePredictor, Sam2Model, VideoPredictor
from sam2_model.formats import rle_to_mask

from .media import MediaError, coco_json, draw_overlay, masks_zip, open_image, write_h264, yolo_labels
from .sessions import ImageObject, SessionLimitError, SessionRegistry, UserSession
from .settings import Limits

POSITIVE, NEGATIVE, BOX = "Positive click", "Negative click", "Box (two corner clicks)"
API_FILES_TTL_S = 600  # an API call's result files outlive the call this long (Gradio copies them right away)
DETECTORS = ["yolo11n.pt", "yolo11s.pt", "yolo11m.pt", "yolo11l.pt", "yolo11x.pt"]


def _session_hash(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


class Studio:
    """Handlers of the three tabs and the named API, sharing `model` and the sessions of every user."""

    def __init__(self, model: Sam2Model, limits: Limits | None = None) -> None:
        self.model = model
        self.limits = limits or Limits()
        self.sessions = SessionRegistry(self.limits.max_sessions, self.limits.idle_timeout_s)
        self.video_predictor = VideoPredictor(model)
        self._detectors: dict[str, Any] = {}
        self._detector_lock = threading.Lock()

    # ------------------------------------------------------------------------------------------------ helpers
    def session(self, request: gr.Request | None) -> UserSession:
        try:
            return self.sessions.get(_session_hash(request))
        except SessionLimitError as error:
            raise gr.Error(str(error)) from error

    def close_session(self, request: gr.Request | None) -> None:
        """Free the caller's embeddings, video memories and files (tab closed)."""
        self.sessions.close(_session_hash(request))

    def _open_image(self, path: str | None) -> np.ndarray:
        if not path:
            raise gr.Error("Upload an image first.")
        try:
            return open_image(path, self.limits.max_image_pixels)
        except MediaError as error:
            raise gr.Error(str(error)) from error

    def _segment(self, image: np.ndarray, obj: ImageObject) -> None:
        """Predict `obj`'s mask from its prompts: three candidates for one click, one mask otherwise."""
        if not obj.points and obj.box is None:
            obj.candidates, obj.scores, obj.choice = None, [], 0
            return
        predictor = ImagePredictor(self.model)
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

    def _image_view(self, user: UserSession) -> tuple[np.ndarray | None, list, str, int]:
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
        if state.objects and state.objects[state.active].candidates is not None:
            active = state.objects[state.active]
            for i, candidate in enumerate(active.candidates):
                gallery.append(
                    (draw_overlay(state.image, [None] * state.active + [candidate]), f"{active.scores[i]:.3f}")
                )
        lines = [
            f"{'**→**' if i == state.active else '-'} object {i + 1}: {len(o.points)} click(s)"
            f"{', box' if o.box is not None else ''}{f', score {o.scores[o.choice]:.3f}' if o.scores else ''}"
            for i, o in enumerate(state.objects)
        ]
        return overlay, gallery, "\n".join(lines) or "No objects yet: click on the image.", state.active + 1

    # -------------------------------------------------------------------------------------------- image tab
    def image_upload(self, path: str | None, request: gr.Request, progress=gr.Progress()) -> tuple:
        user = self.session(request)
        image = self._open_image(path)
        progress(0.1, desc="Computing the image embedding")
        with user.lock:
            user.image.image, user.image.objects, user.image.active, user.image.box_corner = (
                image,
                [ImageObject()],
                0,
                None,
            )
            ImagePredictor(self.model).set_image(image)  # embed now: later clicks only run the mask decoder
            return self._image_view(user)

    def image_click(self, mode: str, evt: gr.SelectData, request: gr.Request) -> tuple:
        user = self.session(request)
        with user.lock:
            state = user.image
            if state.image is None:
                raise gr.Error("Upload an image first.")
            if not state.objects:
                state.objects.append(ImageObject())
                state.active = 0
            x, y = (int(v) for v in evt.index)
            obj = state.objects[state.active]
            if mode == BOX:
                if state.box_corner is None:
                    state.box_corner = (x, y)
                    return self._image_view(user)
                (x0, y0), state.box_corner = state.box_corner, None
                obj.box = [min(x0, x), min(y0, y), max(x0, x), max(y0, y)]
            else:
                obj.points.append((x, y, 1 if mode == POSITIVE else 0))
            self._segment(state.image, obj)
            return self._image_view(user)

    def image_pick_candidate(self, evt: gr.SelectData, request: gr.Request) -> tuple:
        user = self.session(request)
        with user.lock:
            obj = user.image.objects[user.image.active] if user.image.objects else None
            if obj is not None and obj.candidates is not None and 0 <= evt.index < len(obj.candidates):
                obj.choice = int(evt.index)
            return self._image_view(user)

    def image_new_object(self, request: gr.Request) -> tuple:
        user = self.session(request)
        with user.lock:
            user.image.objects.append(ImageObject())
            user.image.active = len(user.image.objects) - 1
            user.image.box_corner = None
            return self._image_view(user)

    def image_select_object(self, number: float | None, request: gr.Request) -> tuple:
        user = self.session(request)
        with user.lock:
            if user.image.objects and number is not None:
                user.image.active = int(np.clip(int(number) - 1, 0, len(user.image.objects) - 1))
            return self._image_view(user)

    def image_undo(self, request: gr.Request) -> tuple:
        user = self.session(request)
        with user.lock:
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
                    self._segment(state.image, obj)
            return self._image_view(user)

    def image_remove_object(self, request: gr.Request) -> tuple:
        user = self.session(request)
        with user.lock:
            state = user.image
            if state.objects:
                del state.objects[state.active]
                state.active = max(0, min(state.active, len(state.objects) - 1))
            return self._image_view(user)

    def image_clear(self, request: gr.Request) -> tuple:
        user = self.session(request)
        with user.lock:
            user.image.objects, user.image.active, user.image.box_corner = [ImageObject()], 0, None
            return self._image_view(user)

    def image_export(self, request: gr.Request) -> list[str]:
        """Mask PNGs (zip), COCO JSON with RLE, and YOLO-seg labels of every object with a mask."""
        user = self.session(request)
        with user.lock:
            state = user.image
            masks = [(i, o.mask) for i, o in enumerate(state.objects) if o.mask is not None and o.mask.any()]
            if state.image is None or not masks:
                raise gr.Error("Nothing to export yet: segment at least one object.")
            height, width = state.image.shape[:2]
            folder = user.workdir / "image_export"
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            names = {0: "object"}
            return [
                str(masks_zip([(f"object_{i + 1}", m) for i, m in masks], folder / "masks.zip")),
                str(coco_json([("image.png", width, height, [(0, m) for _, m in masks])], names, folder / "coco.json")),
                str(yolo_labels([(0, m) for _, m in masks], width, height, folder / "image.txt")),
            ]

    # -------------------------------------------------------------------------------------------- video tab
    def video_upload(self, path: str | None, request: gr.Request, progress=gr.Progress()) -> tuple:
        return self._video_upload(self.session(request), path, progress)

    def _video_upload(self, user: UserSession, path: str | None, progress) -> tuple:
        if not path:
            raise gr.Error("Upload a video first.")
        progress(0.05, desc="Reading the video")
        fps, seconds = _video_rate_and_length(path)
        if seconds is not None and seconds > self.limits.max_video_seconds:
            raise gr.Error(f"The video lasts {seconds:.0f} s; the limit is {self.limits.max_video_seconds:.0f} s.")
        with user.lock:
            user.video.close()
            try:
                session = self.video_predictor.init_state(path, max_frames=self.limits.max_video_frames)
            except ValueError as error:
                message = str(error).replace(str(path), "the video")
                if "limit" not in message:
                    message = "This file could not be read as a video (corrupt, empty or not a video)."
                raise gr.Error(message) from error
            user.video.session, user.video.predictor, user.video.fps = session, self.video_predictor, fps or 25.0
            user.video.active_obj = 1
            frame = session.frames.rgb(0)
            return frame, gr.update(maximum=session.num_frames - 1, value=0), self._video_status(user)

    def _video_status(self, user: UserSession) -> str:
        video = user.video
        if video.session is None:
            return "No video yet."
        prompted = {obj: sorted(frames) for obj, frames in video.prompts.items() if frames}
        listing = "; ".join(f"object {obj}: frames {frames}" for obj, frames in prompted.items()) or "none yet"
        return (
            f"{video.session.num_frames} frames, {video.session.video_width}x{video.session.video_height}. "
            f"Prompts: {listing}. Clicking adds to object {video.active_obj}."
        )

    def _video_frame_view(self, user: UserSession, frame_idx: int, logits: torch.Tensor | None = None) -> np.ndarray:
        session = user.video.session
        frame = session.frames.rgb(frame_idx)
        masks: list[np.ndarray | None] = []
        if logits is not None:
            masks = list((logits[:, 0] > 0).cpu().numpy())
        else:
            for obj in session.objects:
                rle = obj.masks.get(frame_idx)
                masks.append(None if rle is None else rle_to_mask(rle))
        points = [user.video.prompts.get(obj.obj_id, {}).get(frame_idx, []) for obj in session.objects]
        return draw_overlay(frame, masks, points)

    def video_show_frame(self, frame_idx: float, request: gr.Request) -> np.ndarray | None:
        user = self.session(request)
        with user.lock:
            if user.video.session is None:
                return None
            return self._video_frame_view(user, int(frame_idx))

    def video_set_object(self, number: float | None, request: gr.Request) -> str:
        user = self.session(request)
        with user.lock:
            user.video.active_obj = max(1, int(number or 1))
            return self._video_status(user)

    def video_click(self, frame_idx: float, mode: str, evt: gr.SelectData, request: gr.Request) -> tuple:
        user = self.session(request)
        with user.lock:
            video = user.video
            if video.session is None:
                raise gr.Error("Upload a video first.")
            frame_idx, (x, y) = int(frame_idx), (int(v) for v in evt.index)
            label = 0 if mode == NEGATIVE else 1
            video.prompts.setdefault(video.active_obj, {}).setdefault(frame_idx, []).append((x, y, label))
            _, _, logits = self.video_predictor.add_new_points_or_box(
                video.session, frame_idx, video.active_obj, points=[[x, y]], labels=[label], clear_old_points=False
            )
            return self._video_frame_view(user, frame_idx, logits), self._video_status(user)

    def video_remove_object(self, request: gr.Request) -> tuple:
        user = self.session(request)
        with user.lock:
            video = user.video
            if video.session is None or video.active_obj not in video.session.obj_ids:
                raise gr.Error(f"Object {video.active_obj} has no prompts to remove.")
            self.video_predictor.remove_object(video.session, video.active_obj)
            video.prompts.pop(video.active_obj, None)
            return gr.update(), self._video_status(user)

    def video_track(self, request: gr.Request, progress=gr.Progress()) -> Iterator[tuple]:
        """Track forward from the first prompted frame, then backward from the last; preview as it goes, then the
        overlay video, the masks zip and COCO JSON."""
        yield from self._video_track(self.session(request), progress)

    def _video_track(self, user: UserSession, progress) -> Iterator[tuple]:
        video = user.video
        if video.session is None or not video.session.objects:
            raise gr.Error("Click on an object in the video first.")
        session = video.session
        first = min(t for obj in session.objects for t in [*obj.point_inputs, *obj.mask_inputs, *obj.cond])
        last = max(t for obj in session.objects for t in [*obj.point_inputs, *obj.mask_inputs, *obj.cond])
        passes = [(first, False)] + ([(last, True)] if last > 0 else [])
        total, done = session.num_frames + (last + 1 if last > 0 else 0), 0
        for start, reverse in passes:
            for frame_idx, _, logits in self.video_predictor.propagate_in_video(session, start, reverse=reverse):
                done += 1
                progress(done / total, desc=f"Tracking frame {frame_idx + 1}/{session.num_frames}")
                if done % 5 == 1:
                    with user.lock:
                        yield self._video_frame_view(user, frame_idx, logits), None, None
        with user.lock:
            outputs = self._video_outputs(user)
        yield gr.update(), outputs[0], outputs[1:]  # the frame keeps its last preview

    def _video_outputs(self, user: UserSession) -> list[str]:
        session = user.video.session
        folder = user.workdir / "video_export"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        overlay = write_h264(
            (self._video_frame_view(user, t) for t in range(session.num_frames)), folder / "tracked.mp4",
            user.video.fps,
        )  # fmt: skip
        masks, frames = [], []
        for t in range(session.num_frames):
            instances = []
            for obj in session.objects:
                rle = obj.masks.get(t)
                if rle is not None:
                    mask = rle_to_mask(rle)
                    masks.append((f"frame_{t:05d}_object_{obj.obj_id}", mask))
                    instances.append((int(obj.obj_id), mask))
            frames.append((f"frame_{t:05d}.png", session.video_width, session.video_height, instances))
        names = {int(obj.obj_id): f"object {obj.obj_id}" for obj in session.objects}
        return [
            str(overlay),
            str(masks_zip(masks, folder / "masks.zip")),
            str(coco_json(frames, names, folder / "coco.json")),
        ]

    # ---------------------------------------------------------------------------------------- auto-annotate
    def _detector(self, name: str):
        if name not in DETECTORS:
            raise gr.Error(f"Unknown detector {name!r}; choose one of {', '.join(DETECTORS)}.")
        with self._detector_lock:
            if name not in self._detectors:
                from annotate.detectors import load_yolo

                try:
                    self._detectors[name] = load_yolo(name)
                except ConnectionError as error:
                    raise gr.Error(f"The detector {name} could not be downloaded (is the server offline?).") from error
            return self._detectors[name]

    def annotate_files(
        self, files: list[str] | None, detector: str, classes: str, conf: float, request: gr.Request,
        progress=gr.Progress(track_tqdm=True),
    ) -> tuple[list, str]:  # fmt: skip
        """Images (or a zip of images) -> a gallery of the masks and the dataset as a zip (auto_annotate's tqdm bar
        is the progress bar the user sees)."""
        return self._annotate(self.session(request), files, detector, classes, conf, progress, show_tqdm=True)

    def _annotate(
        self, user: UserSession, files, detector: str, classes: str, conf: float, progress, show_tqdm: bool = False
    ):
        if not files:
            raise gr.Error("Upload images or a zip of images first.")
        class_ids = _parse_classes(classes)
        folder = user.workdir / "annotate"
        shutil.rmtree(folder, ignore_errors=True)
        inputs = folder / "images"
        inputs.mkdir(parents=True)
        self._collect_images([str(f) for f in files], inputs)
        count = len(find_images(inputs))
        if count == 0:
            raise gr.Error("No images found in the upload (jpg, png, webp, bmp, tif...).")
        if count > self.limits.max_annotate_images:
            raise gr.Error(f"{count} images uploaded; the limit is {self.limits.max_annotate_images} per run.")
        progress(0.05, desc=f"Annotating {count} images")
        summary = auto_annotate(
            inputs, det_model=self._detector(detector), sam_model=self.model, conf=conf, classes=class_ids,
            output_dir=folder / "dataset", formats=["yolo", "coco"], progress=show_tqdm,
        )  # fmt: skip
        dataset = Path(summary.output_dir)
        gallery = []
        for label in sorted((dataset / "labels").rglob("*.txt"))[:12]:
            image_path = next(
                (dataset / "images" / label.parent.relative_to(dataset / "labels")).glob(label.stem + ".*")
            )
            image = open_image(image_path, self.limits.max_image_pixels)
            gallery.append((_draw_yolo_label(image, label.read_text()), label.stem))
        archive = shutil.make_archive(str(folder / "dataset"), "zip", dataset)
        return gallery, archive

    def _collect_images(self, files: list[str], target: Path) -> None:
        """Copy uploaded images, and the images inside uploaded zips, into `target` (our own file names)."""
        for index, file in enumerate(files):
            path = Path(file)
            if zipfile.is_zipfile(path):
                with zipfile.ZipFile(path) as archive:
                    for member in archive.infolist():
                        name = PurePosixPath(member.filename)
                        if member.is_dir() or name.is_absolute() or ".." in name.parts or member.file_size > 10**8:
                            continue  # zip-slip and zip-bomb guard
                        safe = target / f"zip{index}" / Path(*name.parts)
                        safe.parent.mkdir(parents=True, exist_ok=True)
                        with archive.open(member) as source, open(safe, "wb") as destination:
                            shutil.copyfileobj(source, destination)
            else:
                shutil.copy(path, target / f"upload_{index:04d}{path.suffix.lower()}")

    # ------------------------------------------------------------------------------------------- named API
    def api_segment_image(self, image_path: str, points_json: str | None, box_json: str | None):
        """/segment_image: image file, points [[x, y, label], ...] and box [x0, y0, x1, y1] (JSON, image pixels) ->
        (binary mask PNG 0/255 at the image's size, overlay PNG, scores)."""
        image = self._open_image(image_path)
        try:
            points = json.loads(points_json) if points_json else []
            box = json.loads(box_json) if box_json and box_json.strip() != "null" else None
            obj = ImageObject(points=[(float(x), float(y), int(label)) for x, y, label in points], box=box)
        except (ValueError, TypeError) as error:
            raise gr.Error("points must be JSON [[x, y, label], ...] and box JSON [x0, y0, x1, y1] or null.") from error
        if not obj.points and obj.box is None:
            raise gr.Error("Give at least one point or a box.")
        try:
            self._segment(image, obj)
        except ValueError as error:
            raise gr.Error(str(error)) from error
        mask = obj.mask.astype(np.uint8) * 255
        overlay = draw_overlay(image, [obj.mask], [obj.points], [obj.box])
        return mask, overlay, {"scores": obj.scores, "chosen": obj.choice}

    @contextlib.contextmanager
    def _one_shot(self) -> Iterator[UserSession]:
        """A session for one API call: not counted among live users, its tensors freed when the call returns and
        its files removed once Gradio has copied the results (Gradio's own cache is cleaned by `delete_cache`)."""
        user = UserSession()
        try:
            yield user
        finally:
            user.video.close()
            timer = threading.Timer(
                API_FILES_TTL_S, shutil.rmtree, args=(user.workdir,), kwargs={"ignore_errors": True}
            )
            timer.daemon = True
            timer.start()

    def api_track_video(self, video_path: str, prompts_json: str) -> tuple[str, str]:
        """/track_video: video file and prompts JSON [{"frame": 0, "obj_id": 1, "points": [[x, y, label]],
        "box": [x0, y0, x1, y1] or null}] -> (overlay video, masks zip)."""
        usage = 'prompts must be a JSON list like [{"frame": 0, "obj_id": 1, "points": [[x, y, 1]]}].'
        try:
            prompts = json.loads(prompts_json)
        except (TypeError, ValueError) as error:
            raise gr.Error(usage) from error
        if not isinstance(prompts, list) or not prompts or not all(isinstance(p, dict) for p in prompts):
            raise gr.Error(usage)
        with self._one_shot() as user:
            self._video_upload(user, video_path, _no_progress)
            video = user.video
            for prompt in prompts:
                points = prompt.get("points") or []
                frame, obj_id, box = int(prompt.get("frame", 0)), int(prompt.get("obj_id", 1)), prompt.get("box")
                try:
                    self.video_predictor.add_new_points_or_box(
                        video.session, frame, obj_id,
                        points=[p[:2] for p in points] or None, labels=[p[2] for p in points] or None, box=box,
                    )  # fmt: skip
                except (ValueError, IndexError, TypeError) as error:
                    raise gr.Error(f"Bad prompt {json.dumps(prompt)}: {error}") from error
                video.prompts.setdefault(obj_id, {}).setdefault(frame, []).extend(tuple(p) for p in points)
            *_, last = self._video_track(user, _no_progress)
            return last[1], last[2][0]

    def api_auto_annotate(self, files: list[str], detector: str, classes: str) -> str:
        """/auto_annotate: image files or zips, detector name, class ids ("0,2" or "") -> the dataset zip."""
        with self._one_shot() as user:
            _, archive = self._annotate(user, files, detector, classes, 0.25, _no_progress)
            return archive


def _no_progress(*_args, **_kwargs) -> None:
    return None


def _parse_classes(text: str | None) -> list[int] | None:
    if not text or not text.strip():
        return None
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError as error:
        raise gr.Error(f"Classes must be comma-separated class ids like 0,2,5; got {text!r}.") from error


def _video_rate_and_length(path: str) -> tuple[float | None, float | None]:
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


def _draw_yolo_label(image: np.ndarray, text: str) -> np.ndarray:
    from annotate.formats import polygon_to_mask, yolo_line_to_polygon

    height, width = image.shape[:2]
    masks = []
    for line in text.splitlines():
        _, polygon = yolo_line_to_polygon(line, (width, height))
        masks.append(polygon_to_mask(polygon, (width, height)))
    return draw_overlay(image, masks)
