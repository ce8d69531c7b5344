"""H.264 previews are byte-deterministic: the same frames give the same file whatever the thread counts, the load or
the process (the README promises the Ray backend writes the local backend's files byte for byte, previews too)."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from annotate.previews import draw_tracks, write_h264

ROOT = Path(__file__).resolve().parents[2]

ENCODE = """
import hashlib, sys
import cv2, numpy as np, torch
sys.path.insert(0, {root!r})
from tests.annotate.test_previews import preview_frames
from annotate.previews import write_h264
torch.set_num_threads({threads}); cv2.setNumThreads({threads})
path = write_h264(preview_frames(), __import__("pathlib").Path({target!r}), fps=12.5)
print(hashlib.sha256(path.read_bytes()).hexdigest())
"""


def preview_frames(count: int = 8) -> list[np.ndarray]:
    """Overlay frames as a video preview draws them: two tracks (a moving square, a still disc), labelled."""
    frames = []
    yy, xx = np.mgrid[:72, :96]
    for t in range(count):
        image = np.full((72, 96, 3), 60, np.uint8)
        image[(yy // 4 + xx // 4) % 2 == 0] = 90  # texture: the encoder has something to decide about
        square = np.zeros((72, 96), bool)
        square[10:34, 4 + 4 * t : 28 + 4 * t] = True
        disc = (yy - 50) ** 2 + (xx - 70) ** 2 < 14**2
        frames.append(draw_tracks(image, np.stack([square, disc]), [1, 2], ["#1 square", "#2 disc"]))
    return frames


def encode_elsewhere(target: Path, threads: int, busy: bool = False) -> str:
    """The preview's sha256, written by a fresh process with `threads` torch, OpenCV and OpenMP threads; `busy`:
    while two busy processes keep the CPUs loaded."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "YOLO_OFFLINE": "1"}
    code = ENCODE.format(root=str(ROOT), threads=threads, target=str(target))
    # Two plain busy processes, each killed by itself: a hog that forked workers of its own would leave them
    # spinning (orphaned) after a kill, and the rest of the suite would run on a machine loaded for good.
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(2 if busy else 0)]
    try:
        result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_the_same_frames_give_the_same_bytes_whatever_the_threads_and_load(tmp_path):
    here = write_h264(preview_frames(), tmp_path / "here.mp4", fps=12.5)
    expected = hashlib.sha256(here.read_bytes()).hexdigest()
    assert encode_elsewhere(tmp_path / "one.mp4", threads=1) == expected
    assert encode_elsewhere(tmp_path / "two.mp4", threads=2, busy=True) == expected


def test_a_preview_holds_no_time_no_version_and_timestamps_by_frame(tmp_path):
    import av

    path = write_h264(preview_frames(), tmp_path / "preview.mp4", fps=12.5)
    data = path.read_bytes()
    assert b"Lavf" not in data  # bitexact: no muxer version string (a worker with another FFmpeg writes the same)
    mvhd = data.index(b"mvhd")
    assert data[mvhd + 8 : mvhd + 16] == bytes(8)  # creation and modification time: zero
    options = re.search(rb"options: ([^\x00]*)", data).group(1).decode()
    assert {"threads=1", "lookahead_threads=1", "sliced_threads=0"} <= set(options.split())
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.average_rate == 12 and stream.frames == 8
        stamps = [frame.pts * frame.time_base for frame in container.decode(video=0)]
    assert stamps == [Fraction(i, 12) for i in range(8)]
