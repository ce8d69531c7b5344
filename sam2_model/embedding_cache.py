"""A byte-bounded LRU cache of image embeddings, keyed by the image's pixels.

Setting an image that was seen before (same pixels, any array object) reuses its features instead of running the
image encoder again. The key is a BLAKE2b digest of the pixels: a cryptographic hash, so one web user cannot craft an
image that collides with another user's and read masks computed from someone else's picture.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import torch


@dataclass(frozen=True)
class ImageFeatures:
    """What the image encoder produced for one image, ready for the mask decoder.

    image_embed: 1x256x64x64 (for a 1024 model); high_res_feats: (1x32x256x256, 1x64x128x128);
    orig_hw: (height, width) of the original image in pixels.
    """

    image_embed: torch.Tensor
    high_res_feats: tuple[torch.Tensor, ...]
    orig_hw: tuple[int, int]

    @property
    def nbytes(self) -> int:
        tensors = (self.image_embed, *self.high_res_feats)
        return sum(t.numel() * t.element_size() for t in tensors)


def image_key(image: np.ndarray) -> bytes:
    """Digest of an HxWx3 uint8 image's shape and pixels."""
    digest = hashlib.blake2b(digest_size=20)
    digest.update(repr((image.shape, str(image.dtype))).encode())
    digest.update(np.ascontiguousarray(image).data)
    return digest.digest()


class EmbeddingCache:
    """Thread-safe LRU of `ImageFeatures`, holding at most `max_bytes` of tensors (0 disables it)."""

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}.")
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[bytes, ImageFeatures] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: bytes) -> ImageFeatures | None:
        with self._lock:
            features = self._entries.get(key)
            if features is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return features

    def put(self, key: bytes, features: ImageFeatures) -> None:
        size = features.nbytes
        with self._lock:
            if key in self._entries:
                self._entries.move_to_end(key)
                return
            if size > self.max_bytes:
                return  # larger than the whole budget: caching it would evict everything for one entry
            self._entries[key] = features
            self._bytes += size
            self._evict()

    def resize(self, max_bytes: int) -> None:
        """Change the budget, evicting the least recently used entries that no longer fit."""
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}.")
        with self._lock:
            self.max_bytes = int(max_bytes)
            self._evict()

    def _evict(self) -> None:
        while self._bytes > self.max_bytes:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= evicted.nbytes

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    @property
    def nbytes(self) -> int:
        """Bytes of tensors held now."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)
