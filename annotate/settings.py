"""What a run of `auto_annotate` is configured with: how the detector runs and what the run writes.

The Python API, the CLI, the Ray workers and the app all take their defaults from these two dataclasses. Light on
purpose (no torch): the CLI reads its defaults from here before it parses its arguments.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sam2_model.auto import AUTO, AUTO_MODELS, auto_choice

from .exporters import Exporter, exporter_class
from .splits import VAL_FRACTION, check_val_fraction

# "auto" for the detector, by the rule SAM 2's "auto" follows (`sam2_model.auto`): the largest YOLO11 on a CUDA GPU,
# the smallest elsewhere (what the app's Auto-annotate tab offers first)
AUTO_DETECTORS = {"cuda": "yolo11x.pt", "other": "yolo11n.pt"}
AUTO_HELP = (
    f"auto: {AUTO_DETECTORS['other']} and {AUTO_MODELS['other']} on a CPU (or MPS), {AUTO_DETECTORS['cuda']} and "
    f"{AUTO_MODELS['cuda']} on a CUDA GPU"
)


def detector_for_device(det_model: str, device_type: str) -> str:
    """`det_model` as given, or for "auto" the detector `AUTO_DETECTORS` names for a torch device type."""
    return auto_choice(AUTO_DETECTORS, device_type) if det_model == AUTO else det_model


@dataclass(frozen=True)
class DetectorSettings:
    """How the detector runs.

    conf: confidence threshold in [0, 1]; iou: NMS IoU threshold in [0, 1]; imgsz: input size in pixels;
    max_det: maximum detections per image; classes: the classes to keep, as class ids or as class names (None keeps
    all); names become the prompts of an open-vocabulary detector (YOLOE, YOLO-World); device: ultralytics' device
    string ("" auto, "cpu", "0", "cuda:1", "mps"), also used for SAM 2; text_embeddings: an .npz of the class
    names' text embeddings (`annotate.detectors.save_text_embeddings`), so an open-vocabulary detector needs no
    text encoder (offline machines).
    """

    conf: float = 0.25
    iou: float = 0.45
    imgsz: int = 640
    max_det: int = 300
    classes: tuple[int, ...] | tuple[str, ...] | None = None
    device: str = ""
    text_embeddings: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 <= self.conf <= 1.0 or not 0.0 <= self.iou <= 1.0:
            raise ValueError(f"conf and iou must be between 0 and 1, got conf={self.conf} and iou={self.iou}.")
        if self.imgsz < 32 or self.max_det < 1:
            raise ValueError(f"imgsz must be >= 32 and max_det >= 1, got imgsz={self.imgsz}, max_det={self.max_det}.")
        if self.classes is not None:
            values: tuple[Any, ...] = (self.classes,) if isinstance(self.classes, str) else tuple(self.classes)
            if values and all(isinstance(c, str) for c in values):
                if not all(c.strip() for c in values) or len(set(values)) != len(values):
                    raise ValueError(f"class names must be distinct and not empty, got {list(values)!r}.")
                classes: tuple[int, ...] | tuple[str, ...] = tuple(c.strip() for c in values)
            else:
                try:
                    classes = tuple(int(c) for c in values if not isinstance(c, str) and int(c) == c)
                except (TypeError, ValueError) as error:
                    raise ValueError(f"classes must be class ids or class names, got {self.classes!r}.") from error
                if len(classes) != len(values):
                    raise ValueError(
                        f"classes must be all class ids (integers) or all class names, got {self.classes!r}."
                    )
            object.__setattr__(self, "classes", classes)
        if self.text_embeddings is not None:
            object.__setattr__(self, "text_embeddings", str(self.text_embeddings))

    @property
    def class_names(self) -> tuple[str, ...] | None:
        """The classes when given by name (None when given as ids, or not given)."""
        if self.classes and isinstance(self.classes[0], str):
            return tuple(str(c) for c in self.classes)
        return None

    def sam_device(self) -> str | None:
        """ultralytics' device string as a torch device for SAM 2 ("" -> auto, "0" or "0,1" -> cuda:0)."""
        device = str(self.device).strip()
        if not device:
            return None
        if device.replace(",", "").isdigit():
            return f"cuda:{device.split(',')[0]}"
        return device


def on_device(settings: DetectorSettings, device: Any) -> DetectorSettings:
    """`settings` with the detector on `device` (a canonical torch device, e.g. the SAM 2 model's): both models of a
    run share one GPU, whatever name the user gave it ("", "cuda", "1")."""
    return replace(settings, device=str(device))


@dataclass(frozen=True)
class OutputSettings:
    """What a run writes: the dataset folder, its formats ("yolo" always among them), how masks become labels, and
    the validation split.

    min_mask_area: masks smaller than this many pixels fall back to the detector's box; simplify: polygon tolerance
    in pixels (0 keeps every contour vertex); val_fraction: the share of images and videos held out for validation,
    in [0, 1) (see `annotate.splits`; 0: validate on the training set).
    """

    output: Path
    formats: tuple[str, ...] = ("yolo",)
    min_mask_area: int = 0
    simplify: float = 0.0
    val_fraction: float = VAL_FRACTION

    def __post_init__(self) -> None:
        formats = tuple(dict.fromkeys(("yolo", *self.formats)))  # YOLO labels always; no format twice
        for name in formats:
            exporter_class(name)  # ValueError naming the known formats
        object.__setattr__(self, "formats", formats)
        object.__setattr__(self, "output", Path(self.output))
        if self.min_mask_area < 0 or self.simplify < 0:
            raise ValueError(f"min_mask_area and simplify must be >= 0, got {self.min_mask_area}, {self.simplify}.")
        object.__setattr__(self, "val_fraction", check_val_fraction(self.val_fraction))

    def exporters(self) -> list[Exporter]:
        return [exporter_class(name)(self.output) for name in self.formats]


@dataclass(frozen=True)
class VideoSettings:
    """How videos are annotated: the detector on keyframes, SAM 2 tracking in between, continuous track ids.

    frame_stride: use every N-th frame of a video (1: every frame); tracking, detection and the written frames all
        work on these frames, named by their number in the video. SAM 2 was trained on videos sampled at 6 fps:
        on a 30 fps clip, frame_stride=5 is ~5x faster and usually tracks as well.
    keyframe_interval: run the detector on every N-th used frame (and on the last); objects that appear are
        found at the next keyframe and tracked backwards to where they entered.
    match_iou: a detection belongs to a track when its SAM 2 mask overlaps the track's mask on that keyframe by
        at least this IoU; a detection that overlaps no track this much starts a new one.
    reprompt_iou: re-prompt a matched track with its detection's box when their masks overlap less than this
        (None: never; trust the tracker between detections).
    end_after: a track that matches no detection on this many keyframes in a row, and whose mask is empty,
        ends (its id is not reused).
    preview: also write ``previews/<video>.mp4``, an H.264 overlay of the masks with their track ids.
    max_tracks: start at most this many tracks in a video (None: no limit). Each live track costs SAM 2 a memory
        attention pass per frame, and a detector at a low confidence can find hundreds of objects on a keyframe:
        the cap bounds the cost (only the `max_tracks` most confident detections of a keyframe are segmented).
        Detections left out are not tracked; the video's summary counts them (`untracked_detections`).
    """

    frame_stride: int = 1
    keyframe_interval: int = 10
    match_iou: float = 0.5
    reprompt_iou: float | None = None
    end_after: int = 2
    preview: bool = False
    max_tracks: int | None = None

    def __post_init__(self) -> None:
        if self.frame_stride < 1 or self.keyframe_interval < 1 or self.end_after < 1:
            raise ValueError(
                "frame_stride, keyframe_interval and end_after must be >= 1, got "
                f"{self.frame_stride}, {self.keyframe_interval} and {self.end_after}."
            )
        if not 0.0 < self.match_iou <= 1.0:
            raise ValueError(f"match_iou must be in (0, 1], got {self.match_iou}.")
        if self.reprompt_iou is not None and not 0.0 < self.reprompt_iou <= 1.0:
            raise ValueError(f"reprompt_iou must be in (0, 1] or None, got {self.reprompt_iou}.")
        if self.max_tracks is not None and (isinstance(self.max_tracks, bool) or self.max_tracks < 1):
            raise ValueError(f"max_tracks must be >= 1 or None (no limit), got {self.max_tracks}.")


def class_ids_by_name(names: dict[int, str], wanted: Sequence[str]) -> list[int]:
    """Class names -> the ids a closed-set detector gives them; ValueError naming the unknown ones (a detector that
    takes names as text prompts is YOLOE or YOLO-World)."""
    by_name = {name.lower(): i for i, name in names.items()}
    unknown = [name for name in wanted if name.lower() not in by_name]
    if unknown:
        known = ", ".join(list(names.values())[:12]) + (", ..." if len(names) > 12 else "")
        raise ValueError(
            f"The detector has no class named {', '.join(map(repr, unknown))} (its classes: {known}). Use one of its "
            "class names or ids, or an open-vocabulary detector (YOLOE, e.g. yoloe-11s-seg.pt, or YOLO-World) that "
            "takes any names."
        )
    return sorted(by_name[name.lower()] for name in wanted)
