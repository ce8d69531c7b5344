"""`Studio`: the app's shared services (one model, limits, per-user sessions, detectors) and its four handler
groups, one per tab plus the named API. The Blocks in `demo.py` only wire them.

Handlers take their inputs and the `gr.Request` (for the caller's server-side session) and raise `gr.Error` with a
message fit for the user; server paths and tracebacks never reach the browser.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import gradio as gr
import numpy as np

from annotate.images import ImageReadError, read_image
from sam2_model import Sam2Model, VideoPredictor

from .detector_pool import DetectorPool, load_yolo
from .sessions import SessionLimitError, SessionRegistry, UserSession
from .settings import Limits

DETECTORS = ["yolo11n.pt", "yolo11s.pt", "yolo11m.pt", "yolo11l.pt", "yolo11x.pt"]


class Studio:
    """Everything the app's handlers share, and the handlers: `image`, `video`, `annotate` (tabs) and `api`.

    detectors: the pool auto-annotation borrows from (default: ultralytics' YOLO11 detectors by name; tests pass a
    pool of untrained ones).
    """

    def __init__(self, model: Sam2Model, limits: Limits | None = None, detectors: DetectorPool | None = None):
        from .annotate_tab import AnnotateTab
        from .api import NamedApi
        from .image_tab import ImageTab
        from .video_tab import VideoTab

        self.model = model
        self.limits = limits or Limits()
        self.sessions = SessionRegistry(self.limits.max_sessions, self.limits.idle_timeout_s)
        self.detectors = detectors or DetectorPool(DETECTORS, load_yolo)
        self.video_predictor = VideoPredictor(model)
        self.image = ImageTab(self)
        self.video = VideoTab(self)
        self.annotate = AnnotateTab(self)
        self.api = NamedApi(self)

    def open_session(self, request: gr.Request | None) -> None:
        """The page's load event: the only event that creates a user's server-side session."""
        try:
            self.sessions.open(getattr(request, "session_hash", None))
        except SessionLimitError as error:
            raise gr.Error(str(error)) from error

    def find_session(self, request: gr.Request | None) -> UserSession:
        """The caller's session (opened when the page loaded); gr.Error asking to reload when there is none."""
        try:
            return self.sessions.get(getattr(request, "session_hash", None))
        except SessionLimitError as error:
            raise gr.Error(str(error)) from error

    @contextlib.contextmanager
    def user_session(self, request: gr.Request | None) -> Iterator[UserSession]:
        """The caller's session, in use and locked for the handler's work (one request of a tab at a time)."""
        with self.find_session(request).in_use() as user, user.lock:
            yield user

    def close_session(self, request: gr.Request | None) -> None:
        """Free the caller's embeddings, video memories and files (tab closed)."""
        self.sessions.close(getattr(request, "session_hash", None))

    def open_image(self, path: str | None) -> np.ndarray:
        """An uploaded image as HxWx3 uint8 RGB, or gr.Error saying what is wrong with it (no server path)."""
        if not path:
            raise gr.Error("Upload an image first.")
        try:
            return read_image(path, self.limits.max_image_pixels)
        except ImageReadError as error:
            raise gr.Error(f"{error.reason[:1].upper()}{error.reason[1:]}.") from error
