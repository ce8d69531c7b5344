"""The Review tab's next item, prepared while the user works on this one: its picture read and embedded on a thread,
so that Accept and Next show it without waiting for SAM 2's image encoder."""

from __future__ import annotations

import logging
import threading
from typing import Any

from annotate.dataset import Dataset

from .services import Services
from .sessions import Prefetch, ReviewState

logger = logging.getLogger("sam2_studio")


def item_picture(services: Services, dataset: Dataset, state: ReviewState, key: str) -> tuple[Any, Any]:
    """(image HxWx3 uint8 RGB, features for a GPU in another process or None) of `key`: the prefetched ones when
    they are ready, else read (the guarded opener) and embedded now (a cache hit when prefetched)."""
    job, gpu = state.prefetch, services.gpu
    image = features = None
    if job is not None and job.key == key:
        if job.thread is not None:
            job.thread.join()  # started while the user worked: mostly done by now
        image, features = job.image, job.features
    if image is None:
        image = services.open_image(str(dataset.item(key).image_path))
    if features is None:
        embedded = gpu.embed_image(image)  # in-process: the model's cache holds a prefetched embedding
        features = embedded if gpu.portable else None
    return image, features


def prefetch_next(services: Services, dataset: Dataset, state: ReviewState) -> None:
    """Read and embed the item after the current one of the list on a thread (a failure only costs the cache hit)."""
    if state.key not in state.listed:
        return
    position = state.listed.index(state.key) + 1
    if position >= len(state.listed) or (state.prefetch and state.prefetch.key == state.listed[position]):
        return
    job = Prefetch(state.listed[position])

    def run() -> None:
        try:
            job.image = services.open_image(str(dataset.item(job.key).image_path))
            features = services.gpu.embed_image(job.image)
            job.features = features if services.gpu.portable else None
        except Exception:  # reported when the item is loaded, where the user sees it
            logger.info("prefetching %s failed", job.key, exc_info=True)
            job.image = job.features = None

    job.thread = threading.Thread(target=run, daemon=True, name="review-prefetch")
    state.prefetch = job
    job.thread.start()
