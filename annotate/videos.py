"""Finding the videos of a run and naming each one in the dataset.

A video's frames become images of the dataset: frame 120 of ``clips/street.mp4`` is ``images/clips/street/000120.jpg``
with its label at ``labels/clips/street/000120.txt``; the video's key is ``clips/street``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .images import find_files
from .video_stream import VIDEO_SUFFIXES, is_video

FRAME_SUFFIX = ".jpg"


@dataclass(frozen=True)
class VideoTask:
    """One video of the run. source: the file; key: its unique name in the dataset (a relative POSIX path without
    suffix, ``clips/street``): its frames are the images ``<key>/<frame number, 6 digits>``."""

    source: Path
    key: str

    def frame_key(self, video_frame: int) -> str:
        """The dataset key of frame `video_frame` (its number in the video)."""
        return f"{self.key}/{video_frame:06d}"

    def frame_file(self, video_frame: int) -> str:
        """Where the dataset shows that frame, relative to the dataset folder."""
        return f"images/{self.frame_key(video_frame)}{FRAME_SUFFIX}"

    def to_dict(self) -> dict[str, str]:
        return {"source": str(self.source), "key": self.key}

    @classmethod
    def from_dict(cls, values: dict[str, str]) -> VideoTask:
        return cls(Path(values["source"]), values["key"])


def find_videos(folder: Path) -> list[Path]:
    """Every video file under `folder` (recursive, sorted, hidden folders skipped): VIDEO_SUFFIXES."""
    return find_files(folder, is_video)


def plan_videos(root: Path, videos: list[Path], image_keys: Iterable[str]) -> list[VideoTask]:
    """Name each video after its path under `root` (a folder, or the video file itself) without its suffix; a
    video whose name another video or an image folder already uses keeps its suffix (``street_mp4``)."""
    taken = {k for key in image_keys for k in _folders_of(key)}
    stems: dict[str, int] = {}
    for video in videos:
        key = _stem_key(root, video)
        stems[key.lower()] = stems.get(key.lower(), 0) + 1
    tasks = []
    for video in videos:
        key = _stem_key(root, video)
        if stems[key.lower()] > 1 or key in taken:
            key = f"{key}_{video.suffix.lstrip('.').lower()}"
        tasks.append(VideoTask(video, key))
    return tasks


def _stem_key(root: Path, video: Path) -> str:
    relative = Path(video.name) if root == video else video.relative_to(root)
    return (relative.parent / relative.stem).as_posix()


def _folders_of(key: str) -> list[str]:
    parts = key.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


__all__ = ["FRAME_SUFFIX", "VIDEO_SUFFIXES", "VideoTask", "find_videos", "plan_videos"]
