"""The studio's handlers called as plain functions: image, video and auto-annotate tabs, named API, sessions."""

from __future__ import annotations

import contextlib
import json
import zipfile
from pathlib import Path
from types import SimpleNamespace

import av
import cv2
import gradio as gr
import numpy as np
import pytest
from pycocotools.coco import COCO

from app.detector_pool import DetectorPool
from app.image_tab import BOX, NEGATIVE, POSITIVE
from app.settings import Limits
from app.studio import Studio


def no_progress(*_args, **_kwargs) -> None:
    return None


def request(name: str = "user-a") -> SimpleNamespace:
    return SimpleNamespace(session_hash=name)


def page_load(studio: Studio, name: str = "user-a") -> SimpleNamespace:
    """What a browser does first: load the page, which opens the tab's session."""
    studio.open_session(request(name))
    return request(name)


def click(x: int, y: int) -> gr.SelectData:
    return gr.SelectData(None, {"index": [x, y], "value": None})


def session_of(studio: Studio, request):
    with studio.user_session(request) as user:
        return user


@pytest.fixture
def studio(small_model, yolo_detector) -> Studio:
    detectors = DetectorPool(["yolo11n.pt"], loader=lambda name: yolo_detector)  # no download in tests
    studio = Studio(small_model, Limits(max_sessions=4, max_video_frames=30, max_annotate_images=10), detectors)
    page_load(studio)  # "user-a" has loaded the page
    return studio


@pytest.fixture
def image_file(tmp_path, scene_image) -> str:
    path = tmp_path / "scene.png"
    cv2.imwrite(str(path), scene_image[:, :, ::-1])
    return str(path)


def test_image_tab_clicks_boxes_objects_and_candidates(studio, image_file, scene_image):
    overlay, gallery, objects, active = studio.image.upload(image_file, request(), progress=no_progress)
    np.testing.assert_array_equal(overlay, scene_image)  # nothing drawn before a click
    assert active == 1

    overlay, gallery, objects, _ = studio.image.click(POSITIVE, click(80, 90), request())
    assert overlay.shape == scene_image.shape and len(gallery) == 3  # one click: three candidates
    assert "1 click(s)" in objects
    user = session_of(studio, request())
    assert user.image.objects[0].points == [(80, 90, 1)]  # the pixel the user clicked

    studio.image.click(NEGATIVE, click(200, 30), request())
    assert user.image.objects[0].points[-1] == (200, 30, 0)
    assert len(studio.image.view(user)[1]) == 1  # several prompts: one mask

    studio.image.pick_candidate(gr.SelectData(None, {"index": 0, "value": None}), request())
    *_, active = studio.image.new_object(request())
    assert active == 2
    studio.image.click(BOX, click(180, 110), request())  # first corner: no mask yet
    assert user.image.objects[1].box is None and user.image.box_corner == (180, 110)
    studio.image.click(BOX, click(280, 210), request())
    assert user.image.objects[1].box == [180, 110, 280, 210]
    assert user.image.objects[1].mask.shape == scene_image.shape[:2]

    studio.image.undo(request())
    assert user.image.objects[1].box is None and user.image.objects[1].mask is None
    studio.image.remove_object(request())
    assert len(user.image.objects) == 1
    studio.image.clear(request())
    assert user.image.objects[0].points == []


def test_image_export_files(studio, image_file, scene_image):
    studio.image.upload(image_file, request(), progress=no_progress)
    with pytest.raises(gr.Error, match="Nothing to export"):
        studio.image.export(request())
    studio.image.click(BOX, click(30, 40), request())
    studio.image.click(BOX, click(150, 140), request())
    user = session_of(studio, request())
    mask = user.image.objects[0].mask
    if not mask.any():  # untrained weights may give an empty mask: set one so the export has content
        user.image.objects[0].candidates[0, 40:140, 30:150] = True
    zip_path, coco_path, yolo_path = studio.image.export(request())
    with zipfile.ZipFile(zip_path) as archive:
        png = cv2.imdecode(np.frombuffer(archive.read("object_1.png"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert png.shape == scene_image.shape[:2] and set(np.unique(png)) <= {0, 255}
    coco = COCO(coco_path)
    assert len(coco.getAnnIds()) == 1
    np.testing.assert_array_equal(coco.annToMask(coco.loadAnns(coco.getAnnIds())[0]), png // 255)
    line = Path(yolo_path).read_text().strip()
    assert line.startswith("0 ") and len(line.split()) >= 7


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "could not be read"), (b"\x89PNG\r\n\x1a\n" + b"\0" * 40, "could not be read"), (b"hello", "could not")],
)
def test_bad_uploads_get_a_friendly_error(studio, tmp_path, content, match):
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    with pytest.raises(gr.Error, match=match) as error:
        studio.image.upload(str(path), request(), progress=no_progress)
    assert str(tmp_path) not in str(error.value)  # no server path in the message


def test_oversized_image_names_the_limit(small_model, image_file):
    studio = Studio(small_model, Limits(max_image_pixels=1000))
    page_load(studio)
    with pytest.raises(gr.Error, match="limit is 1,000 pixels"):
        studio.image.upload(image_file, request(), progress=no_progress)


def test_sessions_are_isolated_bounded_and_freed(studio, image_file):
    studio.image.upload(image_file, page_load(studio, "a"), progress=no_progress)
    studio.image.click(POSITIVE, click(80, 90), request("a"))
    studio.image.upload(image_file, page_load(studio, "b"), progress=no_progress)
    assert session_of(studio, request("b")).image.objects[0].points == []  # b does not see a's clicks
    workdir = session_of(studio, request("a")).workdir
    workdir.joinpath("x").write_text("x")
    studio.close_session(request("a"))
    assert not workdir.exists() and len(studio.sessions) == 2  # user-a (the fixture's) and b
    studio.sessions.idle_timeout_s = 0
    assert studio.sessions.free_idle() == 2 and len(studio.sessions) == 0


def test_events_never_create_sessions_only_a_page_load_does(studio, image_file):
    """A script calling private events with invented session hashes gets an error and no server state."""
    for number in range(40):
        forged = request(f"forged-{number}")
        with pytest.raises(gr.Error, match="reload the page"):
            studio.image.clear(forged)
        with pytest.raises(gr.Error, match="reload the page"):
            studio.image.upload(image_file, forged, progress=no_progress)
    assert len(studio.sessions) == 1  # only the fixture's user-a, who loaded the page


def test_a_full_registry_evicts_the_least_recently_used_idle_session(studio, image_file):
    for name in ("b", "c", "d"):
        studio.image.upload(image_file, page_load(studio, name), progress=no_progress)
    studio.image.click(POSITIVE, click(80, 90), request("b"))  # user-a is now the least recently used
    studio.image.upload(image_file, page_load(studio, "e"), progress=no_progress)  # full: a new visitor still gets in
    assert len(studio.sessions) == 4
    with pytest.raises(gr.Error, match=r"expired.*reload the page"):
        studio.image.clear(request())  # user-a was evicted
    assert session_of(studio, request("b")).image.objects[0].points == [(80, 90, 1)]  # the others keep their work
    with contextlib.ExitStack() as requests_running:
        for name in "bcde":
            requests_running.enter_context(session_of(studio, request(name)).in_use())
        with pytest.raises(gr.Error, match="maximum of 4 busy sessions"):
            page_load(studio, "f")  # refused only when every session has a request running


def write_video(path: Path, frames: int = 4) -> Path:
    from assets.make_assets import scene

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        for i in range(frames):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(scene(96, 64, t=i / 4), format="rgb24")))
        container.mux(stream.encode())
    return path


def test_video_tab_click_track_and_outputs(studio, tmp_path):
    video = write_video(tmp_path / "clip.mp4")
    frame, slider, status = studio.video.upload(str(video), request(), progress=no_progress)
    assert frame.shape == (64, 96, 3) and slider["maximum"] == 3 and "4 frames" in status
    frame, status = studio.video.click(0, POSITIVE, click(50, 45), request())
    assert "object 1: frames [0]" in status
    studio.video.set_object(2, request())
    studio.video.click(2, POSITIVE, click(20, 40), request())  # a second object, prompted on a later frame
    outputs = list(studio.video.track(request(), progress=no_progress))
    preview = outputs[0][0]
    assert preview.shape == (64, 96, 3)
    _, overlay_path, (masks_path, coco_path) = outputs[-1]
    with av.open(overlay_path) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert sum(1 for _ in container.decode(video=0)) == 4
    with zipfile.ZipFile(masks_path) as archive:
        assert len(archive.namelist()) == 8  # 4 frames x 2 objects
    coco = COCO(coco_path)
    assert len(coco.getImgIds()) == 4
    assert studio.video.show_frame(3, request()).shape == (64, 96, 3)
    studio.video.remove_object(request())
    assert session_of(studio, request()).video.session.obj_ids == [1]


def test_video_limits_and_bad_files(small_model, tmp_path):
    studio = Studio(small_model, Limits(max_video_frames=3))
    page_load(studio)
    with pytest.raises(gr.Error, match="limit is 3"):
        studio.video.upload(str(write_video(tmp_path / "long.mp4", frames=5)), request(), progress=no_progress)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\0\0\0\x18ftypmp42" + b"garbage" * 20)
    with pytest.raises(gr.Error, match="could not be read as a video") as error:
        studio.video.upload(str(broken), request(), progress=no_progress)
    assert str(tmp_path) not in str(error.value)
    with pytest.raises(gr.Error, match="Upload a video first"):
        list(studio.video.track(page_load(studio, "nobody"), progress=no_progress))


def test_auto_annotate_tab_with_a_zip(studio, tmp_path, scene_image, yolo_detector):
    archive = tmp_path / "upload.zip"
    _, jpg = cv2.imencode(".jpg", scene_image[:, :, ::-1])
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("photos/a.jpg", jpg.tobytes())
        zf.writestr("photos/b.jpg", jpg.tobytes())
        zf.writestr("photos/c[1].jpg", jpg.tobytes())  # glob-special characters in a name
        zf.writestr("../escape.jpg", jpg.tobytes())  # zip-slip: must not be written outside
        zf.writestr("notes.txt", "not an image")
    gallery, dataset_zip = studio.annotate.run([str(archive)], "yolo11n.pt", "", 0.0, request(), progress=no_progress)
    assert [caption for _, caption in gallery] == ["a", "b", "c[1]"]
    with zipfile.ZipFile(dataset_zip) as dataset:
        names = dataset.namelist()
    assert "data.yaml" in names and "annotations.json" in names
    assert sum(n.startswith("labels/") and n.endswith(".txt") for n in names) == 3
    assert not [n for n in names if n.startswith(".")]  # no working files of the run in the download
    assert not (tmp_path.parent / "escape.jpg").exists()
    with pytest.raises(gr.Error, match="Classes must be"):
        studio.annotate.run([str(archive)], "yolo11n.pt", "cats", 0.0, request(), progress=no_progress)
    with pytest.raises(gr.Error, match="Unknown detector"):
        studio.annotate.run([str(archive)], "evil.pt", "", 0.0, request(), progress=no_progress)


def test_named_api_segment_image(studio, image_file, scene_image):
    mask, overlay, scores = studio.api.segment_image(image_file, json.dumps([[80, 90, 1], [200, 30, 0]]), "null")
    assert mask.shape == scene_image.shape[:2] and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    assert overlay.shape == scene_image.shape and len(scores["scores"]) == 1
    mask, _, scores = studio.api.segment_image(image_file, "[]", json.dumps([30, 40, 150, 140]))
    assert mask.shape == scene_image.shape[:2]
    for points, box, match in [("nonsense", None, "JSON"), ("[]", "null", "at least one"), ("[[1, 2]]", None, "JSON")]:
        with pytest.raises(gr.Error, match=match):
            studio.api.segment_image(image_file, points, box)
