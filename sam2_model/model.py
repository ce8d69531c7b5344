"""The loaded SAM 2 model that every predictor in the process shares, and `load_model` that returns it.

Thread safety: a `Sam2Model` may be used from many threads (web users, annotation workers). Each forward pass of the
network (an image encoding, one mask-decoder call, one video tracking step) runs inside `Sam2Model.inference()`,
which holds the model's lock for that pass only. Passes are serialised on purpose:
- one GPU runs one large pass at a time anyway; concurrent passes only stack their activation memory (an image
  encoding of SAM 2 large at 1024x1024 holds gigabytes), which is how a busy server runs out of memory;
- on the CPU every op already uses all cores, so parallel passes thrash instead of adding throughput;
- the passes are short (milliseconds for a click, a fraction of a second for an encoding on a GPU), so one user's long
  video propagation interleaves with other users' clicks instead of blocking them.
Everything else (embedding cache, predictor state, video sessions) is per-object and guarded by its own lock.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import torch

from .auto import AUTO, model_for_device
from .checkpoints import MODEL_ZOO, ModelSpec, load_weights, read_state_dict, resolve_checkpoint, spec_from_state_dict
from .devices import autocast, keep_large_allocations_in_heap, select_device, tf32
from .embedding_cache import EmbeddingCache
from .ultralytics_adapter import Sam2Network, check_network

DEFAULT_MODEL = "sam2.1_b.pt"
DEFAULT_EMBEDDING_CACHE_BYTES = 512 * 2**20  # ~32 images of 1024x1024 features in float32


class Sam2Model:
    """A SAM 2 network on a device, with its numeric policy, lock and embedding cache.

    Attributes:
        net: ultralytics' `SAM2Model` module (Meta's architecture and parameter names), in eval mode; typed as the
            members we use (`ultralytics_adapter.Sam2Network`), its private steps are the adapter's functions.
        spec: the architecture (size and version).
        device: where the network runs.
        source: the checkpoint file it was loaded from, or "untrained".
        embedding_cache: image features shared by every `ImagePredictor` on this model.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        spec: ModelSpec,
        device: torch.device,
        source: str,
        embedding_cache_bytes: int = DEFAULT_EMBEDDING_CACHE_BYTES,
    ) -> None:
        check_network(net)  # fail fast, naming what an unsupported ultralytics lacks, before any predictor runs
        _share_position_encodings(net)
        device = select_device(device)  # canonical: "cuda" -> "cuda:0", so devices compare as they should
        self.net = cast(Sam2Network, net.to(device).eval())
        self.spec = spec
        self.device = device
        self.source = source
        self.embedding_cache = EmbeddingCache(embedding_cache_bytes)
        self._lock = threading.RLock()

    @property
    def image_size(self) -> int:
        """Side of the square input the image encoder takes (1024 for the released models)."""
        return int(self.net.image_size)

    @contextlib.contextmanager
    def inference(self) -> Iterator[None]:
        """Run one forward pass: the model's lock, no autograd, and on CUDA bf16 autocast and TF32 (on Ampere and newer;
        only inside the pass, so other models in the process keep their numerics)."""
        with self._lock, torch.no_grad(), autocast(self.device), tf32(self.device):
            yield

    def __repr__(self) -> str:
        return f"Sam2Model({self.spec.label}, device={self.device}, source={self.source})"


class _ModelRegistry:
    """Loaded models by (checkpoint, canonical device), so a process loads each model once: "cuda" and "cuda:0" (the
    current GPU) are one key (`select_device` names a device one way)."""

    def __init__(self) -> None:
        self._models: dict[tuple[str, str], Sam2Model] = {}
        self._lock = threading.Lock()

    def get_or_load(self, key: tuple[str, str], load: Callable[[], Sam2Model]) -> Sam2Model:
        with self._lock:  # held while loading: two threads asking for one model load it once
            model = self._models.get(key)
            if model is None:
                model = self._models[key] = load()
            return model


_REGISTRY = _ModelRegistry()


def load_model(
    model: str | Path | Sam2Model = DEFAULT_MODEL,
    device: str | torch.device | None = None,
    *,
    untrained: bool = False,
    embedding_cache_bytes: int | None = None,
) -> Sam2Model:
    """Load a SAM 2 model once per process and return the shared `Sam2Model`.

    Args:
        model: an ultralytics asset name (``sam2_t/s/b/l.pt``, ``sam2.1_t/s/b/l.pt``), one of Meta's checkpoint file
            names (``sam2.1_hiera_tiny.pt``, ``_small``, ``_base_plus``, ``_large``, and ``sam2_hiera_*.pt``) -- both
            downloaded on first use -- or the path to a checkpoint file of any name (recognised by its weights);
            "auto" is SAM 2.1 base_plus on a CUDA GPU and tiny elsewhere (`sam2_model.auto`). A `Sam2Model` is
            returned as it is, so callers can pass either.
        device: "auto"/None (CUDA, else MPS, else CPU), "cpu", "cuda", "cuda:N" or "mps".
        untrained: build the network with random weights instead of loading any file (tests, smoke runs); `model`
            must then be a known name, which selects the architecture.
        embedding_cache_bytes: budget of the image-embedding cache shared by this model's image predictors. None
            keeps the model's budget (512 MiB for a newly loaded one); a number also resizes the cache of a model
            this process loaded before (it is the same shared model).

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: an unknown name, a corrupt or truncated file, weights of another architecture, a bad device.
        ConnectionError: a known checkpoint could not be downloaded (offline); the message says how to pass a file.
    """
    if isinstance(model, Sam2Model):
        if device is not None and select_device(device) != model.device:
            raise ValueError(
                f"The model given is already loaded on {model.device}, not on {device}: pass its name or checkpoint "
                "path to load it there, or leave the device unset."
            )
        loaded = model
    else:
        loaded = _load(model, device, untrained)
    if embedding_cache_bytes is not None:
        loaded.embedding_cache.resize(embedding_cache_bytes)
    return loaded


def _load(model: str | Path, device: str | torch.device | None, untrained: bool) -> Sam2Model:
    torch_device = select_device(device)
    if torch_device.type == "cpu":
        keep_large_allocations_in_heap()  # before building: threads torch starts now then share the main heap
    if str(model) == AUTO:
        model = model_for_device(AUTO, torch_device.type)
    if untrained:
        name = Path(str(model)).name
        if name not in MODEL_ZOO:
            raise ValueError(f"untrained=True needs a known model name to pick the architecture, got {model!r}.")
        spec = MODEL_ZOO[name]
        return _REGISTRY.get_or_load(
            (f"untrained:{spec.asset_name}", str(torch_device)),
            lambda: _make(spec.build_untrained(), spec, torch_device, "untrained"),
        )

    path = resolve_checkpoint(model)

    def load() -> Sam2Model:
        state = read_state_dict(path)
        spec = spec_from_state_dict(state, source=str(path))
        net = spec.build_untrained()
        load_weights(net, state, source=str(path))
        return _make(net, spec, torch_device, str(path))

    return _REGISTRY.get_or_load((str(path.resolve()), str(torch_device)), load)


def _make(net: torch.nn.Module, spec: ModelSpec, device: torch.device, source: str) -> Sam2Model:
    return Sam2Model(net, spec, device, source)


class _SharedPositionEncoding(torch.nn.Module):
    """The image encoder's sine position encoding, returned as a broadcast view of one stored map per feature size.

    Why: ultralytics' (like Meta's) `PositionEmbeddingSine` caches its map but returns `.repeat(batch, ...)` of it, a
    fresh copy on every call: 88 MB per 1024x1024 encoding (the 256x256 level alone is 67 MB), ~6% of an encoding on
    the CPU, for maps that image prediction never reads and video tracking only reads. Same values, no copy.
    Nothing downstream writes into these tensors (the video predictor already shares them across frames).
    """

    def __init__(self, sine: torch.nn.Module) -> None:
        super().__init__()
        self.sine = sine  # has no parameters or buffers: the checkpoint's keys are unchanged
        self._maps: dict[tuple[int, int, torch.device, torch.dtype], torch.Tensor] = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = (x.shape[-2], x.shape[-1], x.device, x.dtype)
        if key not in self._maps:
            # stored in the features' dtype: the neck casts to it next, which is then a no-op instead of a copy
            self._maps[key] = self.sine(x[:1])[0].to(x.dtype)
        return self._maps[key].expand(x.shape[0], -1, -1, -1)


def _share_position_encodings(net: Any) -> None:
    neck = net.image_encoder.neck
    if not isinstance(neck.position_encoding, _SharedPositionEncoding):
        neck.position_encoding = _SharedPositionEncoding(neck.position_encoding)
