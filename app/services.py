"""`Services`: what every workflow of the app shares — the one model, the limits, the users' sessions, the detector
pool and the video predictor — and the two ways into them: the caller's session and the guarded image opener.

Gradio-free and imports no tab or workflow: the tabs, the named API and the workflows all build on it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, Protocol

import numpy as np

from annotate.images import ImageReadError, read_image
from sam2_model import Sam2Model

from .clients import TrustedProxies, client_address
from .detector_pool import DetectorPool, load_yolo
from .gpu import GpuRunner
from .gpu_tasks import GpuTasks
from .refusals import Refusal
from .sessions import SessionRegistry, UserSession
from .settings import Limits

DETECTORS = ["yolo11n.pt", "yolo11s.pt", "yolo11m.pt", "yolo11l.pt", "yolo11x.pt"]
FINDERS = ["yoloe-11s-seg.pt", "yolov8s-worldv2.pt"]  # open-vocabulary detectors for Find, the default first


class Caller(Protocol):
    """What identifies a browser tab: Gradio's `gr.Request` (or anything with its `session_hash`; its `client.host`
    and `headers` name the client, see `clients.client_address`)."""

    session_hash: str | None


class Services:
    """The app's shared services.

    detectors: the pool auto-annotation borrows from (default: ultralytics' YOLO11 detectors by name, downloaded on
    first use; tests pass a pool of untrained ones); proxies: whose `X-Forwarded-For` names the client (default:
    no one's, the peer is the client); runner: how GPU tasks run (default: ZeroGPU's `spaces.GPU` when installed,
    see `gpu.default_runner`); finders: the open-vocabulary detectors Find borrows (default: `FINDERS`, downloaded
    on first use). Every use of the model goes through `gpu`, the GPU tasks: this process owns the sessions, the
    tasks get what they need and return what changed.
    """

    def __init__(
        self,
        model: Sam2Model,
        limits: Limits | None = None,
        detectors: DetectorPool | None = None,
        proxies: TrustedProxies | None = None,
        runner: GpuRunner | None = None,
        finders: DetectorPool | None = None,
    ):
        self.model = model
        self.gpu = GpuTasks(model, runner)
        self.limits = limits or Limits()
        self.proxies = proxies or TrustedProxies()
        self.sessions = SessionRegistry(
            self.limits.max_sessions, self.limits.idle_timeout_s, self.limits.max_sessions_per_client
        )
        self.detectors = detectors or DetectorPool(DETECTORS, load_yolo)
        self.finders = finders or DetectorPool(FINDERS, load_yolo)
        self.video_predictor = self.gpu.video_predictor

    def open_session(self, caller: Caller | None) -> None:
        """The page's load event: the only event that creates a user's server-side session (counted as its
        client's: see `SessionRegistry`)."""
        self.sessions.open(_hash(caller), client_address(caller, self.proxies))

    def find_session(self, caller: Caller | None) -> UserSession:
        """The caller's session (opened when the page loaded); SessionLimitError asking to reload when there is
        none."""
        return self.sessions.get(_hash(caller))

    @contextlib.contextmanager
    def user_session(self, caller: Caller | None) -> Iterator[UserSession]:
        """The caller's session, in use and locked for the handler's work (one request of a tab at a time).

        Never yield a handler's result while inside this block from a generator: Gradio resumes a generator on any
        worker thread, and a lock held across a yield would be released by another thread (or never)."""
        with self.find_session(caller).in_use() as user, user.lock:
            yield user

    def close_session(self, caller: Caller | None) -> None:
        """Free the caller's embeddings, video memories and files (tab closed)."""
        self.sessions.close(_hash(caller))

    def open_image(self, path: str | None) -> np.ndarray:
        """An uploaded image as HxWx3 uint8 RGB; Refusal saying what is wrong with it (no server path)."""
        if not path:
            raise Refusal("Upload an image first.")
        try:
            return read_image(path, self.limits.max_image_pixels)
        except ImageReadError as error:
            raise Refusal(f"{error.reason[:1].upper()}{error.reason[1:]}.") from error


def _hash(caller: Any) -> str | None:
    return getattr(caller, "session_hash", None)
