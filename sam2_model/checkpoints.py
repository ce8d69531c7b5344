"""SAM 2 checkpoints: which names we know, where their files come from, and how a file is recognised.

One table (`MODEL_ZOO`) maps every name we accept to a `ModelSpec`: ultralytics' asset names (`sam2.1_b.pt`) and
Meta's file names (`sam2.1_hiera_base_plus.pt`). A file of any other name is recognised by its weights' shapes, so a
fine-tuned or renamed checkpoint loads too.

Downloads go through ultralytics' downloader into ultralytics' weights folder (`yolo settings weights_dir`), so a file
fetched once is reused by every later run, whatever the working directory.
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from .ultralytics_adapter import build_network

_META_URL = "https://dl.fbaipublicfiles.com/segment_anything_2"
_META_RELEASE = {"2": "072824", "2.1": "092824"}

# size code -> (Meta's name of the size, Hiera embed dim, number of Hiera blocks)
_SIZES = {
    "t": ("tiny", 96, 12),
    "s": ("small", 96, 16),
    "b": ("base_plus", 112, 24),
    "l": ("large", 144, 48),
}


@dataclass(frozen=True)
class ModelSpec:
    """One SAM 2 architecture: a size (t, s, b, l) and a version ("2" or "2.1")."""

    size: str
    version: str

    @property
    def asset_name(self) -> str:
        """ultralytics' release asset name, e.g. ``sam2.1_b.pt``."""
        return f"sam2{'.1' if self.version == '2.1' else ''}_{self.size}.pt"

    @property
    def meta_name(self) -> str:
        """Meta's checkpoint file name, e.g. ``sam2.1_hiera_base_plus.pt``."""
        return f"sam2{'.1' if self.version == '2.1' else ''}_hiera_{_SIZES[self.size][0]}.pt"

    @property
    def meta_url(self) -> str:
        return f"{_META_URL}/{_META_RELEASE[self.version]}/{self.meta_name}"

    @property
    def label(self) -> str:
        """Human name, e.g. ``SAM 2.1 base_plus``."""
        return f"SAM {self.version} {_SIZES[self.size][0]}"

    def build_untrained(self) -> torch.nn.Module:
        """Build the network with random weights, in eval mode, on the CPU."""
        return build_network(self.size, sam2_1=self.version == "2.1")


MODEL_ZOO: dict[str, ModelSpec] = {}
for _version in ("2", "2.1"):
    for _size in _SIZES:
        _spec = ModelSpec(_size, _version)
        MODEL_ZOO[_spec.asset_name] = _spec
        MODEL_ZOO[_spec.meta_name] = _spec


def known_names() -> list[str]:
    """Every model name `load_model` downloads by itself."""
    return sorted(MODEL_ZOO)


def weights_dir() -> Path:
    """ultralytics' weights folder, where downloaded checkpoints are kept."""
    from ultralytics.utils import SETTINGS

    return Path(SETTINGS["weights_dir"])


def resolve_checkpoint(model: str | Path) -> Path:
    """Return the local file for `model`, downloading a known checkpoint on first use.

    `model` is a path to an existing file, or a name from `MODEL_ZOO` (looked up in the weights folder, then
    downloaded there). Raises FileNotFoundError for a missing path, ValueError for an unknown name, and
    ConnectionError (with the URL and the offline fix) when a download fails.
    """
    path = Path(model).expanduser()
    if path.is_file():
        return path
    name = path.name
    if str(model) == name and name in MODEL_ZOO:
        cached = weights_dir() / name
        if cached.is_file():
            return cached
        return _download(MODEL_ZOO[name], name, cached)
    if path.is_dir():
        raise ValueError(f"{model} is a folder; expected a SAM 2 checkpoint file (.pt), e.g. {path / 'sam2.1_b.pt'}.")
    looks_like_path = path.parent != Path(".") or path.suffix in {".pt", ".pth", ".bin", ".ckpt", ".safetensors"}
    if looks_like_path:
        raise FileNotFoundError(
            f"Checkpoint file not found: {path}. Check the path, or use a model name that downloads by itself: "
            f"{', '.join(s.asset_name for s in _specs('2.1'))}."
        )
    raise ValueError(
        f"Unknown SAM 2 model {model!r}. Use an ultralytics name ({', '.join(s.asset_name for s in _specs('2.1'))}, "
        f"or sam2_t/s/b/l.pt for SAM 2.0), one of Meta's file names ({', '.join(s.meta_name for s in _specs('2.1'))}) "
        "or the path to a checkpoint file."
    )


def _specs(version: str) -> list[ModelSpec]:
    return [ModelSpec(size, version) for size in _SIZES]


def _download(spec: ModelSpec, name: str, target: Path) -> Path:
    import inspect

    from ultralytics.utils.downloads import attempt_download_asset, safe_download

    if name == spec.meta_name:
        url = spec.meta_url
    else:
        release = inspect.signature(attempt_download_asset).parameters["release"].default
        url = f"https://github.com/ultralytics/assets/releases/download/{release}/{name}"
    created = [p for p in (target.parent, *target.parent.parents) if not p.exists()]  # removed again on failure
    error: Exception | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if name == spec.meta_name:
            safe_download(url=url, file=target, min_bytes=1e5)
        else:
            attempt_download_asset(target)
    except Exception as failure:  # ultralytics raises ConnectionError, but also other OSError/ValueError subclasses
        error = failure
    if error is None and target.is_file():
        return target
    for folder in created:  # a failed download leaves no empty weights folder behind
        with contextlib.suppress(OSError):
            folder.rmdir()
    raise ConnectionError(_download_failure(name, url, target, error)) from error


def _download_failure(name: str, url: str, target: Path, error: BaseException | None) -> str:
    """What went wrong with a download, its cause, and the fix: fetch the file elsewhere and pass its path."""
    if error is None:
        cause = "the download produced no file"
    else:
        text = str(error).strip().splitlines()
        cause = f"{type(error).__name__}: {text[-1] if text else 'no details'}"
    offline = isinstance(error, (ConnectionError, TimeoutError)) or "offline" in cause.lower()
    return (
        f"Could not download the SAM 2 checkpoint {name} from {url} ({cause})"
        f"{'; this machine may be offline' if offline else ''}. Download that URL on a machine with internet "
        f"access, copy the file here (for example to {target}) and pass its path (app: --model /path/to/{name}; "
        f"annotate: --sam-model /path/to/{name}; Python: load_model('/path/to/{name}'))."
    )


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a SAM 2 checkpoint file and return its state dict (tensors on the CPU).

    Accepts Meta's layout (``{"model": state_dict}``, also used by ultralytics' SAM 2 assets) and a bare state dict.
    Never unpickles arbitrary objects (``weights_only=True``).
    Raises ValueError for a truncated, corrupt or foreign file.
    """
    path = Path(path)
    if path.stat().st_size == 0:
        raise ValueError(f"Checkpoint {path} is empty (0 bytes): delete it and download or copy it again.")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, zipfile errors...
        message = str(error)
        if "Weights only load failed" in message:
            raise ValueError(
                f"{path} is not a SAM 2 checkpoint: it holds pickled Python objects (a YOLO or full-model file?), "
                "while SAM 2 checkpoints hold only tensors. Pass Meta's or ultralytics' SAM 2 checkpoint."
            ) from error
        raise ValueError(
            f"Could not read checkpoint {path}: the file is truncated or corrupt ({type(error).__name__}: "
            f"{message.splitlines()[0] if message else ''}). Delete it and download or copy it again."
        ) from error
    state = loaded.get("model", loaded) if isinstance(loaded, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors (expected {{'model': state_dict}}).")
    return state


def spec_from_state_dict(state: dict[str, torch.Tensor], source: str = "checkpoint") -> ModelSpec:
    """Recognise the SAM 2 architecture (size and version) from a state dict's keys and shapes."""
    pos_embed = state.get("image_encoder.trunk.pos_embed")
    if pos_embed is None or "sam_mask_decoder.iou_token.weight" not in state:
        sample = ", ".join(list(state)[:3]) or "no keys"
        raise ValueError(
            f"{source} holds weights of another architecture, not SAM 2: it lacks "
            f"'image_encoder.trunk.pos_embed' and 'sam_mask_decoder.*' (its first keys: {sample}). "
            "Pass a SAM 2 or SAM 2.1 checkpoint (Hiera tiny, small, base_plus or large)."
        )
    block_ids = {int(m.group(1)) for k in state if (m := re.match(r"image_encoder\.trunk\.blocks\.(\d+)\.", k))}
    shape = (int(pos_embed.shape[1]), len(block_ids))
    for size, (_, dim, blocks) in _SIZES.items():
        if (dim, blocks) == shape:
            return ModelSpec(size, "2.1" if "no_obj_embed_spatial" in state else "2")
    raise ValueError(
        f"{source} is a Hiera SAM 2 network of an unknown size (embed dim {shape[0]}, {shape[1]} blocks); "
        "known sizes: tiny (96, 12), small (96, 16), base_plus (112, 24), large (144, 48)."
    )


def load_weights(net: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load `state` into `net` strictly; a mismatch raises ValueError naming the missing and unexpected keys."""
    try:
        result = net.load_state_dict(state, strict=False)
    except RuntimeError as error:  # shape mismatches raise even with strict=False
        raise ValueError(f"{source} does not fit the SAM 2 network: {str(error).splitlines()[-1].strip()}") from error
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{source} does not fit the SAM 2 network: missing keys {result.missing_keys[:5]}"
            f"{' ...' if len(result.missing_keys) > 5 else ''}, unexpected keys {result.unexpected_keys[:5]}"
            f"{' ...' if len(result.unexpected_keys) > 5 else ''}. Is it a complete SAM 2 checkpoint?"
        )
