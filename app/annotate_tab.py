"""The Auto-annotate tab: uploaded images and videos (or zips of them) -> a gallery of masks, the tracked preview of
the first video, and the dataset as a zip."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np

from annotate import auto_annotate
from annotate.formats import polygon_to_mask, yolo_line_to_polygon
from annotate.images import find_images
from annotate.settings import VideoSettings

from .exports import fresh_folder, zip_dataset
from .media import draw_overlay
from .sessions import UserSession
from .uploads import UploadError, check_videos, collect_uploads

if TYPE_CHECKING:
    from .studio import Studio

GALLERY_SIZE = 12
FRAMES_PER_VIDEO = 3  # in the gallery: a video's first, middle and last frame


class AnnotateTab:
    """Handlers of the Auto-annotate tab; `annotate` also serves the named API."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    def run(
        self,
        files: list[str] | None,
        detector: str,
        class_names: list[str] | None,
        conf: float,
        request: gr.Request,
        progress: Any = gr.Progress(),
        keyframe_interval: float = VideoSettings.keyframe_interval,
    ) -> tuple[list, str, str | None]:
        """Images and videos (or zips of them) and the classes to keep, by name (none: all) -> a gallery of the
        first images and of each video's frames with their masks and counts, the dataset as a zip, and the first
        video's tracked preview; the progress bar moves with the images and frames. (Gradio puts the request and
        progress in their places; the keyframe slider, the fifth input, lands in `keyframe_interval`.)"""
        with self.studio.user_session(request) as user:
            class_ids = self.class_ids(detector, class_names)
            return self.annotate(user, files, detector, class_ids, conf, progress, keyframe_interval)

    def class_names(self, detector: str) -> Any:
        """The detector's classes, for the class picker (names; the detector changed)."""
        if detector not in self.studio.detectors.names:
            return gr.update(choices=[], value=[])
        return gr.update(choices=list(self.studio.detectors.class_names(detector).values()), value=[])

    def class_ids(self, detector: str, names: list[str] | None) -> list[int] | None:
        """Class names picked from the detector's list -> their ids (None: every class)."""
        if not names:
            return None
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise gr.Error("Classes must be picked from the detector's list of class names.")
        if detector not in self.studio.detectors.names:
            raise gr.Error(f"Unknown detector {detector!r}; choose one of {', '.join(self.studio.detectors.names)}.")
        by_name = {name: i for i, name in self.studio.detectors.class_names(detector).items()}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise gr.Error(f"{detector} does not detect {', '.join(map(str, unknown))}; pick classes from its list.")
        return sorted(by_name[n] for n in names)

    def annotate(
        self,
        user: UserSession,
        files: list[str] | None,
        detector: str,
        class_ids: list[int] | None,
        conf: float,
        progress: Any,
        keyframe_interval: float = VideoSettings.keyframe_interval,
    ) -> tuple[list, str, str | None]:
        """Annotate the uploads into the user's folder -> (gallery, dataset zip path, first video's preview or
        None). Videos: the detector on every `keyframe_interval`-th frame, SAM 2 tracking in between."""
        if not files:
            raise gr.Error("Upload images, videos, or a zip of them first.")
        if detector not in self.studio.detectors.names:
            raise gr.Error(f"Unknown detector {detector!r}; choose one of {', '.join(self.studio.detectors.names)}.")
        if not isinstance(conf, (int, float)) or not 0.0 <= conf <= 1.0:
            raise gr.Error(f"The detector confidence must be a number between 0 and 1, got {conf!r}.")
        if not isinstance(keyframe_interval, (int, float)) or not 1 <= keyframe_interval <= 100:
            raise gr.Error(f"The keyframe interval must be 1 to 100 frames, got {keyframe_interval!r}.")
        folder = fresh_folder(user.workdir / "annotate")
        inputs = folder / "images"
        inputs.mkdir()
        try:
            count = collect_uploads([str(f) for f in files], inputs, self.studio.limits)
            check_videos(inputs, self.studio.limits)
        except UploadError as error:
            raise gr.Error(str(error)) from error
        if count == 0:
            raise gr.Error("No images found in the upload, nor videos (jpg, png, webp, bmp, tif..., mp4, mov, webm).")
        progress(0.0, desc=f"Annotating {count} files")
        try:
            with self.studio.detectors.borrow(detector) as yolo:
                summary = auto_annotate(
                    inputs,
                    det_model=yolo,
                    sam_model=self.studio.model,
                    conf=conf,
                    classes=class_ids,
                    output_dir=folder / "dataset",
                    formats=["yolo", "coco"],
                    progress=lambda done, total: progress(
                        done / total, desc=f"Annotated {done} of {total} images and video frames"
                    ),
                    keyframe_interval=int(keyframe_interval),
                    preview=True,
                )
        except ConnectionError as error:
            raise gr.Error(f"The detector {detector} could not be downloaded (is the server offline?).") from error
        dataset = Path(summary.output_dir)
        videos = [v for v in summary.videos if v["failure"] is None]
        preview = dataset / "previews" / f"{videos[0]['key']}.mp4" if videos else None
        archive = zip_dataset(dataset, folder / "dataset.zip")
        return self.gallery(dataset, [v["key"] for v in videos]), str(archive), str(preview) if preview else None

    def gallery(self, dataset: Path, video_keys: Sequence[str] = ()) -> list[tuple[np.ndarray, str]]:
        """The first images of a dataset, then the first, middle and last frame of each video, with their labels
        drawn, captioned with their names and what was found."""
        images = dataset / "images"
        frames_of = {key: find_images(images / key) for key in video_keys}
        in_videos = {p for frames in frames_of.values() for p in frames}
        chosen = [p for p in find_images(images) if p not in in_videos][:GALLERY_SIZE]
        for frames in frames_of.values():
            picks = sorted({0, len(frames) // 2, len(frames) - 1}) if frames else []
            chosen += [frames[i] for i in picks][:FRAMES_PER_VIDEO]
        items = []
        for image_path in chosen[: GALLERY_SIZE + FRAMES_PER_VIDEO * len(video_keys)]:
            relative = image_path.relative_to(images)
            label = dataset / "labels" / relative.with_suffix(".txt")
            if label.is_file():
                lines = label.read_text().splitlines()
                found = f"{len(lines)} object{'s' * (len(lines) != 1)}" if lines else "nothing found"
                image = self.studio.open_image(str(image_path))
                items.append((draw_yolo_label(image, "\n".join(lines)), f"{relative.as_posix()}: {found}"))
        return items


def parse_classes(text: str | None) -> list[int] | None:
    """ "0, 2,5" -> [0, 2, 5]; empty -> None (all classes); gr.Error for anything else."""
    if not text or not text.strip():
        return None
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError as error:
        raise gr.Error(f"Classes must be comma-separated class ids like 0,2,5; got {text!r}.") from error


def draw_yolo_label(image: np.ndarray, text: str) -> np.ndarray:
    """An HxWx3 uint8 RGB image with the instances of a YOLO-seg label file drawn on it."""
    height, width = image.shape[:2]
    masks: list[np.ndarray | None] = []
    for line in text.splitlines():
        _, polygon = yolo_line_to_polygon(line, (width, height))
        masks.append(polygon_to_mask(polygon, (width, height)))
    return draw_overlay(image, masks)
