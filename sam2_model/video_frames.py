"""`VideoFrames`: a video's frames, decoded lazily and preprocessed exactly as Meta's video loader does.

Meta's loader reads every frame up front (RSS grows ~30 MB per 1024x1024 frame); we keep only where the frames are
and decode one when the tracker asks for it. A video file is decoded once with PyAV into lossless PNG frames in a
temporary folder (deleted on `close`), so random access (backward tracking, corrections) needs no seeking. While a
frame is tracked, the next one is decoded and resized in a background thread (`prefetch`), so a GPU does not wait
for the CPU between frames.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from .transforms import IMAGENET_MEAN, IMAGENET_STD

FRAME_SUFFIXES = {".jpg", ".jpeg", ".png"}
VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".avi", ".mkv", ".m4v"}
_PREFETCH_AHEAD = 2  # frames decoded ahead per video at most: the next one, and one left over from a change of course
_prefetch_pool: ThreadPoolExecutor | None = None
_prefetch_pool_lock = threading.Lock()


def _prefetcher() -> ThreadPoolExecutor:
    """One small pool for the process (created on first use): decoding and resizing release the GIL, so they
    overlap with the model; a pool per video would leave a thread behind for every session not closed."""
    global _prefetch_pool
    with _prefetch_pool_lock:
        if _prefetch_pool is None:
            _prefetch_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="sam2-frame-prefetch")
        return _prefetch_pool


def _forget_the_pool_in_a_child() -> None:
    """A forked child (ZeroGPU's workers) has none of the parent's pool threads, and the parent's locks may have been
    held at the fork: it starts a pool of its own on first use."""
    global _prefetch_pool, _prefetch_pool_lock
    _prefetch_pool, _prefetch_pool_lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_the_pool_in_a_child)


def _frame_sort_key(path: Path) -> tuple[int | str, ...]:
    """Meta sorts frames by their integer names (00000.jpg); natural order otherwise (frame_2 before frame_10)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.stem))


class VideoFrames:
    """The frames of one video: a file (mp4, mov, webm, avi, mkv), a folder of JPEG/PNG frames, or a sequence of
    HxWx3 uint8 RGB arrays.

    Attributes: num_frames; height, width (pixels of the original frames).
    max_frames / max_pixels: refuse a longer video, or larger frames (checked before decoding a video file).
    Raises ValueError naming the source for an unreadable or empty video, or one over the limits.
    """

    def __init__(
        self,
        video: str | Path | Sequence[np.ndarray],
        max_frames: int | None = None,
        max_pixels: int | None = None,
    ) -> None:
        self.max_pixels = max_pixels
        self._prefetched: dict[tuple[int, int], Future[np.ndarray]] = {}  # (index, size) -> SxSx3 uint8 RGB
        self._prefetch_lock = threading.Lock()
        self._arrays: Sequence[np.ndarray] | None = None
        self._files: list[Path] = []
        self._temp_dir: Path | None = None
        self.source = "<arrays>"
        if isinstance(video, (str, Path)):
            path = Path(video)
            self.source = str(path)
            if path.is_dir():
                self._files = sorted(
                    (p for p in path.iterdir() if p.suffix.lower() in FRAME_SUFFIXES), key=_frame_sort_key
                )
                if not self._files:
                    raise ValueError(f"No JPEG or PNG frames in the folder {path}.")
            elif path.is_file():
                self._files = self._decode_video_file(path, max_frames)
            else:
                raise ValueError(f"Video not found: {path} (expected a video file or a folder of frames).")
        else:
            if len(video) == 0:
                raise ValueError("The video has no frames (an empty sequence of arrays).")
            for index, frame in enumerate(video):
                if not (isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 3
                        and frame.shape[2] == 3):  # fmt: skip
                    raise ValueError(
                        f"Frame {index} must be an HxWx3 uint8 RGB array, got {getattr(frame, 'shape', frame)}."
                    )
            self._arrays = video
        if max_frames is not None and self.num_frames > max_frames:
            raise ValueError(f"{self.source} has {self.num_frames} frames; the limit is {max_frames}.")
        first = self.rgb(0)
        self.height, self.width = int(first.shape[0]), int(first.shape[1])
        self._check_size(self.width, self.height)

    def _decode_video_file(self, path: Path, max_frames: int | None) -> list[Path]:
        import av

        if path.suffix.lower() not in VIDEO_SUFFIXES | FRAME_SUFFIXES:
            raise ValueError(f"{path}: unsupported video type {path.suffix!r}; use mp4, mov, webm, avi or mkv.")
        if path.suffix.lower() in FRAME_SUFFIXES:
            return [path]  # a single image is a one-frame video
        self._temp_dir = Path(tempfile.mkdtemp(prefix="sam2_video_"))
        files = []
        try:
            with av.open(str(path)) as container:
                if not container.streams.video:
                    raise ValueError(f"{path} has no video stream.")
                stream = container.streams.video[0]
                self._check_size(stream.codec_context.width, stream.codec_context.height)  # before decoding
                for index, frame in enumerate(container.decode(video=0)):
                    if max_frames is not None and index >= max_frames:
                        raise ValueError(f"{path} has more than {max_frames} frames; the limit is {max_frames}.")
                    self._check_size(frame.width, frame.height)  # a stream may change size midway
                    target = self._temp_dir / f"{index:06d}.png"
                    cv2.imwrite(str(target), frame.to_ndarray(format="bgr24"), [cv2.IMWRITE_PNG_COMPRESSION, 1])
                    files.append(target)
        except ValueError:
            self.close()
            raise
        except Exception as error:  # av.error.InvalidDataError and friends: a corrupt or non-video file
            self.close()
            raise ValueError(f"Could not read the video {path}: {type(error).__name__}: {error}") from error
        if not files:
            self.close()
            raise ValueError(f"The video {path} has no frames.")
        return files

    def _check_size(self, width: int, height: int) -> None:
        if self.max_pixels is not None and width * height > self.max_pixels:
            raise ValueError(
                f"{self.source} has frames of {width}x{height} pixels; the limit is {self.max_pixels:,} pixels per "
                "frame (use a smaller video)."
            )

    @property
    def num_frames(self) -> int:
        return len(self._arrays) if self._arrays is not None else len(self._files)

    def rgb(self, index: int) -> np.ndarray:
        """Frame `index` as HxWx3 uint8 RGB at its original size."""
        self.check_index(index)
        if self._arrays is not None:
            return self._arrays[index]
        with Image.open(self._files[index]) as image:
            self._check_size(image.width, image.height)  # from the header, before decoding
            return np.asarray(image.convert("RGB"))

    def resized(self, index: int, image_size: int) -> np.ndarray:
        """Frame `index` resized to SxSx3 uint8 RGB as Meta's video loader does (PIL's default filter)."""
        return np.array(Image.fromarray(self.rgb(index)).resize((image_size, image_size)))

    def prefetch(self, index: int, image_size: int) -> None:
        """Start decoding and resizing frame `index` in the background for a coming `model_input(index, ...)`.

        Nothing happens for an index out of range or already on its way; at most `_PREFETCH_AHEAD` frames wait per
        video (the oldest is dropped). Errors (an unreadable frame) surface in `model_input`, as without it.
        """
        if not 0 <= index < self.num_frames:
            return
        with self._prefetch_lock:
            if (index, image_size) in self._prefetched:
                return
            while len(self._prefetched) >= _PREFETCH_AHEAD:
                self._prefetched.pop(next(iter(self._prefetched))).cancel()
            self._prefetched[(index, image_size)] = _prefetcher().submit(self.resized, index, image_size)

    def model_input(self, index: int, image_size: int, device: torch.device) -> torch.Tensor:
        """Frame `index` as the encoder's 1x3xSxS float32 input on `device`, as Meta's video loader makes it: PIL
        resize of the uint8 frame, /255, then ImageNet mean and std.

        The uint8 frame goes to the device once (a quarter of the float32 bytes) and is normalised there, in float32
        throughout: x / 255 in float32 equals Meta's float64 x / 255 cast to float32 for every uint8 x (a test checks
        all 256), so the input is bit-identical to Meta's on the CPU.
        """
        self.check_index(index)
        with self._prefetch_lock:
            pending = self._prefetched.pop((index, image_size), None)
        if pending is not None and pending.cancel():
            pending = None  # not started yet: decoding here is quicker than waiting for the pool
        resized = pending.result() if pending is not None else self.resized(index, image_size)
        frame = torch.from_numpy(resized).to(device).permute(2, 0, 1).float()
        frame /= 255.0
        frame -= torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=device)[:, None, None]
        frame /= torch.tensor(IMAGENET_STD, dtype=torch.float32, device=device)[:, None, None]
        return frame[None]

    def __getstate__(self) -> dict[str, object]:
        """Pickled without the frames decoding ahead (threads and locks of this process): a copy sent to another
        process (a ZeroGPU worker) prefetches there on its own."""
        state = self.__dict__.copy()
        del state["_prefetched"], state["_prefetch_lock"]
        return state

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self._prefetched = {}
        self._prefetch_lock = threading.Lock()

    def check_index(self, index: int) -> None:
        if not isinstance(index, (int, np.integer)) or not 0 <= index < self.num_frames:
            raise IndexError(f"Frame index {index} is out of range: this video has frames 0..{self.num_frames - 1}.")

    def close(self) -> None:
        """Drop the frames decoding ahead, and delete the decoded frames of a video file."""
        with self._prefetch_lock:
            pending, self._prefetched = list(self._prefetched.values()), {}
        for future in pending:
            if not future.cancel():
                future.exception()  # running: let it finish before its files are deleted (an error is moot now)
        if self._temp_dir is not None:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
