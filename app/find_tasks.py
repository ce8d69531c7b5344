"""Find's GPU work: an open-vocabulary detector (YOLOE, YOLO-World) proposes boxes for names, or YOLOE for one
example box (its visual prompt), and SAM 2 turns every box into a mask in one batched prompt call.

Module-level functions of picklable values, as every GPU task (`gpu_tasks`): the detector is lent by the pool and
passed in (on ZeroGPU a pickled copy runs in the worker), text embeddings travel as CPU tensors. `FindTasks` runs
them through the runner the other GPU tasks use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from annotate.detectors import text_embeddings, ultralytics_device_guard, use_text_embeddings
from sam2_model import ImagePredictor, Sam2Model
from sam2_model.embedding_cache import ImageFeatures

from . import gpu
from .gpu_tasks import GpuTasks, _predictor_on

VISUAL_PROMPT_DETECTORS = ("YOLOE",)  # ultralytics' visual prompts exist for YOLOE only


@dataclass(frozen=True)
class FindRequest:
    """What to find on one image: `phrases` with their 1xNxD float32 CPU text `embeddings`, or one `example` box
    (xyxy image pixels) for YOLOE's visual prompt. Detections scored below `conf` are dropped, at most `max_det`
    kept (best first)."""

    phrases: tuple[str, ...] = ()
    embeddings: torch.Tensor | None = None
    example: tuple[float, float, float, float] | None = None
    conf: float = 0.05
    max_det: int = 32


@dataclass(frozen=True)
class Found:
    """Objects found on an image, best detector score first. xyxy: Nx4 float32 image pixels; confidence: N float32
    (the detector's score); class_id: N int64, an index into the request's phrases (0 for the example's kind);
    masks: NxHxW bool (SAM 2, one per box); mask_scores: N float32 (SAM 2's predicted IoU)."""

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    masks: np.ndarray
    mask_scores: np.ndarray

    def __len__(self) -> int:
        return len(self.xyxy)


def detect_boxes(
    detector: Any, image: np.ndarray, request: FindRequest, device: torch.device
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detector's boxes on an HxWx3 uint8 RGB image for the request -> (xyxy Nx4 float32 pixels, confidence N
    float32, class_id N int64), best first. ValueError for a request the detector cannot answer (a visual prompt for
    YOLO-World, names without embeddings)."""
    kind = type(detector).__name__
    bgr = np.ascontiguousarray(image[:, :, ::-1])  # ultralytics takes BGR arrays
    options: dict[str, Any] = {"conf": request.conf, "max_det": request.max_det, "device": device, "verbose": False}
    with ultralytics_device_guard():
        if request.example is not None:
            if kind not in VISUAL_PROMPT_DETECTORS:
                raise ValueError(f"Find similar needs YOLOE (visual prompts); {kind} takes names only.")
            from ultralytics.models.yolo.yoloe import YOLOEVPDetectPredictor, YOLOEVPSegPredictor

            predictor = YOLOEVPSegPredictor if detector.task == "segment" else YOLOEVPDetectPredictor
            prompts = {"bboxes": np.array([request.example], np.float32), "cls": np.array([0])}
            (result,) = detector.predict(bgr, visual_prompts=prompts, predictor=predictor, **options)
        else:
            if request.embeddings is None or not request.phrases:
                raise ValueError("Find by name needs the names and their text embeddings.")
            use_text_embeddings(detector, request.phrases, request.embeddings)
            (result,) = detector.predict(bgr, **options)
    boxes = result.boxes
    xyxy = boxes.xyxy.cpu().numpy().astype(np.float32).reshape(-1, 4)
    confidence = boxes.conf.cpu().numpy().astype(np.float32).reshape(-1)
    class_id = boxes.cls.cpu().numpy().astype(np.int64).reshape(-1)
    order = np.argsort(-confidence, kind="stable")
    return xyxy[order], confidence[order], class_id[order]


def segment_boxes(
    model: Sam2Model, image: np.ndarray, features: ImageFeatures | None, xyxy: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """SAM 2's mask of each box on an HxWx3 uint8 RGB image, all boxes in one `predict` call (the predictor decodes
    them in batches of `MAX_PROMPTS_PER_CALL`) -> (NxHxW bool, N float32 predicted IoU). `features`: the image's
    embedding (None: the model's cache has it, or it is computed now)."""
    height, width = image.shape[:2]
    if not len(xyxy):
        return np.zeros((0, height, width), bool), np.zeros(0, np.float32)
    if features is not None:
        predictor = _predictor_on(model, image, features)
    else:
        predictor = ImagePredictor(model)
        predictor.set_image(image)  # the embedding cache answers when the image was opened in this process
    masks, scores, _ = predictor.predict(box=np.asarray(xyxy, np.float32), multimask_output=False)
    # one box gives CxHxW (C = 1), several BxCxHxW: one mask per box either way
    return masks.reshape(len(xyxy), -1, height, width)[:, 0] > 0, scores.reshape(len(xyxy), -1)[:, 0]


def find_objects(
    key: int, detector: Any, image: np.ndarray, features: ImageFeatures | None, request: FindRequest
) -> Found:
    """Detect what the request asks for on an HxWx3 uint8 RGB image, then SAM 2's mask of every box (see `Found`)."""
    gpu.fork_safe()
    model = gpu.model_by_key(key)
    xyxy, confidence, class_id = detect_boxes(detector, image, request, model.device)
    masks, mask_scores = segment_boxes(model, image, features, xyxy)
    return Found(xyxy, confidence, class_id, masks, mask_scores.astype(np.float32))


def detect_objects(
    key: int, detector: Any, image: np.ndarray, request: FindRequest
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The detector's boxes only (see `detect_boxes`), on the model's device: for a video's frame, whose boxes
    become the video predictor's prompts."""
    gpu.fork_safe()
    return detect_boxes(detector, image, request, gpu.model_by_key(key).device)


def embed_phrases(detector: Any, phrases: tuple[str, ...]) -> torch.Tensor:
    """The 1xNxD float32 CPU text embeddings of `phrases` from the detector's text encoder; ConnectionError when the
    encoder cannot be loaded (see `annotate.detectors.text_embeddings`)."""
    gpu.fork_safe()
    return text_embeddings(detector, phrases)


def _find_budget(*_args: Any, **_kwargs: Any) -> int:
    return gpu.everything_seconds()  # a detector pass and at most a few dozen boxes: less than Segment everything


def _embed_budget(*_args: Any, **_kwargs: Any) -> int:
    return gpu.click_seconds()


class FindTasks:
    """Find's GPU tasks on the model of `tasks`, run the way `tasks` runs its own."""

    def __init__(self, tasks: GpuTasks) -> None:
        self.key = tasks.key
        self._find = tasks.runner.wrap(find_objects, _find_budget)
        self._detect = tasks.runner.wrap(detect_objects, _embed_budget)  # one detector pass: a click's budget
        self._embed = tasks.runner.wrap(embed_phrases, _embed_budget)

    def find_objects(
        self, detector: Any, image: np.ndarray, features: ImageFeatures | None, request: FindRequest
    ) -> Found:
        """See `find_objects` (module function)."""
        found: Found = self._find(self.key, detector, image, features, request)
        return found

    def embed_phrases(self, detector: Any, phrases: tuple[str, ...]) -> torch.Tensor:
        """See `embed_phrases` (module function)."""
        embeddings: torch.Tensor = self._embed(detector, phrases)
        return embeddings

    def detect_objects(
        self, detector: Any, image: np.ndarray, request: FindRequest
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """See `detect_objects` (module function)."""
        boxes: tuple[np.ndarray, np.ndarray, np.ndarray] = self._detect(self.key, detector, image, request)
        return boxes
