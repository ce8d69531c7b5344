"""Auto-annotating uploads, Gradio-free: the Auto-annotate tab and the named API /auto_annotate both call it.

Uploaded images and videos (or zips of them) are copied under names we choose (`uploads.collect_uploads`), checked
against the limits, and handed to `annotate.auto_annotate` with a detector borrowed from the pool; the result is the
dataset zip, a gallery of what was found and the first video's tracked preview.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from annotate.detectors import use_text_embeddings
from annotate.images import find_images
from annotate.polygons import polygon_to_mask, yolo_line_to_polygon
from annotate.settings import VideoSettings

from .exports import fresh_folder, safe_stem, zip_dataset
from .find_workflow import FindWorkflow
from .gpu_tasks import Step, last_of
from .media import draw_overlay
from .refusals import Refusal
from .services import Services
from .sessions import UserSession
from .uploads import check_videos, collect_uploads

GALLERY_SIZE = 12
FRAMES_PER_VIDEO = 3  # in the gallery: a video's first, middle and last frame

Progress = Callable[..., Any]
Gallery = list[tuple[np.ndarray, str]]


class AnnotateWorkflow:
    """Uploads -> dataset (YOLO-seg, COCO; videos: tracks too), with a gallery and the first video's preview."""

    def __init__(self, services: Services, find: FindWorkflow | None = None) -> None:
        self.services = services
        self.find = find or FindWorkflow(services)  # open-vocabulary detectors: their text embeddings, cached

    def is_open_vocabulary(self, detector: str) -> bool:
        """Whether `detector` is one of Find's (YOLOE, YOLO-World): its classes are any names typed."""
        return detector in self.services.finders.names

    def class_ids(self, detector: str, names: list[str] | None) -> list[int] | None:
        """Class names picked from the detector's list -> their ids (None: every class)."""
        if not names:
            return None
        if isinstance(names, str) or not all(isinstance(n, str) for n in names):
            raise Refusal("Classes must be picked from the detector's list of class names.")
        if detector not in self.services.detectors.names:
            raise Refusal(f"Unknown detector {detector!r}; choose one of {', '.join(self.services.detectors.names)}.")
        by_name = {name: i for i, name in self.services.detectors.class_names(detector).items()}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise Refusal(f"{detector} does not detect {', '.join(map(str, unknown))}; pick classes from its list.")
        return sorted(by_name[n] for n in names)

    def annotate(
        self,
        user: UserSession,
        files: list[str] | None,
        detector: str,
        class_ids: list[int] | None,
        conf: float,
        progress: Progress,
        keyframe_interval: float = VideoSettings.keyframe_interval,
        notify: Callable[[str], Any] | None = None,
        phrases: list[str] | None = None,
    ) -> tuple[Gallery, str, str | None]:
        """Annotate the uploads into the user's folder -> (gallery, dataset zip path, first video's preview or
        None). Videos: the detector on every `keyframe_interval`-th frame, SAM 2 tracking in between, at most
        `limits.max_tracks` objects each; `notify(message)` is told of detections left untracked by that limit,
        and of files that failed (how many, and why). `phrases`: the classes of an open-vocabulary `detector` (one of
        the services' `finders`), the dataset's class names in that order."""
        if not files:
            raise Refusal("Upload images, videos, or a zip of them first.")
        if phrases is not None and not self.is_open_vocabulary(detector):
            raise Refusal(f"Classes by free text need an open-vocabulary detector ({', '.join(self.find.detectors)}).")
        if phrases is None and detector not in self.services.detectors.names:
            raise Refusal(f"Unknown detector {detector!r}; choose one of {', '.join(self.services.detectors.names)}.")
        if not isinstance(conf, (int, float)) or not 0.0 <= conf <= 1.0:
            raise Refusal(f"The detector confidence must be a number between 0 and 1, got {conf!r}.")
        if not isinstance(keyframe_interval, (int, float)) or not 1 <= keyframe_interval <= 100:
            raise Refusal(f"The keyframe interval must be 1 to 100 frames, got {keyframe_interval!r}.")
        folder = fresh_folder(user.workdir / "annotate")
        inputs = folder / "images"
        inputs.mkdir()
        count = collect_uploads([str(f) for f in files], inputs, self.services.limits)  # UploadError: a Refusal
        check_videos(inputs, self.services.limits)
        if count == 0:
            raise Refusal("No images found in the upload, nor videos (jpg, png, webp, bmp, tif..., mp4, mov, webm).")
        progress(0.0, desc=f"Annotating {count} files")

        def show(step: Step) -> None:
            progress(step.done / step.total, desc=f"Annotated {step.done} of {step.total} images and video frames")

        try:
            pool = self.services.detectors if phrases is None else self.services.finders
            with pool.borrow(detector) as yolo:  # borrowed here: the GPU task gets a copy
                if phrases is not None:  # the detector's classes become exactly the phrases (ids in their order)
                    use_text_embeddings(yolo, phrases, self.find.embeddings(detector, yolo, phrases))
                    class_ids = None
                steps = self.services.gpu.annotate_files(
                    yolo, inputs, folder / "dataset", conf=conf, classes=class_ids, formats=["yolo", "coco"],
                    keyframe_interval=int(keyframe_interval), preview=True, max_tracks=self.services.limits.max_tracks,
                )  # fmt: skip
                summary = last_of(steps, show)
        except ConnectionError as error:
            raise Refusal(f"The detector {detector} could not be downloaded (is the server offline?).") from error
        dataset = Path(summary.output_dir)
        videos = [v for v in summary.videos if v["failure"] is None]
        for video in videos:
            if video["untracked_detections"] and notify is not None:
                notify(
                    f"{video['key']}: {video['untracked_detections']} detections were not tracked: this server tracks "
                    f"at most {self.services.limits.max_tracks} objects per video (raise the detector confidence or "
                    "pick classes to keep the ones you want)."
                )
        failed = summary.failure_note()  # the dataset holds the rest: say what is missing from it, and why
        if failed is not None and notify is not None:
            notify(failed)
        preview = dataset / "previews" / f"{videos[0]['key']}.mp4" if videos else None
        archive = zip_dataset(dataset, folder / f"{dataset_name(files)}.zip")
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
                image = self.services.open_image(str(image_path))
                items.append((draw_yolo_label(image, "\n".join(lines)), f"{relative.as_posix()}: {found}"))
        return items


def parse_classes(text: str | None) -> list[int] | None:
    """ "0, 2,5" -> [0, 2, 5]; empty -> None (all classes); Refusal for anything else."""
    if not text or not text.strip():
        return None
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError as error:
        raise Refusal(f"Classes must be comma-separated class ids like 0,2,5; got {text!r}.") from error


def draw_yolo_label(image: np.ndarray, text: str) -> np.ndarray:
    """An HxWx3 uint8 RGB image with the instances of a YOLO-seg label file drawn on it."""
    height, width = image.shape[:2]
    masks: list[np.ndarray | None] = []
    for line in text.splitlines():
        _, polygon = yolo_line_to_polygon(line, (width, height))
        masks.append(polygon_to_mask(polygon, (width, height)))
    return draw_overlay(image, masks)


def dataset_name(files: Sequence[str]) -> str:
    """The dataset zip's name: the upload's own name when there is one file ("clips.zip" -> "clips_dataset"),
    else "dataset"."""
    if len(files) == 1:
        return f"{safe_stem(Path(str(files[0])).name)}_dataset"
    return "dataset"
