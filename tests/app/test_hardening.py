"""The app against a hostile stranger (issue: safe to host for strangers): each attack reproduced, then the fix.

Handlers are called as Gradio calls them; the lock-out is reproduced over HTTP with forged session hashes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import av
import cv2
import httpx
import numpy as np
import pytest

from app.detector_pool import DetectorPool
from app.errors import USER_ERRORS as REFUSED
from app.settings import Limits
from app.studio import Studio

from .conftest import request
from .test_studio import click, no_progress, page_load, write_video

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def studio(small_model, yolo_detector) -> Studio:
    detectors = DetectorPool(["yolo11n.pt"], loader=lambda name: yolo_detector, max_per_name=2)
    studio = Studio(small_model, Limits(max_annotate_images=5, max_video_frames=30), detectors)
    page_load(studio)
    return studio


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


# ---------------------------------------------------------------------------------------------------- 1. lock-out
def test_forged_session_hashes_create_no_sessions_over_http(launch):
    demo, url = launch(Limits(max_sessions=4, max_requests_per_client=64))  # 40 calls from one address at once
    clear = next(i for i, fn in demo.fns.items() if fn.name == "clear")
    with httpx.Client(base_url=url, timeout=30) as client:
        for number in range(40):  # more than max_sessions: once, this locked everyone out for 30 minutes
            body = {"data": [], "fn_index": clear, "session_hash": f"forged-{number}", "event_data": None}
            assert client.post("gradio_api/queue/join", json=body).status_code == 200
        messages = []
        with client.stream("GET", "gradio_api/queue/data", params={"session_hash": "forged-39"}) as events:
            for line in events.iter_lines():
                messages.append(line)
                if "process_completed" in line:
                    break
    # the browser would show it as a warning (panels unchanged); the server holds nothing for the forged hash
    assert any("reload the page" in line for line in messages) and len(demo.studio.sessions) == 0
    from gradio_client import Client  # the named API still answers, sessionless

    Client(url, verbose=False).view_api(print_info=False)
    assert len(demo.studio.sessions) == 0


# ---------------------------------------------------------------------------------------------------- 2. zip bombs
@pytest.fixture(scope="module")
def gigabyte_zip(tmp_path_factory) -> Path:
    """A 1 MB zip that expands to 1 GB (ten 100 MB members of zeros named like images)."""
    path = tmp_path_factory.mktemp("bomb") / "photos.zip"
    chunk = bytes(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for index in range(10):
            with archive.open(f"img_{index}.png", "w", force_zip64=True) as member:
                for _ in range(100):
                    member.write(chunk)
    return path


def write_zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


@pytest.mark.parametrize(
    ("make", "match"),
    [
        ("bomb", r"expands 10\d\d times \(more than 100 times is refused as a zip bomb\)"),
        ("entries", "holds 20000 entries; the limit is 1000"),
        ("long_name", "longer than 255 characters"),
        ("too_many_images", "more than 5 images; the limit is 5 per run"),
        ("expanded", "expands to 2 MB; the limit is 1 MB"),
        ("not_a_zip", "No images found"),
    ],
)
def test_zips_are_judged_by_their_directory_before_extracting(studio, tmp_path, gigabyte_zip, make, match):
    png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    noise = cv2.imencode(".png", np.random.default_rng(0).integers(0, 255, (700, 1000, 3), np.uint8))[1].tobytes()
    uploads = {
        "bomb": lambda: gigabyte_zip,
        "entries": lambda: write_zip(tmp_path / "many.zip", {f"f{i}.txt": b"" for i in range(20_000)}),
        "long_name": lambda: write_zip(tmp_path / "long.zip", {"a" * 300 + ".png": png}),
        "too_many_images": lambda: write_zip(tmp_path / "six.zip", {f"{i}.png": png for i in range(6)}),
        "expanded": lambda: write_zip(tmp_path / "big.zip", {"a.png": noise}),
        "not_a_zip": lambda: write_zip(tmp_path / "notes.zip", {"readme.txt": b"hello"}),
    }
    if make == "expanded":
        studio.limits = Limits(max_expanded_mb=1)
    upload = str(uploads[make]())
    with pytest.raises(REFUSED, match=match):
        studio.annotate.run([upload], "yolo11n.pt", "", 0.25, request(), progress=no_progress)
    user = studio.find_session(request())
    assert folder_bytes(user.workdir) < 10_000  # nothing extracted


def test_other_arguments_are_checked_before_any_file_is_touched(studio, gigabyte_zip):
    for detector, classes, conf, match in [
        ("evil.pt", "", 0.25, "Unknown detector"),
        ("yolo11n.pt", "cats", 0.25, "Classes must be"),
        ("yolo11n.pt", "", 7.0, "between 0 and 1"),
    ]:
        with pytest.raises(REFUSED, match=match):
            studio.annotate.run([str(gigabyte_zip)], detector, classes, conf, request(), progress=no_progress)
    assert not (studio.find_session(request()).workdir / "annotate").exists()


# ------------------------------------------------------------------------------------------ 3. package installs
def test_an_unreadable_upload_attempts_no_package_install(tmp_path):
    """ultralytics' patched Image.open would `pip install pi-heif` on a file PIL cannot identify; not in our process."""
    (tmp_path / "fake.jpg").write_text("text named like a photo")
    probe = f"""
import subprocess
import app.studio
import ultralytics.utils.checks as checks
from annotate.images import ImageReadError, read_image
calls = []
def spy(*args, **kwargs):
    calls.append(args)
    raise subprocess.CalledProcessError(1, "blocked by the test")
subprocess.check_output = subprocess.run = subprocess.Popen = spy
checks.ONLINE = True  # as on a host with internet
try:
    read_image({str(tmp_path / "fake.jpg")!r})
except ImageReadError as error:
    print("refused:", error.reason)
print("installs:", calls, "autoinstall:", checks.AUTOINSTALL)
"""
    environment = {k: v for k, v in __import__("os").environ.items() if k != "YOLO_AUTOINSTALL"}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, env=environment)
    assert "refused: the file could not be read as an image" in result.stdout, result.stderr
    assert "installs: [] autoinstall: False" in result.stdout


# ------------------------------------------------------------------------------------------- 4. bounded decoding
def png_header(width: int, height: int, color_type: int = 6) -> bytes:
    """A tiny PNG whose header claims width x height (RGBA by default) and whose pixel data is missing."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_a_decompression_bomb_is_refused_from_its_header(studio, tmp_path):
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(png_header(13_300, 13_300))
    with pytest.raises(REFUSED, match=r"13300x13300 pixels; the limit is 25,000,000 pixels"):
        studio.image.upload(str(bomb), request(), progress=no_progress)
    with pytest.raises(REFUSED, match="25,000,000 pixels"):
        studio.api.segment_image(str(bomb), "[[1, 1, 1]]", "null")


def test_video_frames_are_capped_before_decoding(small_model, tmp_path):
    studio = Studio(small_model, Limits(max_video_pixels=96 * 63))
    video = write_video(tmp_path / "clip.mp4")  # 96x64
    with pytest.raises(REFUSED, match=r"frames of 96x64 pixels; the limit is 6,048 pixels per frame"):
        studio.video.upload(str(video), page_load(studio), progress=no_progress)


@pytest.mark.parametrize(
    ("points", "box", "match"),
    [
        (json.dumps([[1, 1, 1]] * 5_000), "null", "5000 points were given; the limit is 64"),
        (json.dumps([[1, 1, 1]] * 100_000), "null", "at most 100,000 characters"),
        ("[]", json.dumps([[0, 0, 5, 5], [1, 1, 6, 6]]), "one box of four numbers"),
        ("[]", json.dumps({"x0": 1, "y0": 2, "x1": 3, "y1": 4}), "one box of four numbers"),
        (json.dumps([[1e12, 5, 1]]), "null", r"The point \(1e\+12, 5\) is outside the 320x240 image"),
        ("[]", json.dumps([1e12, 1e12, 2e12, 2e12]), "is outside the 320x240 image"),
        ("[" * 100_000 + "]" * 100_000, "null", "at most 100,000 characters"),
        ("[" * 5_000 + "]" * 5_000, "null", "points must be JSON"),
    ],
)
def test_prompts_are_bounded_and_checked(studio, tmp_path, scene_image, points, box, match):
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), scene_image[:, :, ::-1])
    with pytest.raises(REFUSED, match=match):
        studio.api.segment_image(str(image), points, box)


def test_clicks_per_object_and_objects_are_capped(small_model, tmp_path, scene_image):
    studio = Studio(small_model, Limits(max_prompt_points=3, max_objects=2))
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), scene_image[:, :, ::-1])
    user = page_load(studio)
    studio.image.upload(str(image), user, progress=no_progress)
    for x in (10, 20, 30):
        studio.image.click("Positive click", click(x, 10), user)
    with pytest.raises(REFUSED, match="3 clicks, the most one object can have"):
        studio.image.click("Positive click", click(40, 10), user)
    studio.image.add_object(user)
    with pytest.raises(REFUSED, match="at most 2 objects"):
        studio.image.add_object(user)
    with pytest.raises(REFUSED, match=r"outside the 320x240 image"):
        studio.image.click("Positive click", click(10**9, 5), user)  # a forged click event


# ------------------------------------------------------------------------------------------- 6. wrong values
@pytest.mark.parametrize(
    ("label", "accepted"), [(1, True), (0, True), (True, True), (-1, False), (2, False), (0.5, False)]
)
def test_point_labels_are_exactly_zero_or_one(studio, tmp_path, scene_image, label, accepted):
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), scene_image[:, :, ::-1])
    points = json.dumps([[80, 90, label]])
    if accepted:
        mask, _, _ = studio.api.segment_image(str(image), points, "null")
        assert mask.shape == scene_image.shape[:2]
    else:
        with pytest.raises(REFUSED, match="label must be 1 \\(object\\) or 0 \\(background\\)"):
            studio.api.segment_image(str(image), points, "null")


# ------------------------------------------------------------------------------------------- 7. server paths
def test_the_dataset_download_names_no_server_path(studio, tmp_path, scene_image):
    image = tmp_path / "photo.png"
    cv2.imwrite(str(image), scene_image[:, :, ::-1])
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    archive = studio.api.auto_annotate([str(image), str(tmp_path / "broken.png")], "yolo11n.pt", "")
    with zipfile.ZipFile(archive) as dataset:
        texts = {name: dataset.read(name).decode("utf-8", "replace") for name in dataset.namelist()}
    summary = json.loads(texts["summary.json"])
    assert summary["failed"] == 1 and summary["output_dir"] == "."
    for name, text in texts.items():
        assert "/tmp" not in text and str(Path.home()) not in text, name


# ------------------------------------------------------------------------------------- 8. edits while tracking
def test_edits_during_tracking_are_refused_and_a_new_video_stops_it(studio, tmp_path):
    user = request()
    video = write_video(tmp_path / "clip.mp4", frames=12)
    studio.video.upload(str(video), user, progress=no_progress)
    studio.video.click(0, "Positive click", click(50, 45), user)
    tracking = studio.video.track(user)
    preview, *_ = next(tracking)  # tracking has started and is between two frames
    session = studio.find_session(user).video.session
    assert preview.shape == (64, 96, 3) and session.is_propagating
    with pytest.raises(REFUSED, match="Tracking is in progress"):
        studio.video.click(3, "Positive click", click(20, 40), user)
    studio.video.add_object(3, user)
    with pytest.raises(REFUSED, match="Tracking is in progress"):
        studio.video.click(3, "Positive click", click(20, 40), user)  # a new object too
    studio.video.select_object("1", 3, user)
    with pytest.raises(REFUSED, match="Tracking is in progress"):
        studio.video.remove_object(3, user)
    assert session.obj_ids == [1]
    studio.video.upload(str(write_video(tmp_path / "other.mp4", frames=3)), user, progress=no_progress)
    assert list(tracking) == []  # the old tracking stopped quietly at its next frame
    studio.video.click(0, "Positive click", click(50, 45), user)  # the new video works
    *_, (_, _, _, _, _, _, overlay, _) = studio.video.track(user)
    with av.open(overlay) as container:
        assert sum(1 for _ in container.decode(video=0)) == 3


# ------------------------------------------------------------------------------------ 9. one detector per request
def test_concurrent_annotation_runs_keep_their_own_classes(studio, tmp_path, scene_image):
    image = tmp_path / "scene.png"
    cv2.imwrite(str(image), scene_image[:, :, ::-1])
    studio.open_session(request("user-b"))

    def classes_written(user: str, classes: list[str]) -> set[int]:
        _, archive, _ = studio.annotate.run([str(image)] * 2, "yolo11n.pt", classes, 0.0, request(user), no_progress)
        with zipfile.ZipFile(archive) as dataset:
            labels = [dataset.read(n).decode() for n in dataset.namelist() if n.startswith("labels/")]
        return {int(line.split()[0]) for text in labels for line in text.splitlines()}

    found = sorted(classes_written("user-a", []))  # what the untrained detector finds on this image
    assert found, "the untrained detector found nothing: the case is not covered"
    names = studio.detectors.class_names("yolo11n.pt")  # COCO's, as every YOLO11 detector the studio offers
    # user-a keeps one class that is there, user-b every other class: swapped filters would show at once
    wanted = {"user-a": {found[0]}, "user-b": set(found[1:])}
    filters = {"user-a": [names[found[0]]], "user-b": [name for i, name in names.items() if i != found[0]]}
    results: dict[str, set[int]] = {}
    errors: list[BaseException] = []

    def run(user: str) -> None:
        try:
            results[user] = classes_written(user, filters[user])
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(user,)) for user in wanted]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert results == wanted  # each run got exactly its own classes: no filter leaked between the two


# ------------------------------------------------------------------------------- what held before and must hold
def test_file_routes_serve_no_server_file(launch):
    _, url = launch()
    secret = ROOT / "app.py"
    with httpx.Client(base_url=url, timeout=30) as client:
        for path in ["/etc/passwd", "../../../../etc/passwd", "..%2F..%2F..%2Fetc%2Fpasswd", str(secret)]:
            response = client.get(f"gradio_api/file={path}")
            assert response.status_code in (403, 404), (path, response.status_code)
            assert "root:" not in response.text and "def main" not in response.text


def test_urls_given_as_files_are_not_fetched_from_private_addresses(launch):
    """SSRF: a URL instead of an uploaded file must not make the server fetch from its own network."""
    import http.server

    hits: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    recorder = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=recorder.serve_forever, daemon=True).start()
    try:
        _, url = launch()
        from gradio_client import Client

        internal = f"http://127.0.0.1:{recorder.server_address[1]}/secret.png"
        client = Client(url, verbose=False)
        with pytest.raises(Exception):  # noqa: B017 - Gradio refuses it before our handler, with its own error
            client.predict({"path": internal, "url": internal, "meta": {"_type": "gradio.FileData"}}, "[[1, 1, 1]]",
                           "null", api_name="/segment_image")  # fmt: skip
        assert hits == []
    finally:
        recorder.shutdown()


def test_over_http_a_bad_upload_gets_our_message_not_gradios_generic_error(launch, tmp_path):
    """Uploads reach our guarded opener undecoded (gr.File, not gr.Image), even on a server with show_error off."""
    from gradio_client import Client, handle_file

    _, url = launch()  # show_error=False, as in production
    (tmp_path / "text.jpg").write_text("not a photo")
    (tmp_path / "bomb.png").write_bytes(png_header(13_300, 13_300))
    client = Client(url, verbose=False)
    for name, message in [("text.jpg", "could not be read as an image"), ("bomb.png", "13300x13300 pixels")]:
        with pytest.raises(Exception, match=message):
            client.predict(handle_file(str(tmp_path / name)), "[[1, 1, 1]]", "null", api_name="/segment_image")


def test_tracking_stops_when_the_api_client_disconnects(launch):
    """A /track_video client that gives up must not leave the server tracking for minutes."""
    import time

    demo, url = launch()
    tracked: list[int] = []
    propagate = demo.studio.video_predictor.propagate_in_video

    def counting(*args, **kwargs):
        for item in propagate(*args, **kwargs):
            tracked.append(item[0])
            yield item

    demo.studio.video_predictor.propagate_in_video = counting
    track = next(i for i, fn in demo.fns.items() if fn.name == "track_video")
    video = ROOT / "app" / "examples" / "video.mp4"  # 24 frames: 48 tracked in all (forward, then backward)
    prompts = json.dumps(
        [{"frame": 0, "obj_id": 1, "points": [[250, 225, 1]]}, {"frame": 23, "box": [60, 160, 180, 250]}]
    )
    with httpx.Client(base_url=url, timeout=60) as client:
        [path] = client.post("gradio_api/upload", files={"files": ("video.mp4", video.read_bytes())}).json()
        file_data = {"path": path, "orig_name": "video.mp4", "meta": {"_type": "gradio.FileData"}}
        body = {"data": [file_data, prompts], "fn_index": track, "session_hash": "leaving", "event_data": None}
        assert client.post("gradio_api/queue/join", json=body).status_code == 200
        with client.stream("GET", "gradio_api/queue/data", params={"session_hash": "leaving"}) as events:
            for line in events.iter_lines():
                if "process_generating" in line:
                    break  # tracking has started: the client goes away
    time.sleep(5)
    stopped_at = len(tracked)
    time.sleep(3)
    assert len(tracked) == stopped_at < 48, f"still tracking after the client left: {stopped_at} -> {len(tracked)}"


# -------------------------------------------------------------------------- 10. tracks of an auto-annotated video
def test_a_confidence_0_detector_tracks_at_most_max_tracks_objects(small_model, yolo_detector, tmp_path, monkeypatch,
                                                                    capsys):  # fmt: skip
    """The Auto-annotate tab bounded a video's frames and pixels, not its objects: at confidence 0 a detector starts
    up to max_det tracks a keyframe, each costing SAM 2 a memory attention pass per frame."""
    from annotate.previews import write_h264
    from annotate.sam2_tracker import Sam2FrameTracker

    frames = [np.full((48, 64, 3), 40 + 30 * t, np.uint8) for t in range(6)]
    clip = write_h264(frames, tmp_path / "street.mp4", fps=10)
    prompted: list[int] = []  # objects SAM 2 was asked to track
    tracked: list[int] = []  # objects tracked per frame: the memory attention passes
    prompt, forward = Sam2FrameTracker.prompt, Sam2FrameTracker.forward

    def counting_prompt(self, frame, track_id, box):
        prompted.append(track_id)
        return prompt(self, frame, track_id, box)

    def counting_forward(self, start, stop):
        for frame, masks in forward(self, start, stop):
            tracked.append(len(self.session.obj_ids))
            yield frame, masks

    monkeypatch.setattr(Sam2FrameTracker, "prompt", counting_prompt)
    monkeypatch.setattr(Sam2FrameTracker, "forward", counting_forward)
    detectors = DetectorPool(["yolo11n.pt"], loader=lambda name: yolo_detector)
    studio = Studio(small_model, Limits(max_tracks=2), detectors)
    user = page_load(studio)
    _, archive, _ = studio.annotate.run([str(clip)], "yolo11n.pt", [], 0.0, user, no_progress, keyframe_interval=2)
    with zipfile.ZipFile(archive) as dataset:
        [video] = json.loads(dataset.read("summary.json"))["videos"]
    assert video["untracked_detections"] > 0, "the detector found no more than 2 objects: the case is not covered"
    assert video["tracks_started"] <= 2 and sorted(set(prompted)) == [1, 2]
    assert max(tracked) <= 2 and sum(tracked) <= 2 * len(frames)  # the cost: at most 2 objects a frame
    notice = f"street: {video['untracked_detections']} detections were not tracked: this server tracks at most 2"
    assert notice in capsys.readouterr().out  # shown to the user (gr.Info; printed outside a Gradio event)
