"""Finding the videos of a run and naming each one in the dataset.

A video's frames become images of the dataset: frame 120 of ``clips/street.mp4`` is ``images/clips/street/000120.jpg``
with its label at ``labels/clips/street/000120.txt``; the video's key is ``clips/street``, and its sequence name
``clips__street`` (flat: MOT sequences, ``tracks/`` and YouTube-VIS name a video by one folder).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .images import dataset_path, find_files
from .video_stream import VIDEO_SUFFIXES, is_video

FRAME_SUFFIX = ".jpg"


def sequence_name(key: str) -> str:
    """A video's dataset key -> its flat sequence name (``clips/street`` -> ``clips__street``)."""
    return key.replace("/", "__")


def frame_number(frame_key: str) -> int:
    """A video frame's dataset key (``clips/street/000120``) -> its number in the video (120)."""
    return int(frame_key.rsplit("/", 1)[-1])


@dataclass(frozen=True)
class VideoTask:
    """One video of the run. source: the file; key: its unique name in the dataset (a relative POSIX path without
    suffix, ``clips/street``): its frames are the images ``<key>/<frame number, 6 digits>``; sequence: its unique
    flat name (``clips__street``; default `sequence_name` of the key); name: its path under the input folder
    without suffix, as the user named it (default: the key), by which boxes you already have name its frames."""

    source: Path
    key: str
    sequence: str = ""
    name: str = ""

    def __post_init__(self) -> None:
        if not self.sequence:
            object.__setattr__(self, "sequence", sequence_name(self.key))
        if not self.name:
            object.__setattr__(self, "name", self.key)

    def frame_name(self, video_frame: int) -> str:
        """Frame `video_frame` as boxes you already have name it: ``<name>/<frame number, 6 digits>``."""
        return f"{self.name}/{video_frame:06d}"

    def frame_key(self, video_frame: int) -> str:
        """The dataset key of frame `video_frame` (its number in the video)."""
        return f"{self.key}/{video_frame:06d}"

    def frame_file(self, video_frame: int) -> str:
        """Where the dataset shows that frame, relative to the dataset folder."""
        return f"images/{self.frame_key(video_frame)}{FRAME_SUFFIX}"

    def to_dict(self) -> dict[str, str]:
        return {"source": str(self.source), "key": self.key, "sequence": self.sequence, "name": self.name}

    @classmethod
    def from_dict(cls, values: dict[str, str]) -> VideoTask:
        return cls(Path(values["source"]), values["key"], values.get("sequence", ""), values.get("name", ""))


def find_videos(folder: Path) -> list[Path]:
    """Every video file under `folder` (recursive, sorted, hidden folders skipped): VIDEO_SUFFIXES."""
    return find_files(folder, is_video)


def plan_videos(root: Path, videos: list[Path], image_keys: Iterable[str]) -> list[VideoTask]:
    """Name each video after its path under `root` (a folder, or the video file itself) without its suffix (folders
    named ``images`` renamed as `annotate.images.dataset_path` does); a video whose name another video or an image
    folder already uses keeps its suffix (``street_mp4``). Sequence names are the keys flattened, numbered
    (``a__b_2``) in the rare case that two flatten alike."""
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
        relative = Path(video.name) if root == video else video.relative_to(root)
        tasks.append(VideoTask(video, key, name=relative.with_suffix("").as_posix()))
    sequences: set[str] = set()
    for n, task in enumerate(tasks):
        sequence, copy = task.sequence, 1
        while sequence.lower() in sequences:
            copy += 1
            sequence = f"{task.sequence}_{copy}"
        sequences.add(sequence.lower())
        tasks[n] = VideoTask(task.source, task.key, sequence, task.name)
    return tasks


def _stem_key(root: Path, video: Path) -> str:
    relative = Path(video.name) if root == video else video.relative_to(root)
    return dataset_path(relative.parent / relative.stem, folders_only=False).as_posix()


def _folders_of(key: str) -> list[str]:
    parts = key.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


__all__ = ["FRAME_SUFFIX", "VIDEO_SUFFIXES", "VideoTask", "find_videos", "frame_number", "plan_videos", "sequence_name"]
