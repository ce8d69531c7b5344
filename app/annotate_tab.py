"""The Auto-annotate tab: uploaded images (or zips of images) -> a gallery of masks and the dataset as a zip."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import gradio as gr
import numpy as np

from annotate import auto_annotate
from annotate.formats import polygon_to_mask, yolo_line_to_polygon
from annotate.images import find_images

from .exports import fresh_folder, zip_dataset
from .media import draw_overlay
from .sessions import UserSession
from .uploads import UploadError, collect_uploads

if TYPE_CHECKING:
    from .studio import Studio

GALLERY_SIZE = 12


class AnnotateTab:
    """Handlers of the Auto-annotate tab; `annotate` also serves the named API."""

    def __init__(self, studio: Studio) -> None:
        self.studio = studio

    def run(
        self,
        files: list[str] | None,
        detector: str,
        classes: str,
        conf: float,
        request: gr.Request,
        progress: Any = gr.Progress(track_tqdm=True),
    ) -> tuple[list, str]:
        """Images (or a zip of images) -> a gallery of the masks and the dataset as a zip (auto_annotate's tqdm bar
        is the progress bar the user sees)."""
        with self.studio.user_session(request) as user:
            return self.annotate(user, files, detector, classes, conf, progress, show_tqdm=True)

    def annotate(
        self,
        user: UserSession,
        files: list[str] | None,
        detector: str,
        classes: str,
        conf: float,
        progress: Any,
        show_tqdm: bool = False,
    ) -> tuple[list, str]:
        """Annotate the uploads into the user's folder -> (gallery of up to 12 images, dataset zip path)."""
        if not files:
            raise gr.Error("Upload images or a zip of images first.")
        class_ids = parse_classes(classes)
        if detector not in self.studio.detectors.names:
            raise gr.Error(f"Unknown detector {detector!r}; choose one of {', '.join(self.studio.detectors.names)}.")
        if not isinstance(conf, (int, float)) or not 0.0 <= conf <= 1.0:
            raise gr.Error(f"The detector confidence must be a number between 0 and 1, got {conf!r}.")
        folder = fresh_folder(user.workdir / "annotate")
        inputs = folder / "images"
        inputs.mkdir()
        try:
            count = collect_uploads([str(f) for f in files], inputs, self.studio.limits)
        except UploadError as error:
            raise gr.Error(str(error)) from error
        if count == 0:
            raise gr.Error("No images found in the upload (jpg, png, webp, bmp, tif...).")
        progress(0.05, desc=f"Annotating {count} images")
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
                    progress=show_tqdm,
                )
        except ConnectionError as error:
            raise gr.Error(f"The detector {detector} could not be downloaded (is the server offline?).") from error
        dataset = Path(summary.output_dir)
        return self.gallery(dataset), str(zip_dataset(dataset, folder / "dataset.zip"))

    def gallery(self, dataset: Path) -> list[tuple[np.ndarray, str]]:
        """The first images of a dataset with their labels drawn, captioned with their names."""
        items = []
        for image_path in find_images(dataset / "images")[:GALLERY_SIZE]:
            relative = image_path.relative_to(dataset / "images")
            label = dataset / "labels" / relative.with_suffix(".txt")
            if label.is_file():
                image = self.studio.open_image(str(image_path))
                items.append((draw_yolo_label(image, label.read_text()), relative.stem))
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
