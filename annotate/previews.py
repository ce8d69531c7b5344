"""Browser-playable videos: H.264 mp4 from RGB frames, and the overlay preview of an annotated video.

OpenCV's wheel cannot write H.264 (its FFmpeg has no libx264), and browsers do not play its mp4v; PyAV's bundled
FFmpeg can, so videos are written with PyAV.

The same frames give the same bytes, on every run, machine load, thread count and Ray worker (docs/datasets.md promises
the Ray backend writes the local backend's files byte for byte): x264 runs on one thread with no lookahead thread
(its threaded modes depend on how many threads there are), the RGB -> YUV conversion on one thread, frames carry
explicit timestamps (frame i at i / rate), and the container is written "bitexact" (no creation time, no library
version strings: a worker with another FFmpeg build writes the same container).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np
import supervision as sv

from .writers import open_atomic


def write_h264(frames: Iterable[np.ndarray], target: Path, fps: float) -> Path:
    """Write HxWx3 uint8 RGB frames as an H.264 mp4 that browsers play (yuv420p, even size), atomically: the file
    appears whole under `target` or not at all. ValueError when there is no frame."""
    import av

    frames = iter(frames)
    first = next(frames, None)
    if first is None:
        raise ValueError(f"No frames to write to {target}.")
    height, width = first.shape[0] // 2 * 2, first.shape[1] // 2 * 2
    target = Path(target)
    rate = max(1, round(fps))
    container_options = {"fflags": "+bitexact"}  # no creation time or muxer version in the file
    with (
        open_atomic(target, binary=True) as file,
        av.open(file, mode="w", format="mp4", options=container_options) as container,
    ):
        stream = container.add_stream("libx264", rate=rate)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.time_base = Fraction(1, rate)
        # One thread everywhere, pinned rather than left to defaults: x264's frame and slice threads and its
        # lookahead thread make the output depend on the thread count, and PyAV sizes the RGB -> YUV conversion's
        # threads from the codec's; one thread still encodes faster than SAM 2 tracks.
        stream.options = {
            "crf": "23",
            "preset": "veryfast",
            "threads": "1",
            "x264-params": "threads=1:lookahead-threads=1:sliced-threads=0:sync-lookahead=0:deterministic=1",
        }
        stream.codec_context.thread_count = 1
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        for index, frame in enumerate(itertools.chain([first], frames)):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame[:height, :width]), format="rgb24")
            picture.pts, picture.time_base = index, Fraction(1, rate)
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    return target


def draw_tracks(image: np.ndarray, masks: np.ndarray, track_ids: list[int], labels: list[str]) -> np.ndarray:
    """One frame of a preview: each NxHxW bool mask filled and labelled ("#<track id> <class>") in its track's
    colour (the same colour for a track on every frame). image: HxWx3 uint8 RGB; returns a new HxWx3 uint8 RGB."""
    if len(track_ids) == 0:
        return image.copy()
    detections = sv.Detections(
        xyxy=sv.mask_to_xyxy(masks).astype(np.float32), mask=masks, tracker_id=np.asarray(track_ids, int)
    )
    scene = sv.MaskAnnotator(color_lookup=sv.ColorLookup.TRACK, opacity=0.5).annotate(image.copy(), detections)
    label = sv.LabelAnnotator(  # on the mask: a box's top-left label falls off the frame for objects at its edge
        color_lookup=sv.ColorLookup.TRACK, text_scale=0.5, text_padding=4, text_position=sv.Position.CENTER_OF_MASS
    )
    return label.annotate(scene, detections, labels=labels)
