"""The shared SAM 2 backend: one model per process, Meta's predictor semantics, serving features on top.

>>> from sam2_model import load_model, ImagePredictor
>>> model = load_model("sam2.1_b.pt")          # downloaded once, shared by every predictor
>>> predictor = ImagePredictor(model)
>>> predictor.set_image(image_rgb)              # HxWx3 uint8 RGB
>>> masks, scores, logits = predictor.predict(point_coords=[[500, 375]], point_labels=[1])
"""

from .automatic_mask_generator import AutomaticMaskGenerator
from .checkpoints import MODEL_ZOO, ModelSpec, known_names
from .image_predictor import ImagePredictor
from .model import DEFAULT_MODEL, Sam2Model, load_model
from .video_predictor import VideoPredictor
from .video_session import VideoSession

__all__ = [
    "DEFAULT_MODEL",
    "MODEL_ZOO",
    "AutomaticMaskGenerator",
    "ImagePredictor",
    "ModelSpec",
    "Sam2Model",
    "VideoPredictor",
    "VideoSession",
    "known_names",
    "load_model",
]
