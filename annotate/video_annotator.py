"""`VideoAnnotator`: one video in, its frames, labels and tracks out, in the run's dataset folder.

Two passes, so that every file states a track's final class (the majority of its detections, known at the end):

    track   the detector on keyframes, SAM 2 in between (`TrackAssociator` on `Sam2FrameTracker`); each final frame
            is written as a JPEG to a staging folder and its masks as a line of a working file
    write   each frame's instances through the run's exporters (YOLO-seg labels, COCO, mask PNGs), the MOT ground
            truth and results, the video's VIS part, the optional preview; then the frames move to
            ``images/<video>/`` in one rename (a dataset never shows a frame without its label), the MOT sequence
            shows them as ``img1/``, and the video's record marks it done

Every file is written atomically; a video that fails (unreadable, corrupt midway, a model error) is reported by name,
what it wrote is removed, and the run goes on. Redoing a video first removes what an earlier try left of it.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import supervision as sv

from sam2_model import Sam2Model, VideoPredictor
from sam2_model.rle import rle_area, rle_box, rle_to_mask

from .box_sources import BoxSource, NoBoxes
from .detectors import Detector, detect
from .exporters import ImageEntry, Instance
from .exporters.base import RUN_DIR, class_id_to_category_id, class_name
from .images import MAX_IMAGE_PIXELS
from .mot import forget_sequence, gt_path, mot_gt_line, mot_result_line, results_path, write_sequence
from .previews import draw_tracks, write_h264
from .sam2_tracker import Sam2FrameTracker
from .settings import OutputSettings, VideoSettings
from .video_outputs import VisTrackWriter, vis_part_path
from .video_stream import VideoStream
from .video_tracks import Track, TrackAssociator, keyframes
from .videos import FRAME_SUFFIX, VideoTask
from .writers import open_atomic, write_atomic, write_atomic_bytes

logger = logging.getLogger("annotate")

JPEG_QUALITY = 95


@dataclass
class VideoReport:
    """What became of one video.

    source: the file; key: its name in the dataset; sequence: its flat name (MOT, tracks/, vis.json); frames: frames
    written (every `frame_stride`-th); fps: their rate; width, height: their size in pixels; tracks: one dict per
    track with at least one mask written (id, class_id, score, detections, first_frame, last_frame, frames,
    started, ended; frames are indices of the written frames); instances: masks written per class id;
    tracks_started / tracks_ended: those tracks / those that ended before the video did; untracked_detections:
    detections left untracked by `VideoSettings.max_tracks` (`TrackAssociator.untracked`); failure: why it
    failed, else None; frame_keys: the dataset keys of its frames, in order; seconds: time spent. With boxes you
    already have (`annotate.box_sources`): keyframes_without_boxes, the keyframes (frame numbers in the video) that
    had none (nothing found there); no_boxes, none of its keyframes had any: skipped, nothing written.
    """

    source: str
    key: str
    sequence: str = ""
    frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    tracks: list[dict[str, Any]] = field(default_factory=list)
    instances: dict[int, int] = field(default_factory=dict)
    tracks_started: int = 0
    tracks_ended: int = 0
    untracked_detections: int = 0
    failure: str | None = None
    frame_keys: list[str] = field(default_factory=list)
    seconds: float = 0.0
    keyframes_without_boxes: list[int] = field(default_factory=list)
    no_boxes: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self, names: Mapping[int, str]) -> dict[str, Any]:
        """What `AnnotationSummary.videos` states of this video: counts by class name, no per-frame lists."""
        tracks_by_class = Counter(class_name(names, t["class_id"]) for t in self.tracks)
        return {
            "source": self.source,
            "key": self.key,
            "sequence": self.sequence,
            "frames": self.frames,
            "tracks": len(self.tracks),
            "tracks_started": self.tracks_started,
            "tracks_ended": self.tracks_ended,
            "untracked_detections": self.untracked_detections,
            "tracks_by_class": dict(sorted(tracks_by_class.items())),
            "instances": {class_name(names, c): n for c, n in sorted(self.instances.items())},
            "failure": self.failure,
            "seconds": round(self.seconds, 3),
            "keyframes_without_boxes": list(self.keyframes_without_boxes),
            "no_boxes": self.no_boxes,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> VideoReport:
        values = dict(values)
        values["instances"] = {int(k): int(v) for k, v in values.get("instances", {}).items()}
        return cls(**values)


def video_record_path(output: Path, key: str) -> Path:
    """The record that marks a video done (its `VideoReport` as JSON), written last."""
    return output / RUN_DIR / "videos" / f"{key}.json"


def read_video_record(output: Path, key: str) -> VideoReport | None:
    path = video_record_path(output, key)
    if not path.is_file():
        return None
    return VideoReport.from_dict(json.loads(path.read_text(encoding="utf-8")))


class VideoAnnotator:
    """One detector, one SAM 2 video predictor and the run's settings, annotating whole videos."""

    def __init__(
        self,
        detector: Detector,
        model: Sam2Model,
        output: OutputSettings,
        settings: VideoSettings,
        max_pixels: int = MAX_IMAGE_PIXELS,
    ) -> None:
        self.detector = detector
        # image features of a keyframe interval stay cached (~15 MB a frame at 1024 pixels): the backward pass of
        # a new object goes over frames just tracked forward, and need not encode them again
        self.predictor = VideoPredictor(model, feature_cache_frames=settings.keyframe_interval + 2)
        self.output = output
        self.settings = settings
        self.max_pixels = max_pixels

    def annotate(self, task: VideoTask, progress: Callable[[int], None] | None = None) -> VideoReport:
        """Annotate one video; `progress(n)` is called as frames are tracked (n new frames each time)."""
        started = time.perf_counter()
        report = VideoReport(str(task.source), task.key, task.sequence)
        try:
            self.forget(task)
            tracks, size, fps, report.untracked_detections = self._track(
                task, progress or (lambda n: None), report.keyframes_without_boxes
            )
            report.fps = fps
            self._write(task, tracks, size, report)
            record = {k: v for k, v in report.to_dict().items() if k != "seconds"}  # the same bytes on a rerun
            write_atomic(video_record_path(self.output.output, task.key), json.dumps(record))
        except NoBoxes:  # boxes you already have, but none for this video's keyframes: skipped, as such an image is
            report.no_boxes = True
            self.forget(task)
        except Exception as error:  # one bad video must not stop the run; the failure names it
            report.failure = f"{type(error).__name__}: {error}"
            logger.warning("Video %s failed: %s", task.source, report.failure)
            self.forget(task)
        finally:
            self._tracking_path(task).unlink(missing_ok=True)
        report.seconds = time.perf_counter() - started
        return report

    def forget(self, task: VideoTask) -> None:
        """Remove what an earlier try wrote of this video (the record first: until redone, it is not done)."""
        output = self.output.output
        video_record_path(output, task.key).unlink(missing_ok=True)
        for folder in ("images", "labels", "masks", f"{RUN_DIR}/coco", f"{RUN_DIR}/frames"):
            shutil.rmtree(output / folder / task.key, ignore_errors=True)
        (output / "previews" / f"{task.key}.mp4").unlink(missing_ok=True)
        forget_sequence(output, task.sequence)
        vis_part_path(output, task.key).unlink(missing_ok=True)

    def _tracking_path(self, task: VideoTask) -> Path:
        return self.output.output / RUN_DIR / "tracking" / f"{task.key}.jsonl"

    def _staged_frame(self, task: VideoTask, video_frame: int) -> Path:
        """Where pass 1 writes a frame (the dataset shows it only once its label is written)."""
        return self.output.output / RUN_DIR / "frames" / f"{task.frame_key(video_frame)}{FRAME_SUFFIX}"

    # ---------------------------------------------------------------------------------------------- pass 1
    def _track(
        self, task: VideoTask, progress: Callable[[int], None], without_boxes: list[int]
    ) -> tuple[dict[int, Track], tuple[int, int], float, int]:
        """Track the video, writing its frames and a working file of their masks; (tracks, (width, height), fps,
        detections not tracked for `max_tracks`). Keyframes a box source has no boxes for are appended to
        `without_boxes`; NoBoxes when it has none for any."""
        settings = self.settings
        window = 2 * settings.keyframe_interval + 4  # two intervals: the backward pass reaches the last keyframe
        stream = VideoStream(task.source, settings.frame_stride, window, self.max_pixels)
        try:
            if isinstance(self.detector, BoxSource):
                used = keyframes(stream.num_frames, settings.keyframe_interval)
                if not any(self.detector.has(task.frame_name(stream.video_frame(f))) for f in used):
                    raise NoBoxes(task.name)

            def detect_keyframe(frame: int) -> sv.Detections:
                video_frame = stream.video_frame(frame)
                try:
                    return detect(self.detector, [stream.rgb(frame)], [task.frame_name(video_frame)])[0]
                except NoBoxes:  # a keyframe without boxes: nothing found there
                    without_boxes.append(video_frame)
                    return sv.Detections.empty()

            tracker = Sam2FrameTracker(self.predictor, stream)
            try:
                associator = TrackAssociator(tracker, settings)
                with open_atomic(self._tracking_path(task)) as rows:
                    for frame, masks in associator.run(detect_keyframe):
                        video_frame = stream.video_frame(frame)
                        write_atomic_bytes(self._staged_frame(task, video_frame), _jpeg(stream.rgb(frame)))
                        ious = {i: tracker.sam2_iou(frame, i, rle) for i, rle in masks.items()}
                        known = {i: iou for i, iou in ious.items() if iou is not None}
                        rows.write(json.dumps({"frame": video_frame, "masks": masks, "sam2_ious": known}) + "\n")
                        progress(1)
            finally:
                tracker.close()
            size = (stream.width, stream.height)
            return associator.tracks, size, stream.fps / settings.frame_stride, associator.untracked
        finally:
            stream.close()

    # ---------------------------------------------------------------------------------------------- pass 2
    def _write(self, task: VideoTask, tracks: dict[int, Track], size: tuple[int, int], report: VideoReport) -> None:
        output, min_area = self.output.output, self.output.min_mask_area
        width, height = size
        found = {i: t for i, t in tracks.items() if t.frames}
        exporters = self.output.exporters()
        instances: Counter[int] = Counter()
        written: set[int] = set()
        vis = VisTrackWriter()
        try:
            with (
                open_atomic(gt_path(output, task.sequence)) as gt,
                open_atomic(results_path(output, task.sequence)) as results,
            ):
                for position, (video_frame, masks, ious) in enumerate(self._frames(task), start=1):
                    key = task.frame_key(video_frame)
                    entry = ImageEntry(key, f"{key}{FRAME_SUFFIX}", width, height)
                    kept = {i: rle for i, rle in masks.items() if rle_area(rle) >= max(1, min_area)}
                    objects = [
                        Instance(found[i].class_id, rle, score=found[i].score, name=f"track_{i}", track_id=i,
                                 sam2_iou=ious.get(i))
                        for i, rle in kept.items()
                    ]  # fmt: skip
                    for exporter in exporters:
                        exporter.write(entry, objects)
                    for i, rle in kept.items():  # MOT frame numbers: the written frames, from 1
                        gt.write(mot_gt_line(position, i, rle_box(rle), found[i].class_id))
                        results.write(mot_result_line(position, i, rle_box(rle), found[i].score))
                    vis.add_frame(f"{task.sequence}/img1/{position:06d}.jpg", kept)  # relative to mot/
                    instances.update(o.class_id for o in objects)
                    written.update(kept)
                    report.frame_keys.append(entry.key)
            video = {"name": task.sequence, "width": width, "height": height}
            fields = {
                i: {"category_id": class_id_to_category_id(t.class_id), "score": round(t.score, 5), "width": width,
                    "height": height}
                for i, t in found.items()
            }  # fmt: skip
            vis.write_part(vis_part_path(output, task.key), video, fields)
        finally:
            vis.close()
        if self.settings.preview:
            self._preview(task, found, report.fps)
        if report.frame_keys:
            staged = self._staged_frame(task, 0).parent
            (output / "images" / task.key).parent.mkdir(parents=True, exist_ok=True)
            staged.replace(output / "images" / task.key)
        frames = [output / "images" / f"{key}{FRAME_SUFFIX}" for key in report.frame_keys]
        write_sequence(output, task.sequence, frames, report.fps, width, height)
        report.frames = len(report.frame_keys)
        report.width, report.height = width, height
        report.tracks = [t.to_dict() for i, t in found.items() if i in written]
        report.instances = dict(sorted(instances.items()))
        report.tracks_started = len(report.tracks)
        report.tracks_ended = sum(t["ended"] is not None for t in report.tracks)

    def _frames(self, task: VideoTask) -> Iterator[tuple[int, dict[int, dict[str, Any]], dict[int, float]]]:
        """(video frame number, {track id: RLE}, {track id: SAM 2's predicted IoU of that mask}) of the working file,
        in order."""
        with open(self._tracking_path(task), encoding="utf-8") as rows:
            for line in rows:
                row = json.loads(line)
                ious = {int(k): float(v) for k, v in row["sam2_ious"].items()}
                yield int(row["frame"]), {int(k): v for k, v in row["masks"].items()}, ious

    def _preview(self, task: VideoTask, tracks: dict[int, Track], fps: float) -> None:
        """``previews/<video>.mp4``: the written frames with each track's mask and "#id class" label."""
        names = self.detector.names

        def frames() -> Iterator[np.ndarray]:
            for video_frame, masks, _ in self._frames(task):
                bgr = cv2.imread(str(self._staged_frame(task, video_frame)))
                if bgr is None:
                    raise ValueError(f"The frame {task.frame_key(video_frame)} written a moment ago cannot be read.")
                image = np.ascontiguousarray(bgr[:, :, ::-1])
                ids = list(masks)
                stacked = np.stack([rle_to_mask(masks[i]) for i in ids]) if ids else np.zeros((0, *image.shape[:2]))
                labels = [f"#{i} {names.get(tracks[i].class_id, tracks[i].class_id)}" for i in ids]
                yield draw_tracks(image, stacked.astype(bool), ids, labels)

        write_h264(frames(), self.output.output / "previews" / f"{task.key}.mp4", fps)


def _jpeg(image: np.ndarray) -> bytes:
    """HxWx3 uint8 RGB -> JPEG bytes (quality 95)."""
    ok, data = cv2.imencode(".jpg", np.ascontiguousarray(image[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise ValueError(f"OpenCV could not encode a frame of shape {image.shape} as JPEG.")
    return data.tobytes()
