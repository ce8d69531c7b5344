"""The shared SAM 2 backend: one model per process, Meta's predictor semantics, serving features on top.

>>> from sam2_model import load_model, ImagePredictor
>>> model = load_model("sam2.1_b.pt")          # downloaded once, shared by every predictor
>>> predictor = ImagePredictor(model)
>>> predictor.set_image(image_rgb)              # HxWx3 uint8 RGB
>>> masks, scores, logits = predictor.predict(point_coords=[[500, 375]], point_labels=[1])

Names are imported on first use, so light modules (`sam2_model.rle`) load without torch and ultralytics.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .ultralytics_settings import disable_autoinstall, quiet_first_run_notice

disable_autoinstall()  # before anything of ours imports ultralytics (see ultralytics_settings.py)
quiet_first_run_notice()

if TYPE_CHECKING:
    from .automatic_mask_generator import AutomaticMaskGenerator
    from .checkpoints import MODEL_ZOO, ModelSpec, known_names
    from .image_predictor import ImagePredictor
    from .model import DEFAULT_MODEL, Sam2Model, load_model
    from .video_predictor import VideoPredictor
    from .video_session import FramePrompt, TrackingInProgressError, VideoObject, VideoSession

_LAZY = {
    "AutomaticMaskGenerator": "automatic_mask_generator",
    "MODEL_ZOO": "checkpoints",
    "ModelSpec": "checkpoints",
    "known_names": "checkpoints",
    "ImagePredictor": "image_predictor",
    "DEFAULT_MODEL": "model",
    "Sam2Model": "model",
    "load_model": "model",
    "VideoPredictor": "video_predictor",
    "FramePrompt": "video_session",
    "TrackingInProgressError": "video_session",
    "VideoObject": "video_session",
    "VideoSession": "video_session",
}

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_ZOO",
    "AutomaticMaskGenerator",
    "FramePrompt",
    "ImagePredictor",
    "ModelSpec",
    "Sam2Model",
    "TrackingInProgressError",
    "VideoObject",
    "VideoPredictor",
    "VideoSession",
    "known_names",
    "load_model",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
