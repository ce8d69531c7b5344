"""The unit of work of every backend: a batch of images read, detected, segmented and written.

`BatchAnnotator` holds one detector, one SAM 2 image predictor and the run's exporters. The local backend runs its
stages overlapped in threads; a Ray worker runs whole batches. The same batch through the same steps gives the same
files, whichever backend ran it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import supervision as sv
import torch

from sam2_model import ImagePredictor
from sam2_model.chunk_sizes import chunk_sizes
from sam2_model.transforms import low_res_to_masks

from .box_sources import NoBoxes
from .detectors import Detector, detect
from .exporters import ImageEntry, Instance
from .images import ImageReadError, ImageTask, read_image
from .run_record import RunRecord
from .settings import OutputSettings
from .writers import link_file

logger = logging.getLogger("annotate")


@dataclass(frozen=True)
class ImageOutcome:
    """What became of one image: the class ids written (empty: no detections), or why it failed; no_boxes: the box
    source has no boxes for it (`annotate.box_sources`), so it was skipped, not written."""

    source: str
    class_ids: tuple[int, ...] = ()
    failure: str | None = None
    no_boxes: bool = False


class BatchAnnotator:
    """One detector, one SAM 2 predictor and the run's exporters, annotating batches of images."""

    def __init__(self, detector: Detector, predictor: ImagePredictor, settings: OutputSettings) -> None:
        self.detector = detector
        self.predictor = predictor
        self.settings = settings
        self.exporters = settings.exporters()
        self.record = RunRecord(settings.output)

    def annotate(self, tasks: Sequence[ImageTask]) -> list[ImageOutcome]:
        """One batch, start to end: read, one detector call, one SAM 2 call per image, atomic writes."""
        outcomes, readable = [], []
        for task in tasks:
            image = read_task(task)
            if isinstance(image, ImageReadError):
                outcomes.append(ImageOutcome(str(task.source), failure=image.reason))
            else:
                readable.append((task, image))
        for task, image, result in self.detect_and_segment(readable):
            outcomes.append(result if isinstance(result, ImageOutcome) else self.write(task, image.shape, *result))
        return outcomes

    def detect_and_segment(
        self, readable: Sequence[tuple[ImageTask, np.ndarray]]
    ) -> Iterator[
        tuple[ImageTask, np.ndarray, ImageOutcome | tuple[sv.Detections, torch.Tensor | None, torch.Tensor | None]]
    ]:
        """Decoded images of one batch -> per image a failed or skipped outcome, or (detections, Nx256x256 low-res
        logits, N predicted IoUs; both None without detections)."""
        found = self.detect([image for _, image in readable], [task.name for task, _ in readable])
        for (task, image), detections in zip(readable, found, strict=True):
            if isinstance(detections, str):
                yield task, image, ImageOutcome(str(task.source), failure=detections)
                continue
            if isinstance(detections, NoBoxes):
                yield task, image, ImageOutcome(str(task.source), no_boxes=True)
                continue
            try:
                segmented = self.segment(image, detections)
            except (torch.OutOfMemoryError, MemoryError) as error:  # even one box at a time: this image fails
                first_line = (str(error).strip().splitlines() or [""])[0][:200]
                failure = f"SAM 2 ran out of memory on this image: {type(error).__name__}: {first_line}"
                yield task, image, ImageOutcome(str(task.source), failure=failure)
                continue
            except Exception as error:  # one bad image must not stop the folder; the failure names it
                failure = f"SAM 2 failed: {type(error).__name__}: {error}"
                yield task, image, ImageOutcome(str(task.source), failure=failure)
                continue
            low_res, ious = (None, None) if segmented is None else segmented
            yield task, image, (detections, low_res, ious)

    def detect(
        self, images: list[np.ndarray], names: Sequence[str] | None = None
    ) -> list[sv.Detections | str | NoBoxes]:
        """Detections per image, or the reason the detector failed on that image, or NoBoxes when a box source has
        none for it. `names`: the images' names (`ImageTask.name`), which a box source finds boxes by.

        One batched call; when it fails, the images are retried one by one (so one bad image fails alone) and the
        batch's error is logged."""
        names = list(names) if names is not None else [""] * len(images)
        if getattr(self.detector, "batched", False) and len(images) > 1:
            try:
                return list(detect(self.detector, images, names))
            except Exception as error:
                logger.warning(
                    "The detector failed on a batch of %d images (%s: %s); retrying them one by one.",
                    len(images),
                    type(error).__name__,
                    error,
                )
        results: list[sv.Detections | str | NoBoxes] = []
        for image, name in zip(images, names, strict=True):
            try:
                results.append(detect(self.detector, [image], [name])[0])
            except NoBoxes as missing:
                results.append(missing)
            except Exception as error:
                results.append(f"detector failed: {type(error).__name__}: {error}")
        return results

    def segment(self, image: np.ndarray, detections: sv.Detections) -> tuple[torch.Tensor, torch.Tensor] | None:
        """All boxes of one image in one SAM 2 call on one embedding -> (Nx256x256 float32 low-res logits, N float32
        predicted IoUs: SAM 2's ``iou_predictions``), on the CPU; None: no boxes."""
        if len(detections) == 0:
            return None
        self.predictor.set_image(image)
        return self.decode_boxes(detections.xyxy.astype(np.float32))

    def decode_boxes(self, boxes: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Nx4 float32 xyxy boxes on the predictor's image -> (Nx256x256 float32 low-res logits, N float32 predicted
        IoUs) on the CPU, in one SAM 2 call; when that runs out of GPU memory, again in two halves (each halved
        again as needed, down to one box per call). Each box is decoded on its own, so the halves give the same masks.
        Raises torch.OutOfMemoryError when a single box does not fit."""
        try:
            low_res, ious = self.predictor.predict_low_res(box=boxes, multimask_output=False)
            return low_res[:, 0].cpu(), ious[:, 0].float().cpu()
        except torch.OutOfMemoryError as error:
            if len(boxes) == 1:
                raise
            logger.warning(
                "SAM 2 ran out of memory on %d boxes (%s); retrying them in two halves.",
                len(boxes),
                (str(error).strip().splitlines() or [""])[0][:200],
            )
        # outside the except clause: its traceback holds the failed call's tensors until the clause ends
        release_cached_memory()
        half = len(boxes) // 2
        (first, first_ious), (second, second_ious) = self.decode_boxes(boxes[:half]), self.decode_boxes(boxes[half:])
        return torch.cat([first, second]), torch.cat([first_ious, second_ious])

    def write(
        self,
        task: ImageTask,
        image_shape: tuple[int, ...],
        detections: sv.Detections,
        low_res: torch.Tensor | None,
        ious: torch.Tensor | None = None,
    ) -> ImageOutcome:
        """Write one image in every format, link it into the dataset, then record it as done."""
        try:
            instances = list(self.instances(image_shape[:2], detections, low_res, ious))
            height, width = image_shape[:2]
            file_name = task.image_link.relative_to(self.settings.output / "images").as_posix()
            entry = ImageEntry(task.key, file_name, width, height)
            for exporter in self.exporters:
                exporter.write(entry, instances)
            link_file(task.source, task.image_link)
            self.record.mark_done(task.key)
        except Exception as error:  # disk full, permissions: this image fails, the run goes on
            return ImageOutcome(str(task.source), failure=f"writing failed: {type(error).__name__}: {error}")
        return ImageOutcome(str(task.source), class_ids=tuple(i.class_id for i in instances))

    def instances(
        self,
        image_hw: tuple[int, ...],
        detections: sv.Detections,
        low_res: torch.Tensor | None,
        ious: torch.Tensor | None = None,
    ) -> Iterable[Instance]:
        """One instance per detection: its SAM 2 mask at the image's size (with `ious`' predicted IoU), or its box
        when the mask is unusable."""
        height, width = int(image_hw[0]), int(image_hw[1])
        threshold = self.predictor.mask_threshold
        class_ids = detections.class_id
        if class_ids is None:
            if len(detections):
                raise ValueError("The detector's Detections have no class_id: set class_id (one int per box).")
            return
        masks: Iterator[np.ndarray | None] = iter([None] * len(detections))
        if low_res is not None:
            # all instances upsampled on SAM 2's device, a memory-bounded chunk per interpolate and host transfer
            device = self.predictor.model.device
            chunk = chunk_sizes(device).masks_per_chunk(height, width)
            masks = low_res_to_masks(low_res, (height, width), threshold, device=device, chunk=chunk)
        for index, mask in enumerate(masks):
            yield Instance.from_mask(
                int(class_ids[index]),
                mask,
                detections.xyxy[index],
                min_area=self.settings.min_mask_area,
                simplify=self.settings.simplify,
                score=None if detections.confidence is None else float(detections.confidence[index]),
                resolution_wh=(width, height),
                sam2_iou=None if ious is None else float(ious[index]),
            )


def release_cached_memory() -> None:
    """Give the CUDA caching allocator's free blocks back, so a retry after an out-of-memory error starts from what
    is really in use (nothing to do without CUDA)."""
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.empty_cache()


def read_task(task: ImageTask) -> np.ndarray | ImageReadError:
    """The task's image, or the error that says why it cannot be read (the run records it and goes on)."""
    try:
        return read_image(task.source)
    except ImageReadError as error:
        return error
    except OSError as error:  # the file vanished or cannot be opened
        return ImageReadError(task.source, f"{type(error).__name__}: {error}")
