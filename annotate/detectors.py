"""Detectors: anything that turns RGB images into `supervision.Detections` (xyxy pixels, class_id, confidence)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import supervision as sv
import torch


def _names_dict(names: Mapping[int, str] | Sequence[str] | None) -> dict[int, str]:
    if names is None:
        return {}
    if isinstance(names, Mapping):
        return {int(k): str(v) for k, v in names.items()}
    return dict(enumerate(str(n) for n in names))


@dataclass
class YoloDetector:
    """An ultralytics YOLO model run in batches with auto_annotate's detection settings."""

    model: Any  # ultralytics.YOLO
    conf: float = 0.25
    iou: float = 0.45
    imgsz: int = 640
    max_det: int = 300
    classes: list[int] | None = None
    device: str = ""

    @property
    def names(self) -> dict[int, str]:
        return _names_dict(self.model.names)

    def __call__(self, images: list[np.ndarray]) -> list[sv.Detections]:
        """HxWx3 uint8 RGB images -> one `Detections` per image."""
        threads = torch.get_num_threads()
        try:
            results = self.model.predict(
                [np.ascontiguousarray(image[:, :, ::-1]) for image in images],  # ultralytics takes BGR arrays
                conf=self.conf,
                iou=self.iou,
                imgsz=self.imgsz,
                max_det=self.max_det,
                classes=self.classes,
                device=self.device or None,
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
    classes: list[int] | None = None
    names: dict[int, str] = field(default_factory=dict)

    def __call__(self, images: list[np.ndarray]) -> list[sv.Detections]:
        return [self.detect(image) for image in images]

    def detect(self, image: np.ndarray) -> sv.Detections:
        detections = self.function(image)
        if not isinstance(detections, sv.Detections):
            raise ValueError(
                f"The detector returned {type(detections).__name__}; it must return supervision.Detections "
                "(xyxy pixels, class_id, confidence), e.g. sv.Detections.from_ultralytics(result)."
            )
        if len(detections) and detections.class_id is None:
            raise ValueError("The detector's Detections have no class_id: set class_id (one int per box).")
        if self.classes is not None and len(detections):
            detections = detections[np.isin(detections.class_id, self.classes)]
        return detections


def make_detector(
    det_model: str | Path | Any | Callable[[np.ndarray], sv.Detections],
    *,
    device: str = "",
    conf: float = 0.25,
    iou: float = 0.45,
    imgsz: int = 640,
    max_det: int = 300,
    classes: list[int] | None = None,
) -> YoloDetector | CallableDetector:
    """Wrap `det_model` (a YOLO name or path, a loaded YOLO, or a callable) as a batch detector."""
    from ultralytics.engine.model import Model

    settings = {"conf": conf, "iou": iou, "imgsz": imgsz, "max_det": max_det, "classes": classes, "device": device}
    if isinstance(det_model, Model):
        return YoloDetector(det_model, **settings)
    if isinstance(det_model, (str, Path)):
        return YoloDetector(load_yolo(det_model), **settings)
    if callable(det_model):
        return CallableDetector(det_model, classes=classes, names=_names_dict(getattr(det_model, "names", None)))
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
