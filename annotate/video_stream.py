"""`VideoStream`: a video file decoded as it is read, every `stride`-th frame, with only a window of recent frames
kept, for annotating videos of any length in flat memory.

The engine's `VideoFrames` decodes a whole video file into PNG frames on disk up front (random access for the app's
corrections, about 3 MB per 1080p frame): fine for a clip in a browser, not for an hour of footage. The annotator
only moves forward, looking back at most one keyframe interval (the backward pass of objects that appear), so a
window of decoded frames in memory is enough.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from sam2_model.video_frames import VideoFrames

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v")


class VideoStream(VideoFrames):
    """Every `stride`-th frame of a video file as HxWx3 uint8 RGB, decoded in order; the last `window` used
    frames stay readable (`rgb(i)` of an older one raises RuntimeError).

    Index i is the i-th used frame: frame ``i * stride`` of the video (`video_frame(i)`). num_frames counts the
    used frames. Raises ValueError naming the file when it is not a readable video, or its frames are over
    `max_pixels`.
    """

    def __init__(self, path: str | Path, stride: int = 1, window: int = 32, max_pixels: int | None = None) -> None:
        import av

        if stride < 1 or window < 2:
            raise ValueError(f"stride must be >= 1 and window >= 2, got {stride} and {window}.")
        self.source = str(path)
        self.max_pixels = max_pixels
        self.stride = stride
        self.window = window
        self._files, self._arrays, self._temp_dir = [], None, None  # VideoFrames' own storage: unused here
        self._prefetched, self._prefetch_lock = {}, threading.Lock()  # VideoFrames' prefetch: never used (below)
        self._kept: OrderedDict[int, np.ndarray] = OrderedDict()  # decoded frames, at most `window`
        self._next_video_frame = 0
        try:
            self._container: Any = av.open(str(path))
        except Exception as error:  # av.error.InvalidDataError, FileNotFoundError, ...
            raise ValueError(f"Could not read the video {path}: {type(error).__name__}: {error}") from error
        try:
            if not self._container.streams.video:
                raise ValueError(f"{path} has no video stream.")
            stream = self._container.streams.video[0]
            self._check_size(stream.codec_context.width, stream.codec_context.height)
            self.video_frames = count_frames(self._container)
            if self.video_frames == 0:
                raise ValueError(f"The video {path} has no frames.")
            rate = stream.average_rate or stream.guessed_rate
            self.fps = float(rate) if rate else 25.0
            self._decoded: Iterator[Any] = self._container.decode(video=0)
            first = self.rgb(0)
        except Exception as error:
            self.close()
            if isinstance(error, ValueError):
                raise
            raise ValueError(f"Could not read the video {path}: {type(error).__name__}: {error}") from error
        self.height, self.width = int(first.shape[0]), int(first.shape[1])

    @property
    def num_frames(self) -> int:
        return math.ceil(self.video_frames / self.stride)

    @property
    def frames_in_memory(self) -> int:
        """Decoded frames held now (at most `window`): what keeps a long video's memory flat."""
        return len(self._kept)

    def video_frame(self, index: int) -> int:
        """The frame number in the video of used frame `index`."""
        return index * self.stride

    def prefetch(self, index: int, image_size: int) -> None:
        """Nothing: the stream decodes in order on the caller's thread (its container is not safe to read from two
        threads, and a frame decoded ahead would be decoded out of order)."""

    def rgb(self, index: int) -> np.ndarray:
        """Used frame `index` as HxWx3 uint8 RGB (decoding forward to it when it is new)."""
        self.check_index(index)
        if index in self._kept:
            return self._kept[index]
        newest = next(reversed(self._kept), -1)
        if index < newest:
            raise RuntimeError(
                f"Frame {index} of {self.source} is no longer buffered (the stream keeps the last {self.window} "
                "used frames); read frames in order."
            )
        while newest < index:
            newest = self._decode_next()
        return self._kept[index]

    def _decode_next(self) -> int:
        """Decode up to the next used frame; keep it (dropping the oldest beyond the window); return its index."""
        while True:
            try:
                frame = next(self._decoded)
            except StopIteration:
                raise ValueError(
                    f"The video {self.source} ended after {self._next_video_frame} frames although it declares "
                    f"{self.video_frames}: the file is truncated or corrupt."
                ) from None
            except Exception as error:  # a corrupt packet midway
                raise ValueError(
                    f"Could not decode frame {self._next_video_frame} of {self.source}: {type(error).__name__}: {error}"
                ) from error
            number = self._next_video_frame
            self._next_video_frame += 1
            if number % self.stride:
                continue
            self._check_size(frame.width, frame.height)  # a stream may change size midway
            index = number // self.stride
            self._kept[index] = frame.to_ndarray(format="rgb24")
            while len(self._kept) > self.window:
                self._kept.popitem(last=False)
            return index

    def close(self) -> None:
        """Close the file and drop the buffered frames."""
        self._kept.clear()
        container = getattr(self, "_container", None)
        if container is not None:
            container.close()
            self._container = None


def count_frames(container: Any) -> int:
    """Frames of a PyAV container's first video stream: from its header when it says, else by reading its
    packets (no decoding; WebM and MKV headers often leave the count out)."""
    stream = container.streams.video[0]
    if stream.frames:
        return int(stream.frames)
    counted = sum(1 for packet in container.demux(stream) if packet.size)
    container.seek(0)
    return counted


def probe_video(path: str | Path) -> tuple[int, float, int, int]:
    """(frames, frames per second, width, height) of a video file, from its header or packets (no decoding);
    ValueError naming the file when it is not a readable video."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError(f"{path} has no video stream.")
            stream = container.streams.video[0]
            rate = stream.average_rate
            width, height = int(stream.codec_context.width), int(stream.codec_context.height)
            return count_frames(container), float(rate) if rate else 25.0, width, height
    except ValueError:
        raise
    except Exception as error:
        raise ValueError(f"Could not read the video {path}: {type(error).__name__}: {error}") from error


def video_length(path: str | Path) -> tuple[int, float]:
    """(frames, frames per second) of a video file (see `probe_video`)."""
    frames, fps, _, _ = probe_video(path)
    return frames, fps


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_SUFFIXES
