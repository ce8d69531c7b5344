"""Detectors: anything that turns RGB images into `supervision.Detections` (xyxy pixels, class_id, confidence)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, cast

import numpy as np
import supervision as sv
import torch

from .settings import DetectorSettings


class Detector(Protocol):
    """Images -> detections, with class names by id; `batched` when one call on many images is faster."""

    @property
    def names(self) -> dict[int, str]: ...

    @property
    def batched(self) -> bool: ...

    def __call__(self, images: list[np.ndarray]) -> list[sv.Detections]: ...


def names_dict(names: Mapping[int, str] | Sequence[str] | None) -> dict[int, str]:
    """Class names as {id: name}, from a mapping or a sequence in id order (None: no names)."""
    if names is None:
        return {}
    if isinstance(names, Mapping):
        return {int(k): str(v) for k, v in names.items()}
    return dict(enumerate(str(n) for n in names))


@dataclass
class YoloDetector:
    """An ultralytics YOLO model run in batches with the run's `DetectorSettings`."""

    model: Any  # ultralytics.YOLO
    settings: DetectorSettings = field(default_factory=DetectorSettings)
    batched: ClassVar[bool] = True

    @property
    def names(self) -> dict[int, str]:
        return names_dict(self.model.names)

    def __call__(self, images: list[np.ndarray]) -> list[sv.Detections]:
        """HxWx3 uint8 RGB images -> one `Detections` per image."""
        settings = self.settings
        threads = torch.get_num_threads()
        try:
            results = self.model.predict(
                [np.ascontiguousarray(image[:, :, ::-1]) for image in images],  # ultralytics takes BGR arrays
                conf=settings.conf,
                iou=settings.iou,
                imgsz=settings.imgsz,
                max_det=settings.max_det,
                classes=None if settings.classes is None else list(settings.classes),
                device=settings.device or None,
                verbose=False,
            )
        finally:
            # ultralytics' select_device sets torch to cpu_count - 1 threads: 1 on a 2-core machine, which would
            # halve the speed of SAM 2 running in the same process.
            torch.set_num_threads(threads)
        return [sv.Detections.from_ultralytics(result) for result in results]


@dataclass
class CallableDetector:
    """A user's function: HxWx3 uint8 RGB image -> `supervision.Detections`, called image by image."""

    function: Callable[[np.ndarray], sv.Detections]
    classes: tuple[int, ...] | None = None
    names: dict[int, str] = field(default_factory=dict)
    batched: ClassVar[bool] = False

    def __call__(self, images: list[np.ndarray]) -> list[sv.Detections]:
        return [self.detect(image) for image in images]

    def detect(self, image: np.ndarray) -> sv.Detections:
        detections = self.function(image)
        if not isinstance(detections, sv.Detections):
            raise ValueError(
                f"The detector returned {type(detections).__name__}; it must return supervision.Detections "
                "(xyxy pixels, class_id, confidence), e.g. sv.Detections.from_ultralytics(result)."
            )
        if not len(detections):
            return detections
        if detections.class_id is None:
            raise ValueError("The detector's Detections have no class_id: set class_id (one int per box).")
        if self.classes is not None:
            detections = cast(sv.Detections, detections[np.isin(detections.class_id, self.classes)])
        return detections


def make_detector(
    det_model: str | Path | Any | Callable[[np.ndarray], sv.Detections], settings: DetectorSettings
) -> YoloDetector | CallableDetector:
    """Wrap `det_model` (a YOLO name or path, a loaded YOLO, or a callable) as a batch detector."""
    from ultralytics.engine.model import Model

    if isinstance(det_model, Model):
        return YoloDetector(det_model, settings)
    if isinstance(det_model, (str, Path)):
        return YoloDetector(load_yolo(det_model), settings)
    if callable(det_model):
        names = names_dict(getattr(det_model, "names", None))
        return CallableDetector(det_model, classes=settings.classes, names=names)
    raise ValueError(
        f"det_model must be a YOLO model name or path, a loaded ultralytics YOLO, or a callable "
        f"(RGB image -> supervision.Detections); got {type(det_model).__name__}."
    )


def load_yolo(name: str | Path) -> Any:
    """Load an ultralytics detector by name (downloaded on first use) or path, with an offline message that helps."""
    from ultralytics import YOLO

    threads = torch.get_num_threads()
    try:
        return YOLO(str(name))
    except (ConnectionError, FileNotFoundError) as error:
        raise ConnectionError(
            f"Could not load the detector {name} ({type(error).__name__}: {str(error).strip().splitlines()[-1]}). "
            f"If this machine is offline, download {Path(str(name)).name} on a machine with internet access "
            f"(ultralytics release assets) and pass its path: det_model='/path/to/{Path(str(name)).name}' "
            f"(CLI: --det-model PATH)."
        ) from error
    finally:
        torch.set_num_threads(threads)
