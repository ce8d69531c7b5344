"""Seventy hostile or broken inputs across images, prompts, videos, zips and API arguments.

Each must get a clear message meant for a person (or a correct result), must leave the server answering a normal
request, and must cost at most MAX_REQUEST_MB of memory above the process's size before it (sampled from
/proc/self/statm while it runs) and MAX_REQUEST_DISK_MB of disk (every temporary file of the request is counted).
"""

from __future__ import annotations

import json
import os
import struct
import tempfile
import threading
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import cv2
import gradio as gr
import numpy as np
import pytest
from PIL import Image

from app.detector_pool import DetectorPool
from app.errors import APOLOGY
from app.errors import USER_ERRORS as REFUSED
from app.settings import Limits
from app.studio import Studio

from .conftest import request
from .test_studio import no_progress, write_video

MAX_REQUEST_MB = 300
MAX_REQUEST_DISK_MB = 50
LIMITS = Limits(max_video_frames=12, max_video_pixels=200 * 200, max_annotate_images=4, max_zip_entries=1000)
OK = None  # the request must succeed


def png_claiming(width: int, height: int, color_type: int = 6) -> bytes:
    """A tiny PNG whose header claims width x height pixels, with no pixel data."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def make_files(folder: Path, scene: np.ndarray) -> dict[str, Path]:
    """Every file the cases upload, made once."""
    files: dict[str, Path] = {}

    def put(name: str, data: bytes) -> None:
        files[name] = folder / name
        files[name].write_bytes(data)

    bgr = scene[:, :, ::-1]
    jpeg = cv2.imencode(".jpg", bgr)[1].tobytes()
    gray_jpeg = cv2.imencode(".jpg", bgr[:, :, 0])[1].tobytes()
    put("good.png", cv2.imencode(".png", bgr)[1].tobytes())
    put("empty.jpg", b"")
    put("text.jpg", b"I am a text file with the name of a photo")
    put("truncated.jpg", jpeg[: len(jpeg) // 3])
    put("truncated_gray.jpg", gray_jpeg[: len(gray_jpeg) // 3])
    put("header_only.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    put("bomb_rgba.png", png_claiming(13_300, 13_300))
    put("bomb_gray.png", png_claiming(30_000, 30_000, color_type=0))
    put("html.png", b"<html><script>alert(1)</script></html>")
    put("svg.png", b'<svg xmlns="http://www.w3.org/2000/svg"><circle r="5"/></svg>')
    put("zip_named.png", b"PK\x03\x04" + b"\0" * 60)
    for name, mode, suffix in [("tiny", "RGB", "png"), ("palette", "P", "png"), ("rgba", "RGBA", "png"),
                               ("cmyk", "CMYK", "jpg"), ("webp", "RGB", "webp"), ("bmp", "RGB", "bmp"),
                               ("gif", "P", "gif")]:  # fmt: skip
        path = folder / f"{name}.{suffix}"
        Image.new(mode, (1, 1) if name == "tiny" else (40, 30)).save(path)
        files[name] = path
    Image.fromarray(np.linspace(0, 65535, 40 * 30, dtype=np.uint16).reshape(30, 40)).save(folder / "deep.png")
    files["deep"] = folder / "deep.png"

    files["video"] = write_video(folder / "clip.mp4", frames=4)
    put("empty.mp4", b"")
    put("text.mp4", b"not a video")
    put("truncated.mp4", files["video"].read_bytes()[:300])
    files["long_video"] = write_video(folder / "long.mp4", frames=20)
    with av.open(str(folder / "big.mp4"), mode="w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        container.mux(stream.encode(av.VideoFrame.from_ndarray(scene, format="rgb24")))
        container.mux(stream.encode())
    files["big_video"] = folder / "big.mp4"

    png = cv2.imencode(".png", bgr)[1].tobytes()

    def zipped(name: str, members: dict[str, bytes]) -> None:
        files[name] = folder / name
        with zipfile.ZipFile(files[name], "w", zipfile.ZIP_DEFLATED) as archive:
            for member, data in members.items():
                archive.writestr(member, data)

    zipped("ok.zip", {"photos/a.png": png, "../escape.png": png, "/abs.png": png, "notes.txt": b"x"})
    zipped("entries.zip", {f"f{i}.txt": b"" for i in range(20_000)})
    zipped("long_name.zip", {"x" * 300 + ".png": png})
    zipped("nested.zip", {"inner.zip": (folder / "ok.zip").read_bytes()})
    zipped("five.zip", {f"{i}.png": png for i in range(5)})
    files["bomb.zip"] = folder / "bomb.zip"
    bomb = zipfile.ZipFile(files["bomb.zip"], "w", zipfile.ZIP_DEFLATED, compresslevel=9)
    with bomb, bomb.open("zeros.png", "w", force_zip64=True) as member:
        for _ in range(300):
            member.write(bytes(1 << 20))
    put("corrupt.zip", b"PK\x03\x04" + os.urandom(200))
    return files


def point(x: float, y: float, label: Any = 1) -> str:
    return json.dumps([[x, y, label]])


# (case id, call(studio, files) -> result, expected: a regex of the message, or OK)
Case = tuple[str, Callable[[Studio, dict[str, Path]], Any], str | None]


def upload(name: str) -> Callable:
    return lambda s, f: s.image.upload(str(f[name]), request(), progress=no_progress)


def segment(points: str | None, box: str | None = "null", image: str = "good.png") -> Callable:
    return lambda s, f: s.api.segment_image(str(f[image]), points, box)


def video_upload(name: str) -> Callable:
    return lambda s, f: s.video.upload(str(f[name]), request(), progress=no_progress)


def forged_click(studio: Studio, files: dict[str, Path], frame: Any, index: Any) -> Any:
    """A click event sent by a script: any frame value, any index."""
    studio.video.upload(str(files["video"]), request(), progress=no_progress)
    return studio.video.click(frame, "Positive click", gr.SelectData(None, {"index": index, "value": None}), request())


def track(prompts: Any) -> Callable:
    text = prompts if isinstance(prompts, str) else json.dumps(prompts)
    return lambda s, f: s.api.track_video(str(f["video"]), text)


def annotate(names: list[str] | None, detector: str = "yolo11n.pt", classes: str = "", conf: float = 0.25) -> Callable:
    return lambda s, f: s.annotate.run(
        None if names is None else [str(f[n]) for n in names], detector, classes, conf, request(), no_progress
    )


UNREADABLE = "could not be read as an image"
CASES: list[Case] = [
    # --- images, uploaded in the Image tab
    ("image: empty file", upload("empty.jpg"), "empty"),
    ("image: text named .jpg", upload("text.jpg"), UNREADABLE),
    ("image: truncated JPEG", upload("truncated.jpg"), "corrupt or truncated"),
    ("image: truncated grayscale JPEG", upload("truncated_gray.jpg"), "corrupt or truncated"),
    ("image: PNG signature then zeros", upload("header_only.png"), UNREADABLE),
    ("image: 13300x13300 RGBA bomb", upload("bomb_rgba.png"), "13300x13300 pixels; the limit is 25,000,000"),
    ("image: 30000x30000 gray bomb", upload("bomb_gray.png"), "900,000,000 pixels; the limit is 25,000,000"),
    ("image: HTML named .png", upload("html.png"), UNREADABLE),
    ("image: SVG named .png", upload("svg.png"), UNREADABLE),
    ("image: zip named .png", upload("zip_named.png"), UNREADABLE),
    ("image: no file (the upload was cleared)", lambda s, f: s.image.upload(None, request(), progress=no_progress), OK),
    ("image: 1x1 pixel", upload("tiny"), OK),
    ("image: palette PNG", upload("palette"), OK),
    ("image: RGBA PNG", upload("rgba"), OK),
    ("image: CMYK JPEG", upload("cmyk"), OK),
    ("image: WebP", upload("webp"), OK),
    ("image: BMP", upload("bmp"), OK),
    ("image: GIF", upload("gif"), OK),
    ("image: 16-bit PNG", upload("deep"), OK),
    # --- prompts through /segment_image
    ("prompt: not JSON", segment("nonsense"), "points must be JSON"),
    ("prompt: nothing", segment("[]"), "at least one point or a box"),
    ("prompt: null and null", segment("null", "null"), "at least one point or a box"),
    ("prompt: point without label", segment("[[1, 2]]"), "points must be JSON"),
    ("prompt: label 3", segment(point(5, 5, 3)), "label must be 1"),
    ("prompt: label -1", segment(point(5, 5, -1)), "label must be 1"),
    ("prompt: label 0.5", segment(point(5, 5, 0.5)), "label must be 1"),
    ("prompt: label 'yes'", segment(point(5, 5, "yes")), "label must be 1"),
    ("prompt: x is text", segment('[["a", 2, 1]]'), "finite numbers"),
    ("prompt: x is NaN", segment("[[NaN, 2, 1]]"), "finite numbers"),
    ("prompt: x is Infinity", segment("[[Infinity, 2, 1]]"), "finite numbers"),
    ("prompt: x is 1e12", segment(point(1e12, 5)), "outside the 320x240 image"),
    ("prompt: negative y", segment(point(5, -5)), "outside the 320x240 image"),
    ("prompt: 5,000 points", segment(json.dumps([[1, 1, 1]] * 5_000)), "5000 points were given; the limit is 64"),
    ("prompt: 100,000 points", segment(json.dumps([[1, 1, 1]] * 100_000)), "at most 100,000 characters"),
    ("prompt: nested 100,000 deep", segment("[" * 100_000 + "]" * 100_000), "at most 100,000 characters"),
    ("prompt: nested 5,000 deep", segment("[" * 5_000 + "]" * 5_000), "points must be JSON"),
    ("prompt: 10 MB of text", segment("1" * 10_000_000), "at most 100,000 characters"),
    ("prompt: points as an object", segment('{"x": 1, "y": 2}'), "points must be JSON"),
    ("prompt: box as an object", segment("[]", '{"x0": 1}'), "one box of four numbers"),
    ("prompt: two boxes", segment("[]", "[[0, 0, 5, 5], [1, 1, 6, 6]]"), "one box of four numbers"),
    ("prompt: box of three", segment("[]", "[1, 2, 3]"), "one box of four numbers"),
    ("prompt: box of text", segment("[]", '["a", "b", "c", "d"]'), "finite numbers"),
    ("prompt: box off the image", segment("[]", "[1000, 1000, 2000, 2000]"), "outside the 320x240 image"),
    ("prompt: box partly off the image", segment("[]", "[300, 200, 5000, 5000]"), OK),
    ("prompt: box corners swapped", segment("[]", "[150, 140, 30, 40]"), OK),
    ("prompt: a click", segment(point(80, 90)), OK),
    ("prompt: box and clicks", segment(json.dumps([[80, 90, 1], [10, 10, False]]), "[30, 40, 150, 140]"), OK),
    ("prompt: on a bomb", segment(point(1, 1), image="bomb_rgba.png"), "13300x13300"),
    # --- videos
    ("video: empty file", video_upload("empty.mp4"), "could not be read as a video"),
    ("video: text named .mp4", video_upload("text.mp4"), "could not be read as a video"),
    ("video: truncated mp4", video_upload("truncated.mp4"), "could not be read as a video"),
    ("video: too many frames", video_upload("long_video"), "limit is 12"),
    ("video: frames too large", video_upload("big_video"), "320x240 pixels; the limit is 40,000 pixels per frame"),
    ("video: no file", lambda s, f: s.video.upload(None, request(), progress=no_progress), "Upload a video first"),
    ("video: an image as a video", video_upload("good.png"), "320x240 pixels"),
    ("video: forged frame NaN", lambda s, f: forged_click(s, f, float("nan"), [5, 5]), "must be a whole number"),
    ("video: forged frame 1e9", lambda s, f: forged_click(s, f, 1e9, [5, 5]), "Frame 1e\\+09 does not exist"),
    ("video: forged click index", lambda s, f: forged_click(s, f, 0, "x"), "a position \\[x, y\\]"),
    ("track: not JSON", track("nonsense"), "prompts must be a JSON list"),
    ("track: empty list", track([]), "prompts must be a JSON list"),
    ("track: frame is text", track([{"frame": "a", "points": [[5, 5, 1]]}]), '"frame" must be an integer'),
    ("track: obj_id is text", track([{"obj_id": "x", "points": [[5, 5, 1]]}]), '"obj_id" must be an integer'),
    ("track: frame 10^9", track([{"frame": 10**9, "points": [[5, 5, 1]]}]), "Frame 1000000000 does not exist"),
    ("track: frame -1", track([{"frame": -1, "points": [[5, 5, 1]]}]), "Frame -1 does not exist"),
    ("track: obj_id 0", track([{"obj_id": 0, "points": [[5, 5, 1]]}]), "must be 1 or more"),
    ("track: no points nor box", track([{"frame": 0}]), "neither points nor a box"),
    ("track: 1,000 prompts", track([{"points": [[5, 5, 1]]}] * 1000), "1000 prompts were given; the limit is 256"),
    ("track: point off the frame", track([{"points": [[5000, 5, 1]]}]), "outside the 96x64 image"),
    ("track: nested 100,000 deep", track("[" * 100_000 + "]" * 100_000), "at most 100,000 characters"),
    ("track: a click on frame 0", track([{"frame": 0, "obj_id": 1, "points": [[50, 45, 1]]}]), OK),
    # --- auto-annotate uploads
    ("zip: 300 MB of zeros in 300 KB", annotate(["bomb.zip"]), "refused as a zip bomb"),
    ("zip: 20,000 entries", annotate(["entries.zip"]), "20000 entries; the limit is 1000"),
    ("zip: a 300-character name", annotate(["long_name.zip"]), "longer than 255 characters"),
    ("zip: a zip in a zip", annotate(["nested.zip"]), "No images found"),
    ("zip: corrupt", annotate(["corrupt.zip"]), "No images found"),
    ("zip: more images than allowed", annotate(["five.zip"]), "more than 4 images; the limit is 4"),
    ("zip: slip and absolute paths", annotate(["ok.zip"]), OK),
    ("annotate: no files", annotate(None), "Upload images"),
    ("annotate: path-like detector", annotate(["ok.zip"], detector="../../etc/passwd"), "Unknown detector"),
    ("annotate: classes with semicolons", annotate(["ok.zip"], classes="1;2"), "Classes must be"),
    ("annotate: confidence NaN", annotate(["ok.zip"], conf=float("nan")), "between 0 and 1"),
    ("annotate: a text file", annotate(["text.jpg"]), OK),  # processed and reported as a failed image
]


class PeakMemory:
    """The largest resident set size of this process while it runs (sampled every 2 ms), in MB."""

    def __enter__(self) -> PeakMemory:
        self.peak = self.start = self.rss()
        self.running = True
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join()

    @staticmethod
    def rss() -> float:
        return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20

    def _sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, self.rss())
            time.sleep(0.002)


def disk_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


@pytest.fixture(scope="module")
def files(tmp_path_factory, scene_image) -> dict[str, Path]:
    return make_files(tmp_path_factory.mktemp("hostile"), scene_image)


@pytest.fixture(scope="module")
def studio(small_model, yolo_detector) -> Studio:
    studio = Studio(small_model, LIMITS, DetectorPool(["yolo11n.pt"], loader=lambda name: yolo_detector))
    studio.open_session(request())
    return studio


def test_the_table_is_large_enough():
    assert len(CASES) >= 60 and len({name for name, _, _ in CASES}) == len(CASES)


@pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="memory is sampled from /proc (Linux)")
@pytest.mark.parametrize(("name", "call", "expected"), CASES, ids=[name for name, _, _ in CASES])
def test_hostile_input(studio, files, tmp_path, monkeypatch, name, call, expected):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # every temporary file of the request lands here
    user_files = studio.find_session(request()).workdir
    disk_before = disk_mb(user_files)
    with PeakMemory() as memory:
        if expected is OK:
            result = call(studio, files)
            if hasattr(result, "__next__"):
                result = list(result)
        else:
            with pytest.raises(REFUSED, match=expected) as refusal:
                result = call(studio, files)
                if hasattr(result, "__next__"):
                    list(result)
            message = str(refusal.value)
            assert APOLOGY not in message and "Traceback" not in message and "/tmp/" not in message
    assert memory.peak - memory.start <= MAX_REQUEST_MB, f"{name}: {memory.peak - memory.start:.0f} MB"
    disk = disk_mb(tmp_path) + disk_mb(user_files) - disk_before
    assert disk <= MAX_REQUEST_DISK_MB, f"{name}: {disk:.0f} MB on disk"
    # the server still answers a normal request
    mask, _, scores = studio.api.segment_image(str(files["good.png"]), point(80, 90), "null")
    assert mask.shape == (240, 320) and len(scores["scores"]) == 3
