"""Turn image folders into segmentation datasets: YOLO boxes become SAM 2 prompts, masks become labels.

>>> from annotate import auto_annotate
>>> summary = auto_annotate("photos/", det_model="yolo11x.pt", sam_model="sam2.1_b.pt", formats=["yolo", "coco"])
>>> print(summary)

Names are imported on first use, so `python -m annotate --help` answers without loading torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import sam2_model  # noqa: F401  (first: it keeps ultralytics from installing packages; see its ultralytics_settings)

if TYPE_CHECKING:
    from .pipeline import auto_annotate
    from .settings import DetectorSettings, OutputSettings
    from .summary import AnnotationSummary

_LAZY = {
    "auto_annotate": "pipeline",
    "AnnotationSummary": "summary",
    "DetectorSettings": "settings",
    "OutputSettings": "settings",
}

__all__ = ["AnnotationSummary", "DetectorSettings", "OutputSettings", "auto_annotate"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
