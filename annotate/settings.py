"""What a run of `auto_annotate` is configured with: how the detector runs and what the run writes.

The Python API, the CLI, the Ray workers and the app all take their defaults from these two dataclasses. Light on
purpose (no torch): the CLI reads its defaults from here before it parses its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .exporters import Exporter, exporter_class


@dataclass(frozen=True)
class DetectorSettings:
    """How the detector runs.

    conf: confidence threshold in [0, 1]; iou: NMS IoU threshold in [0, 1]; imgsz: input size in pixels;
    max_det: maximum detections per image; classes: class ids to keep (None keeps all); device: ultralytics' device
    string ("" auto, "cpu", "0", "cuda:1", "mps"), also used for SAM 2.
    """

    conf: float = 0.25
    iou: float = 0.45
    imgsz: int = 640
    max_det: int = 300
    classes: tuple[int, ...] | None = None
    device: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.conf <= 1.0 or not 0.0 <= self.iou <= 1.0:
            raise ValueError(f"conf and iou must be between 0 and 1, got conf={self.conf} and iou={self.iou}.")
        if self.imgsz < 32 or self.max_det < 1:
            raise ValueError(f"imgsz must be >= 32 and max_det >= 1, got imgsz={self.imgsz}, max_det={self.max_det}.")
        if self.classes is not None:
            try:
                classes = tuple(int(c) for c in self.classes)
            except (TypeError, ValueError) as error:
                raise ValueError(f"classes must be class ids (integers), got {self.classes!r}.") from error
            object.__setattr__(self, "classes", classes)

    def sam_device(self) -> str | None:
        """ultralytics' device string as a torch device for SAM 2 ("" -> auto, "0" or "0,1" -> cuda:0)."""
        device = str(self.device).strip()
        if not device:
            return None
        if device.replace(",", "").isdigit():
            return f"cuda:{device.split(',')[0]}"
        return device


@dataclass(frozen=True)
class OutputSettings:
    """What a run writes: the dataset folder, its formats ("yolo" always among them), and how masks become labels.

    min_mask_area: masks smaller than this many pixels fall back to the detector's box; simplify: polygon tolerance
    in pixels (0 keeps every contour vertex).
    """

    output: Path
    formats: tuple[str, ...] = ("yolo",)
    min_mask_area: int = 0
    simplify: float = 0.0

    def __post_init__(self) -> None:
        formats = tuple(dict.fromkeys(("yolo", *self.formats)))  # YOLO labels always; no format twice
        for name in formats:
            exporter_class(name)  # ValueError naming the known formats
        object.__setattr__(self, "formats", formats)
        object.__setattr__(self, "output", Path(self.output))
        if self.min_mask_area < 0 or self.simplify < 0:
            raise ValueError(f"min_mask_area and simplify must be >= 0, got {self.min_mask_area}, {self.simplify}.")

    def exporters(self) -> list[Exporter]:
        return [exporter_class(name)(self.output) for name in self.formats]
