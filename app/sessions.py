"""Per-user state, held on the server and keyed by Gradio's session hash.

Not in `gr.State`: Gradio deep-copies state values and keeps a closed tab's state for an hour, which for embeddings
and video memories is how a free Space runs out of memory. A session is freed when its tab closes (`demo.unload`)
or after `idle_timeout_s` without a request, and at most `max_sessions` live at once.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sam2_model import VideoPredictor, VideoSession


@dataclass
class ImageObject:
    """One object being segmented on the image: its prompts and its current mask.

    points: [(x, y, label)] image pixels, label 1 positive / 0 negative; box: xyxy pixels or None;
    candidates: the multimask candidates (3xHxW bool) of the last prediction and their scores; choice: the shown one.
    """

    points: list[tuple[float, float, int]] = field(default_factory=list)
    box: list[float] | None = None
    candidates: np.ndarray | None = None
    scores: list[float] = field(default_factory=list)
    choice: int = 0

    @property
    def mask(self) -> np.ndarray | None:
        return None if self.candidates is None else self.candidates[self.choice]


@dataclass
class ImageState:
    """The image tab of one user: the image (HxWx3 uint8 RGB), its objects, and a box being drawn."""

    image: np.ndarray | None = None
    objects: list[ImageObject] = field(default_factory=list)
    active: int = 0
    box_corner: tuple[int, int] | None = None  # first corner of a box drawn by two clicks


@dataclass
class VideoState:
    """The video tab of one user: the tracking session (prompts, objects and masks live there), the video's frame
    rate, and the object that clicks go to."""

    session: VideoSession | None = None
    predictor: VideoPredictor | None = None
    fps: float = 25.0
    active_obj: int = 1

    def close(self) -> None:
        if self.session is not None and self.predictor is not None:
            self.predictor.close_state(self.session)
        self.session = None


@dataclass
class UserSession:
    """Everything one browser tab holds on the server."""

    image: ImageState = field(default_factory=ImageState)
    video: VideoState = field(default_factory=VideoState)
    workdir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="sam2_studio_")))
    last_seen: float = field(default_factory=time.monotonic)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def close(self) -> None:
        with self.lock:
            self.video.close()
            self.image = ImageState()
            shutil.rmtree(self.workdir, ignore_errors=True)


class SessionLimitError(RuntimeError):
    """Too many live sessions; the message is safe to show."""


class SessionRegistry:
    """Live `UserSession`s by session hash, bounded in number and freed when idle."""

    def __init__(self, max_sessions: int = 32, idle_timeout_s: float = 1800.0) -> None:
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self._sessions: dict[str, UserSession] = {}
        self._lock = threading.Lock()

    def get(self, session_hash: str | None) -> UserSession:
        """The caller's session, created on first use (after freeing idle ones)."""
        key = session_hash or "anonymous"
        self.free_idle()
        with self._lock:
            session = self._sessions.get(key)
            if session is None:
                if len(self._sessions) >= self.max_sessions:
                    raise SessionLimitError(
                        f"The studio is serving its maximum of {self.max_sessions} sessions; please try again later."
                    )
                session = self._sessions[key] = UserSession()
            session.last_seen = time.monotonic()
            return session

    def close(self, session_hash: str | None) -> None:
        with self._lock:
            session = self._sessions.pop(session_hash or "anonymous", None)
        if session is not None:
            session.close()

    def free_idle(self) -> int:
        now = time.monotonic()
        with self._lock:
            idle = [k for k, s in self._sessions.items() if now - s.last_seen > self.idle_timeout_s]
            sessions = [self._sessions.pop(k) for k in idle]
        for session in sessions:
            session.close()
        return len(sessions)

    def live(self) -> list[UserSession]:
        """The sessions alive now (a snapshot)."""
        with self._lock:
            return list(self._sessions.values())

    def __len__(self) -> int:
        return len(self._sessions)
