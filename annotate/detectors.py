"""Detectors: anything that turns RGB images into `supervision.Detections` (xyxy pixels, class_id, confidence)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, cast

import numpy as np
import supervision as sv
import torch

from .box_sources import BoxSource, is_box_source, open_box_source
from .settings import DetectorSettings, class_ids_by_name, detector_for_device


class Detector(Protocol):
    """Images -> detections, with class names by id; `batched` when one call on many images is faster. A detector
    with a true `by_name` attribute (`annotate.box_sources.BoxSource`) is called with the images' names too."""

    @property
    def names(self) -> dict[int, str]: ...

    @property
    def batched(self) -> bool: ...

    def __call__(self, images: list[np.ndarray]) -> list[sv.Detections]: ...


def detect(detector: Detector, images: list[np.ndarray], names: Sequence[str]) -> list[sv.Detections]:
    """One call of `detector` on HxWx3 uint8 RGB images named `names` (see `annotate.box_sources` for names): a
    detector looks at the pixels; a box source reads the boxes stated for those names."""
    if getattr(detector, "by_name", False):
        return cast(Callable[..., list[sv.Detections]], detector)(images, names)
    return detector(images)


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

    model: Any  # ultralytics.YOLO, YOLOE or YOLOWorld
    settings: DetectorSettings = field(default_factory=DetectorSettings)
    batched: ClassVar[bool] = True

    def __post_init__(self) -> None:
        """Classes given by name: an open-vocabulary model is prompted with them (its classes become exactly
        those); a closed-set model keeps the classes of those names."""
        names = self.settings.class_names
        self.class_ids: list[int] | None = None
        if names is None:
            self.class_ids = None if self.settings.classes is None else [int(c) for c in self.settings.classes]
        elif is_open_vocabulary(self.model):
            set_text_classes(self.model, list(names), self.settings.text_embeddings)
        else:
            self.class_ids = class_ids_by_name(names_dict(self.model.names), names)

    @property
    def names(self) -> dict[int, str]:
        return names_dict(self.model.names)

    def __call__(self, images: list[np.ndarray]) -> list[sv.Detections]:
        """HxWx3 uint8 RGB images -> one `Detections` per image."""
        settings = self.settings
        device = yolo_device(settings)  # before the guard: it may initialise CUDA, whose current device it keeps
        with ultralytics_device_guard():
            results = self.model.predict(
                [np.ascontiguousarray(image[:, :, ::-1]) for image in images],  # ultralytics takes BGR arrays
                conf=settings.conf,
                iou=settings.iou,
                imgsz=settings.imgsz,
                max_det=settings.max_det,
                classes=self.class_ids,
                device=device,
                verbose=False,
            )
        return [sv.Detections.from_ultralytics(result) for result in results]


def yolo_device(settings: DetectorSettings) -> torch.device:
    """The run's device as ultralytics gets it: our canonical `torch.device` (`sam2_model.devices.select_device`),
    never a string. Why: given a string ("1", "cuda:1"), older ultralytics releases (8.4.0 among them)
    set CUDA_VISIBLE_DEVICES (for the whole process and its children) and ran on cuda:0, another GPU than SAM 2's;
    given a torch.device, every release in our range uses it as it is."""
    from sam2_model.devices import select_device

    return select_device(settings.sam_device())


@contextlib.contextmanager
def ultralytics_device_guard() -> Iterator[None]:
    """Undo what ultralytics' select_device does to the process around a call: it sets torch to cpu_count - 1
    threads (1 on a 2-core machine, which would halve the speed of SAM 2 in the same process) and, for an
    explicit GPU, makes that GPU torch's current device (which would change what "cuda" means afterwards)."""
    threads = torch.get_num_threads()
    current = torch.cuda.current_device() if torch.cuda.is_initialized() else None
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        if current is not None and torch.cuda.current_device() != current:
            torch.cuda.set_device(current)


@dataclass
class CallableDetector:
    """A user's function: HxWx3 uint8 RGB image -> `supervision.Detections`, called image by image."""

    function: Callable[[np.ndarray], sv.Detections]
    classes: tuple[int, ...] | tuple[str, ...] | None = None
    names: dict[int, str] = field(default_factory=dict)
    batched: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.classes and isinstance(self.classes[0], str):  # by name: the function's `names` say which ids
            if not self.names:
                raise ValueError(
                    "classes are given by name, but the detector function has no `names` attribute ({id: name}) "
                    "to find them in: give class ids, or set its names."
                )
            self.classes = tuple(class_ids_by_name(self.names, [str(c) for c in self.classes]))

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
) -> YoloDetector | CallableDetector | BoxSource:
    """Wrap `det_model` as a batch detector: a YOLO name or path, "auto", a loaded YOLO, a callable, or boxes you
    already have (a folder of YOLO labels, a COCO .json file, or a `BoxSource`; see `annotate.box_sources`)."""
    from ultralytics.engine.model import Model

    if is_box_source(det_model):
        det_model = open_box_source(det_model)
    if isinstance(det_model, BoxSource):
        det_model.keep_classes(settings.classes)
        return det_model
    if isinstance(det_model, Model):
        return YoloDetector(det_model, settings)
    if isinstance(det_model, (str, Path)):
        return YoloDetector(load_yolo(resolve_auto_detector(det_model, settings)), settings)
    if callable(det_model):
        names = names_dict(getattr(det_model, "names", None))
        return CallableDetector(det_model, classes=settings.classes, names=names)
    raise ValueError(
        f"det_model must be a YOLO model name or path, a loaded ultralytics YOLO, a callable (RGB image -> "
        f"supervision.Detections), or boxes (a folder of YOLO labels, a COCO .json); got {type(det_model).__name__}."
    )


def resolve_auto_detector(det_model: str | Path, settings: DetectorSettings) -> str | Path:
    """`det_model`, with "auto" replaced by the YOLO for the run's device (`annotate.settings.AUTO_DETECTORS`)."""
    if str(det_model) != "auto":
        return det_model
    from sam2_model.devices import select_device

    return detector_for_device("auto", select_device(settings.sam_device()).type)


# ---------------------------------------------------------------------------------------- classes by name
# The text encoder each open-vocabulary family downloads on first use (ultralytics.nn.text_model).
TEXT_ENCODERS = {
    "mobileclip": "mobileclip_blt.ts (MobileCLIP, downloaded by ultralytics)",
    "mobileclip2": "mobileclip2_b.ts (MobileCLIP2, downloaded by ultralytics)",
    "clip": "OpenAI CLIP ViT-B/32 (the `clip` package: pip install git+https://github.com/ultralytics/CLIP.git; "
    "its weights are downloaded on first use)",
}


def is_open_vocabulary(model: Any) -> bool:
    """Whether an ultralytics model takes its classes as text (YOLOE, YOLO-World)."""
    return type(model).__name__ in ("YOLOE", "YOLOWorld")


def text_encoder_of(model: Any) -> str:
    """What an open-vocabulary model needs to turn class names into embeddings (a file to download, a package)."""
    if type(model).__name__ == "YOLOWorld":
        return TEXT_ENCODERS["clip"]
    base = str(getattr(model.model, "text_model", "mobileclip:blt")).split(":")[0]
    return TEXT_ENCODERS.get(base, base)


def set_text_classes(model: Any, names: list[str], embeddings_file: str | None = None) -> None:
    """Make an open-vocabulary model detect exactly `names` (class ids follow their order), with the text
    embeddings of `embeddings_file` (see `save_text_embeddings`) or else its text encoder. When the encoder cannot be
    loaded (offline), raises ConnectionError naming what to download and the offline alternative."""
    embeddings = None if embeddings_file is None else load_text_embeddings(embeddings_file, names)
    if embeddings is not None:
        use_text_embeddings(model, names, embeddings)
        return
    threads = torch.get_num_threads()
    try:
        model.set_classes(names)
    except Exception as error:  # the text encoder: a download, a package install, a file
        raise _encoder_error(model, names, error) from error
    finally:
        torch.set_num_threads(threads)


def use_text_embeddings(model: Any, names: Sequence[str], embeddings: torch.Tensor) -> None:
    """Make an open-vocabulary model detect exactly `names` (class ids follow their order) from their 1xNxD float32
    text embeddings (any device): no text encoder is loaded."""
    names = list(names)
    if embeddings.ndim != 3 or embeddings.shape[:2] != (1, len(names)):
        raise ValueError(f"embeddings must be 1xNxD for the {len(names)} names, got shape {tuple(embeddings.shape)}.")
    device = next(model.model.parameters()).device
    if type(model).__name__ == "YOLOE":
        model.set_classes(names, embeddings.to(device))
    else:  # YOLO-World keeps its text features on its model: ultralytics' own offline path
        model.model.txt_feats = embeddings.to(device)
        model.model.model[-1].nc = len(names)
        model.model.names = names
        model.predictor = None


def text_embeddings(model: Any, names: Sequence[str]) -> torch.Tensor:
    """The 1xNxD float32 CPU text embeddings of `names` from an open-vocabulary model's text encoder (loaded, or
    downloaded, on first use). ValueError for a model that takes no text; ConnectionError naming what to download and
    the offline alternative when the encoder cannot be loaded."""
    names = list(names)
    kind = type(model).__name__
    if kind not in ("YOLOE", "YOLOWorld"):
        raise ValueError(f"{kind} takes no text prompts; use a YOLOE or YOLO-World model.")
    threads = torch.get_num_threads()
    try:
        embeddings = model.get_text_pe(names) if kind == "YOLOE" else model.model.get_text_pe(names)
    except Exception as error:  # the text encoder: a download, a package install, a file
        raise _encoder_error(model, names, error) from error
    finally:
        torch.set_num_threads(threads)
    return embeddings.detach().float().cpu()


def _encoder_error(model: Any, names: Sequence[str], error: Exception) -> ConnectionError:
    return ConnectionError(
        f"Could not embed the class names {list(names)} with the detector's text encoder, "
        f"{text_encoder_of(model)} ({type(error).__name__}: {str(error).strip()[:200]}). On a machine with "
        "internet access, install or download it; or there, save the names' embeddings once with "
        "annotate.detectors.save_text_embeddings(model, names, 'classes.npz') and pass "
        "text_embeddings='classes.npz' here (CLI: --text-embeddings classes.npz)."
    )


def save_text_embeddings(model: Any, names: Sequence[str], path: str | Path) -> Path:
    """Embed class names with an open-vocabulary model's text encoder and save them (.npz: `names`, `embeddings`
    float32 1xNxD), for runs on machines that cannot load the encoder (`text_embeddings=path`)."""
    names = list(names)
    embeddings = text_embeddings(model, names)
    path = Path(path)
    np.savez(path, names=np.array(names), embeddings=embeddings.numpy())
    return path


def load_text_embeddings(path: str | Path, names: Sequence[str]) -> torch.Tensor:
    """The 1xNxD float32 embeddings of `names` (in that order) from a `save_text_embeddings` file; ValueError for a
    file that is not one, or that lacks a name."""
    try:
        with np.load(path, allow_pickle=False) as saved:
            saved_names = [str(n) for n in saved["names"]]
            embeddings = np.asarray(saved["embeddings"], np.float32)
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(
            f"{path} is not a text-embeddings file (an .npz with `names` and `embeddings`, written by "
            f"annotate.detectors.save_text_embeddings): {type(error).__name__}: {error}"
        ) from error
    if embeddings.ndim != 3 or embeddings.shape[:2] != (1, len(saved_names)):
        raise ValueError(f"{path}: embeddings must be 1xNxD for its N names, got shape {embeddings.shape}.")
    missing = [n for n in names if n not in saved_names]
    if missing:
        raise ValueError(
            f"{path} has no embedding for {', '.join(map(repr, missing))} (it has {', '.join(saved_names)}); save "
            "the embeddings of every class name you pass."
        )
    order = [saved_names.index(n) for n in names]
    return torch.from_numpy(embeddings[:, order].copy())


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
