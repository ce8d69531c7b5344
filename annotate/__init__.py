"""Turn image folders into segmentation datasets: YOLO boxes become SAM 2 prompts, masks become labels.

>>> from annotate import auto_annotate
>>> summary = auto_annotate("photos/", det_model="yolo11x.pt", sam_model="sam2.1_b.pt", formats=["yolo", "coco"])
>>> print(summary)
"""

from .pipeline import auto_annotate
from .summary import AnnotationSummary

__all__ = ["AnnotationSummary", "auto_annotate"]
