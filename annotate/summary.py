"""What an auto_annotate run did: counts, failures with reasons, output paths, time."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SUMMARY_FILE = "summary.json"


OUT_OF_MEMORY = "out of memory"


def failure_kind(reason: str, video: bool = False) -> str:
    """What went wrong, from a failure's reason as the run writes it: "out of memory" (host or GPU, in any model),
    else for a video "video", for an image "SAM 2", "detector", "writing" or "unreadable" (it could not be read)."""
    lowered = reason.lower()
    if "out of memory" in lowered or "memoryerror" in lowered:  # CUDA's message; MemoryError, OutOfMemoryError
        return OUT_OF_MEMORY
    if video:
        return "video"
    for prefix, kind in (("sam 2", "SAM 2"), ("detector", "detector"), ("writing", "writing")):
        if lowered.startswith(prefix):
            return kind
    return "unreadable"


@dataclass
class AnnotationSummary:
    """The result of `auto_annotate`; also written to ``summary.json`` in the output folder.

    images: image files found; labelled: written this run with at least one instance; no_detections: written this
    run with an empty label file; skipped: images and videos already done by an earlier run (resume); failed: images
    that could not be read or processed, failed_videos: videos likewise (see `failures`, image or video path and
    reason); instances: instances written this run (images and video frames), by class name; videos: per video
    annotated this run, a dict (source, key, frames written, tracks, tracks_started, tracks_ended,
    untracked_detections: detections left untracked by `max_tracks` (see `VideoSettings`), tracks_by_class,
    instances by class name, failure, seconds); files: each format's main file (``data.yaml`` for
    "yolo", ``annotations.json`` for "coco", the ``masks`` folder for "masks", ``vis.json`` when there are videos);
    split: the validation split of the whole dataset (val_fraction; train and val: images and video frames on each
    side; train_videos, val_videos; val_is_train: no split, validation is the training set); input_dir, output_dir:
    the input folder and the dataset folder. With boxes you already have as the detector (`annotate.box_sources`):
    no_boxes, the images and videos it has no boxes for (skipped, not written: a later run annotates them once
    their boxes exist); unmatched_boxes, its label files or COCO file names that name no image or video of the run.
    notes: what the backend said of how it ran (e.g. a Ray pool capped at the cluster's GPUs).
    `failed_by_kind()` (also in ``summary.json``) counts the failures by what went wrong ("out of memory",
    "unreadable", "SAM 2", "detector", "writing", "video"), and `failure_note()` says it in one line.

    ``summary.json`` holds no absolute path: the dataset's files are named relative to the dataset folder, failed
    images relative to the image folder, so the dataset can be moved or shared as it is.
    """

    images: int = 0
    labelled: int = 0
    no_detections: int = 0
    skipped: int = 0
    failed: int = 0
    instances: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (image or video path, reason)
    failed_videos: int = 0
    videos: list[dict[str, Any]] = field(default_factory=list)
    input_dir: str = ""
    output_dir: str = ""
    files: dict[str, str] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    no_boxes: list[str] = field(default_factory=list)
    unmatched_boxes: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Whether every image and video of the run was annotated (none failed)."""
        return not (self.failed or self.failed_videos)

    def failed_by_kind(self) -> dict[str, int]:
        """The failures counted by what went wrong (`failure_kind`), most frequent first."""
        videos = {video["source"] for video in self.videos}
        kinds = Counter(failure_kind(reason, path in videos) for path, reason in self.failures)
        return dict(kinds.most_common())

    def failure_note(self) -> str | None:
        """One line saying how many images and videos failed and why (None when none did): the run did not
        annotate them, whatever the rest of the summary says."""
        if self.ok:
            return None
        parts = [f"{self.failed} of {self.images} images"] if self.failed else []
        if self.failed_videos:
            parts.append(f"{self.failed_videos} of {len(self.videos)} videos")
        kinds = ", ".join(f"{n} {kind}" for kind, n in self.failed_by_kind().items())
        advice = " (try a smaller batch_size or model, or another device)" if OUT_OF_MEMORY in kinds else ""
        return f"{' and '.join(parts)} failed: {kinds}{advice}; summary.json lists each with its reason."

    @property
    def processed(self) -> int:
        return self.labelled + self.no_detections

    @property
    def images_per_second(self) -> float:
        return self.processed / self.seconds if self.seconds > 0 else 0.0

    @property
    def labels_dir(self) -> str:
        """The YOLO labels folder."""
        return str(Path(self.output_dir) / "labels") if self.output_dir else ""

    @property
    def data_yaml(self) -> str:
        """The ultralytics dataset file."""
        return self.files.get("yolo", "")

    @property
    def coco_json(self) -> str | None:
        """The COCO file, when "coco" was among the formats."""
        return self.files.get("coco")

    def to_json(self) -> str:
        """The summary as ``summary.json`` holds it: paths relative to the dataset and image folders."""
        values = asdict(self)
        values.update(
            input_dir=Path(self.input_dir).name,
            output_dir=".",
            files={name: self._relative(path) for name, path in self.files.items()},
            failures=[(self._relative(path), self._relative(reason)) for path, reason in self.failures],
            videos=[{**v, "source": self._relative(v["source"])} for v in self.videos],
            no_boxes=[self._relative(path) for path in self.no_boxes],
            labels_dir="labels",
            data_yaml=self._relative(self.data_yaml),
            coco_json=None if self.coco_json is None else self._relative(self.coco_json),
            images_per_second=round(self.images_per_second, 3),
            failed_by_kind=self.failed_by_kind(),
        )
        return json.dumps(values, indent=2)

    def _relative(self, text: str) -> str:
        """`text` with the dataset and image folders' absolute paths taken out of it."""
        for folder in (self.output_dir, self.input_dir):
            if folder:
                text = text.replace(f"{folder}{os.sep}", "").replace(folder, ".")
        return text

    def _work_part(self) -> str:
        """What the run covered, counted as its progress bar counts: images and video frames, one unit each."""
        if not self.videos:
            return f"{self.images} images in {self.seconds:.1f} s ({self.images_per_second:.2f} images/s)"
        frames = sum(v["frames"] for v in self.videos)
        units = self.processed + frames
        rate = units / self.seconds if self.seconds > 0 else 0.0
        return (
            f"{self.images} images and {len(self.videos)} video{'s' * (len(self.videos) != 1)} ({frames} frames): "
            f"{self.images + frames} images and frames in {self.seconds:.1f} s ({rate:.2f}/s)"
        )

    def _split_part(self) -> str:
        split = self.split
        if split["val_is_train"]:
            return f"{split['train']} images and frames, validation = training (nothing held out)"
        videos = f" ({split['val_videos']} of {split['train_videos'] + split['val_videos']} videos)"
        return f"{split['train']} train, {split['val']} val" + (videos if split["val_videos"] else "")

    def box_lines(self, shown: int = 10) -> list[str]:
        """What boxes you already have left out: images and videos without boxes, labels that name no image."""

        def listed(items: list[str]) -> str:
            names = [self._relative(item) for item in items[:shown]]
            return ", ".join(names) + (f", ... ({len(items)} in all)" if len(items) > shown else "")

        lines = []
        if self.no_boxes:
            lines.append(
                f"  no boxes for {len(self.no_boxes)} image(s) or video(s), skipped (not written; add their labels "
                f"and run again): {listed(self.no_boxes)}"
            )
        if self.unmatched_boxes:
            lines.append(
                f"  boxes that name no image or video of the run (check the names): {listed(self.unmatched_boxes)}"
            )
        return lines

    def write(self, path: Path) -> None:
        from .writers import write_atomic

        write_atomic(path, self.to_json())

    def __str__(self) -> str:
        failed = self.failure_note()
        lines = [
            f"auto_annotate: {self._work_part()}" + (f"; NOT ALL DONE: {failed}" if failed else ""),
            f"  labelled {self.labelled}, no detections {self.no_detections}, skipped (already done) {self.skipped}, "
            f"failed {self.failed}" + (f", failed videos {self.failed_videos}" if self.failed_videos else ""),
            f"  instances: {', '.join(f'{k} {v}' for k, v in sorted(self.instances.items())) or 'none'}",
            f"  dataset: {self.data_yaml}" + (f"; COCO: {self.coco_json}" if self.coco_json else ""),
        ]
        if self.split:
            lines.append(f"  split: {self._split_part()}")
        lines += self.box_lines()
        lines += [f"  note: {note}" for note in self.notes]
        for v in self.videos:
            if v["failure"] is None:
                untracked = v.get("untracked_detections", 0)
                missing = v.get("keyframes_without_boxes") or []
                lines.append(
                    f"  video {v['key']}: {v['frames']} frames, {v['tracks']} tracks "
                    f"({', '.join(f'{k} {n}' for k, n in v['tracks_by_class'].items()) or 'none'}), "
                    f"{v['tracks_ended']} ended before the end, {v['seconds']:.1f} s"
                    + (f"; {untracked} detections not tracked (max_tracks reached)" if untracked else "")
                    + (f"; no boxes on keyframe(s) {', '.join(map(str, missing))}" if missing else "")
                )
        lines += [f"  FAILED {path}: {reason}" for path, reason in self.failures]
        return "\n".join(lines)
