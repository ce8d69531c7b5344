"""Per-user state, held on the server and keyed by Gradio's session hash.

Not in `gr.State`: Gradio deep-copies state values and keeps a closed tab's state for an hour, which for embeddings
and video memories is how a free Space runs out of memory. A session is freed when its tab closes (`demo.unload`)
or after `idle_timeout_s` without a request; at most `max_sessions` live at once, at most `max_per_client` of them
one client's (by address: `clients.client_address`).
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from annotate.dataset import Dataset
from sam2_model import VideoPredictor, VideoSession
from sam2_model.embedding_cache import ImageFeatures

from .prompts import FIND_CONFIDENCE, POSITIVE


@dataclass(eq=False)
class ImageObject:
    """One object being segmented on the image: its prompts, its candidate masks and its class name.

    points: [(x, y, label)] image pixels, label 1 positive / 0 negative; box: xyxy pixels or None;
    candidates: the masks of the last prediction (CxHxW bool, best first) and their scores; choice: the kept one;
    class_name: what the exports call it ("" = "object"); prior: HxW bool, the mask a dataset stored for it (Review
    tab): shown while it has no prompt, and given with its clicks as SAM 2's ``mask_input`` (refined, not redrawn);
    confidence: the open-vocabulary detector's score of an
    object Find found (its box is the detection), None for objects a person prompted.
    """

    points: list[tuple[float, float, int]] = field(default_factory=list)
    box: list[float] | None = None
    candidates: np.ndarray | None = None
    scores: list[float] = field(default_factory=list)
    choice: int = 0
    class_name: str = ""
    prior: np.ndarray | None = field(default=None, repr=False)
    confidence: float | None = None

    @property
    def mask(self) -> np.ndarray | None:
        return None if self.candidates is None else self.candidates[self.choice]


@dataclass(frozen=True)
class ImageEdit:
    """One prompt as it was given, for undo in time order: a click, a box (and the box it replaced), the first
    corner of a box, or the objects Segment everything added (taken back together)."""

    kind: str  # "point", "box", "corner" or "everything"
    obj: ImageObject
    previous_box: list[float] | None = None
    added: tuple[ImageObject, ...] = ()


@dataclass
class ImageState:
    """The image tab of one user.

    image: HxWx3 uint8 RGB at full size (what the model and the exports use); preview: what the browser is sent,
    `scale` original pixels per preview pixel; name: the upload's file name; objects and the active one's index;
    box_corner: the first corner (x, y) of a box drawn by two clicks; edits: every prompt in time order (undo);
    mode: what a click on the picture adds (one of `prompts.IMAGE_MODES`); features: the image's embedding when the
    GPU runs in another process (1x256x64x64 and high-res levels, CPU), given to every click; None in-process, where
    the model's bounded embedding cache keeps it. min_confidence: the Find slider's threshold; hidden: found objects
    scored below it, out of `objects` (not drawn, listed nor exported) until the slider comes down again.
    """

    image: np.ndarray | None = None
    preview: np.ndarray | None = None
    scale: float = 1.0
    name: str = "image.png"
    objects: list[ImageObject] = field(default_factory=list)
    active: int = 0
    box_corner: tuple[int, int] | None = None
    edits: list[ImageEdit] = field(default_factory=list)
    mode: str = POSITIVE
    features: ImageFeatures | None = None
    min_confidence: float = FIND_CONFIDENCE
    hidden: list[ImageObject] = field(default_factory=list)


@dataclass(frozen=True)
class ReviewEdit:
    """A change of the Review tab's editor that the Image tab's undo does not know: an object deleted (and where it
    was) or its class changed (and the class it had). `mark`: how many image edits preceded it (undo in time order)."""

    kind: str  # "remove" or "class"
    obj: ImageObject
    index: int
    previous_class: str
    mark: int


@dataclass(eq=False)
class Prefetch:
    """The next item's picture and embedding, computed on a thread while the user works on this one: image HxWx3
    uint8 RGB; features when the GPU runs in another process (in-process the model's cache keeps them)."""

    key: str
    thread: threading.Thread | None = None
    image: np.ndarray | None = None
    features: ImageFeatures | None = None


@dataclass
class ReviewState:
    """The Review tab of one user.

    dataset: the opened `annotate.dataset.Dataset` (None until one is opened); name: what its download is called
    (the upload's name, or the folder's); hosted: saved as a download (an upload) or in place (`--dataset`);
    listed: the keys the grid shows now (filter and order), which Next and Previous follow; key: the item in the
    editor; image: the editor (an `ImageState` whose objects are the item's instances); originals: those objects as
    loaded, by instance index (what the dataset holds); edits: deletes and class changes (undo); prefetch: the next
    item being prepared; thumbnails: the grid's pictures by key, with the instances they show (drawn again when
    those change); video: the video in the editor (a `Video.key`; None for an image item), frame: its frame shown
    (0-based among its frames), tracks: the track id of each of `originals` (a frame's instances), video_tracks:
    every track id of the open video, in order (a track's colour is its place here, on every frame and the timeline).
    """

    dataset: Dataset | None = None
    name: str = "dataset"
    hosted: bool = False
    listed: list[str] = field(default_factory=list)
    key: str | None = None
    image: ImageState = field(default_factory=ImageState)
    originals: list[ImageObject] = field(default_factory=list)
    edits: list[ReviewEdit] = field(default_factory=list)
    prefetch: Prefetch | None = None
    thumbnails: dict[str, tuple[tuple[Any, ...], np.ndarray]] = field(default_factory=dict, repr=False)
    video: str | None = None
    frame: int = 0
    tracks: list[int] = field(default_factory=list)
    video_tracks: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class VideoEdit:
    """One prompt as it was given, for undo in time order: a click or a box of an object on a frame, or the first
    corner of a box."""

    kind: str  # "point", "box" or "corner"
    frame: int
    obj_id: int


@dataclass
class VideoState:
    """The video tab of one user: the tracking session (prompts, objects and masks live there), the video's name
    and frame rate, the objects listed (ids, some without prompts yet) and the one clicks go to, a box being drawn,
    every prompt in time order (undo), each object's class name (for the exports; "" = "object N"), and `cancel`,
    set to stop a running tracking at its next frame."""

    session: VideoSession | None = None
    predictor: VideoPredictor | None = None
    name: str = "video"
    fps: float = 25.0
    object_ids: list[int] = field(default_factory=lambda: [1])
    active_obj: int = 1
    box_corner: tuple[int, int, int] | None = None  # (frame, x, y)
    edits: list[VideoEdit] = field(default_factory=list)
    class_names: dict[int, str] = field(default_factory=dict)
    cancel: threading.Event = field(default_factory=threading.Event)

    def close(self) -> None:
        if self.session is not None and self.predictor is not None:
            self.predictor.close_state(self.session)
        self.session = None
        self.object_ids, self.active_obj, self.box_corner, self.edits, self.class_names = [1], 1, None, [], {}


@dataclass
class UserSession:
    """Everything one browser tab holds on the server.

    client: the address of the client that loaded the page (`clients.client_address`); busy: requests of this
    tab running now (a session in use is never evicted); workdir: its files, created on first use and deleted with
    the session.
    """

    client: str = ""
    image: ImageState = field(default_factory=ImageState)
    video: VideoState = field(default_factory=VideoState)
    review: ReviewState = field(default_factory=ReviewState)
    last_seen: float = field(default_factory=time.monotonic)
    busy: int = 0
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _workdir: Path | None = field(default=None, repr=False)

    @property
    def workdir(self) -> Path:
        if self._workdir is None:
            self._workdir = Path(tempfile.mkdtemp(prefix="sam2_studio_"))
        return self._workdir

    @property
    def has_work(self) -> bool:
        """Whether it holds something of its user's: an image, a video, or files (uploads, exports, a dataset)."""
        busy = self.image.image is not None or self.video.session is not None or self.review.dataset is not None
        return busy or self._workdir is not None

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
            self.review = ReviewState()
            if self._workdir is not None:
                shutil.rmtree(self._workdir, ignore_errors=True)


class SessionLimitError(RuntimeError):
    """No session can be opened or found; the message is safe to show."""


class SessionRegistry:
    """Live `UserSession`s by session hash, bounded in number and freed when idle.

    A session is opened only by `open` (the page's load event, which a browser sends when it loads the app); every
    other event finds an existing one with `get`. So a client that never loaded the page, or that invents session
    hashes, gets no server state.

    Room is shared fairly between clients (addresses): one client holds at most `max_per_client` sessions, and
    opening one more closes that client's own oldest idle session (one without work first). When all
    `max_sessions` are open, a new session takes the place of an idle one of its own client's, else of one that
    holds no work (nothing uploaded yet), else of one of a client holding more sessions than the newcomer's will;
    another visitor's only session with work in it is never given up. A session with a request running is never
    closed; when none may be, the newcomer is refused.
    """

    def __init__(self, max_sessions: int = 32, idle_timeout_s: float = 1800.0, max_per_client: int = 4) -> None:
        self.max_sessions = max_sessions
        self.idle_timeout_s = idle_timeout_s
        self.max_per_client = max_per_client
        self._sessions: dict[str, UserSession] = {}
        self._lock = threading.Lock()

    def open(self, session_hash: str | None, client: str = "") -> UserSession:
        """The session of a tab that loaded the page from `client` (its address): created if new, making room as
        the class's docstring says. SessionLimitError when there is no room that may be taken."""
        if not session_hash:
            raise SessionLimitError("This request has no session: reload the page.")
        self.free_idle()
        evicted = None
        with self._lock:
            session = self._sessions.get(session_hash)
            if session is None:
                evicted = self._make_room(client)
                session = self._sessions[session_hash] = UserSession(client=client)
            session.last_seen = time.monotonic()
        if evicted is not None:
            evicted.close()
        return session

    def _make_room(self, client: str) -> UserSession | None:
        """Remove and return the session a new one of `client` replaces (None when there is room); SessionLimitError
        when none may be replaced. Called with the lock held."""
        held = Counter(s.client for s in self._sessions.values())
        if held[client] >= self.max_per_client:
            candidates = [(k, s) for k, s in self._sessions.items() if s.client == client]
            if not any(s.busy == 0 for _, s in candidates):
                raise SessionLimitError(
                    f"You already have {held[client]} tabs of the studio open, each with a request running (the "
                    f"limit is {self.max_per_client} per visitor): wait for one to finish, or close one, then reload "
                    "the page."
                )
        elif len(self._sessions) >= self.max_sessions:
            candidates = [
                (k, s)
                for k, s in self._sessions.items()
                if s.client == client or not s.has_work or held[s.client] > held[client] + 1
            ]
        else:
            return None
        # its own first, then one without work, then the biggest holder's, then the least recently used
        idle = [(s.client != client, s.has_work, -held[s.client], s.last_seen, k) for k, s in candidates if s.busy == 0]
        if not idle:
            raise SessionLimitError(
                f"The studio is full: its {self.max_sessions} sessions are in use or hold other visitors' work. "
                "Please try again in a few minutes."
            )
        return self._sessions.pop(min(idle)[-1])

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
