"""Per-user state, held on the server and keyed by Gradio's session hash.

Not in `gr.State`: Gradio deep-copies state values and keeps a closed tab's state for an hour, which for embeddings
and video memories is how a free Space runs out of memory. A session is freed when its tab closes (`demo.unload`)
or after `idle_timeout_s` without a request, and at most `max_sessions` live at once.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
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
    cancel: threading.Event = field(default_factory=threading.Event)  # set: the running tracking stops

    def close(self) -> None:
        if self.session is not None and self.predictor is not None:
            self.predictor.close_state(self.session)
        self.session = None


@dataclass
class UserSession:
    """Everything one browser tab holds on the server.

    busy: requests of this tab running now (a session in use is never evicted); workdir: its files, created on
    first use and deleted with the session.
    """

    image: ImageState = field(default_factory=ImageState)
    video: VideoState = field(default_factory=VideoState)
    last_seen: float = field(default_factory=time.monotonic)
    busy: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _workdir: Path | None = field(default=None, repr=False)

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="sam2_studio_"))
        return self._workdir

    @contextlib.contextmanager
    def in_use(self) -> Iterator[UserSession]:
        """Mark the session busy for a request (not evicted meanwhile) and refresh its last use."""
        with self.lock:
            self.busy += 1
        try:
            yield self
        finally:
            with self.lock:
                self.busy -= 1
                self.last_seen = time.monotonic()

    def close(self) -> None:
        with self.lock:
            self.video.close()
            self.image = ImageState()
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)


class SessionLimitError(RuntimeError):
    """No session can be opened or found; the message is safe to show."""


class SessionRegistry:
    """Live `UserSession`s by session hash, bounded in number and freed when idle.

    A session is opened only by `open` (the page's load event, which a browser sends when it loads the app); every
    other event finds an existing one with `get`. So a client that never loaded the page, or that invents session
    hashes, gets no server state. When `max_sessions` are open, opening another evicts the least recently used
    session that has no request running; only when all are busy is a new visitor refused.
    """

    def __init__(self, max_sessions: int = 32, idle_timeout_s: float = 1800.0) -> None:
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self._sessions: dict[str, UserSession] = {}
        self._lock = threading.Lock()

    def open(self, session_hash: str | None) -> UserSession:
        """The session of a tab that loaded the page: created if new, evicting the least recently used idle one
        when the registry is full. SessionLimitError when every session is in use."""
        if not session_hash:
            raise SessionLimitError("This request has no session: reload the page.")
        self.free_idle()
        evicted = None
        with self._lock:
            session = self._sessions.get(session_hash)
            if session is None:
                if len(self._sessions) >= self.max_sessions:
                    idle = [(s.last_seen, k) for k, s in self._sessions.items() if s.busy == 0]
                    if not idle:
                        raise SessionLimitError(
                            f"The studio is serving its maximum of {self.max_sessions} busy sessions; please try "
                            "again in a minute."
                        )
                    evicted = self._sessions.pop(min(idle)[1])
                session = self._sessions[session_hash] = UserSession()
            session.last_seen = time.monotonic()
        if evicted is not None:
            evicted.close()
        return session

    def get(self, session_hash: str | None) -> UserSession:
        """The session of a tab that loaded the page; SessionLimitError (reload the page) when there is none."""
        with self._lock:
            session = self._sessions.get(session_hash or "")
        if session is None:
            raise SessionLimitError(
                "Your session has expired (idle too long, or the server restarted): reload the page to start again."
            )
        session.last_seen = time.monotonic()
        return session

    def close(self, session_hash: str | None) -> None:
        with self._lock:
            session = self._sessions.pop(session_hash or "", None)
        if session is not None:
            session.close()

    def free_idle(self) -> int:
        """Close the sessions unused for `idle_timeout_s` (and not in use); return how many."""
        now = time.monotonic()
        with self._lock:
            idle = [k for k, s in self._sessions.items() if s.busy == 0 and now - s.last_seen > self.idle_timeout_s]
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
