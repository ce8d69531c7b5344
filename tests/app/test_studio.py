"""The studio's handlers called as plain functions: image, video and auto-annotate tabs, named API, sessions."""

from __future__ import annotations

import contextlib
import json
import re
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
from app.errors import USER_ERRORS as REFUSED
from app.prompts import BOX, BOX_CLICKS, NEGATIVE, POSITIVE
from app.settings import Limits
from app.studio import Studio

from .conftest import request


def no_progress(*_args, **_kwargs) -> None:
    return None


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


def choices(update: dict) -> list[str]:
    """The labels of a radio update's choices."""
    return [label for label, _ in update["choices"]]


def test_image_tab_clicks_boxes_objects_and_candidates(studio, image_file, scene_image):
    canvas, _, gallery, objects, hint, _ = studio.image.upload(image_file, request(), progress=no_progress)
    np.testing.assert_array_equal(canvas, scene_image)  # nothing drawn before a click
    assert objects["value"] == "1" and choices(objects) == ["Object 1 — no prompt yet"] and "click on it" in hint

    canvas, _, gallery, objects, _, _ = studio.image.click(POSITIVE, click(80, 90), request())
    assert canvas.shape == scene_image.shape and len(gallery) == 3  # one click: three candidates
    assert gallery[0][1].startswith("1: score") and gallery[0][1].endswith("✓")  # the chosen one is marked
    assert choices(objects)[0].startswith("Object 1 — 1 click, score")
    user = session_of(studio, request())
    assert user.image.objects[0].points == [(80, 90, 1)]  # the pixel the user clicked

    studio.image.click(NEGATIVE, click(200, 30), request())
    assert user.image.objects[0].points[-1] == (200, 30, 0)
    assert len(studio.image.view(user)[2]) == 0  # several prompts: one mask, no candidates to pick from

    studio.image.pick_candidate(gr.SelectData(None, {"index": 0, "value": None}), request())
    *_, objects, _, _ = studio.image.add_object(request())
    assert objects["value"] == "2"
    *_, hint, _ = studio.image.click(BOX_CLICKS, click(180, 110), request())  # first corner: no mask yet
    assert user.image.objects[1].box is None and user.image.box_corner == (180, 110)
    assert "opposite corner" in hint
    studio.image.click(BOX_CLICKS, click(280, 210), request())
    assert user.image.objects[1].box == [180, 110, 280, 210]
    assert user.image.objects[1].mask.shape == scene_image.shape[:2]

    studio.image.name_object("2", "  red   car ", request())  # the object the name was typed for
    assert user.image.objects[1].class_name == "red car"
    studio.image.select_object("1", request())  # the object list sends its value as text
    assert user.image.active == 0
    studio.image.remove_object(request())
    assert len(user.image.objects) == 1 and user.image.objects[0].box is not None
    *_, downloads = studio.image.clear(request())
    assert user.image.objects[0].points == [] and downloads is None  # the downloads are cleared too


def test_undo_takes_back_the_most_recent_prompt_of_any_kind(studio, image_file):
    studio.image.upload(image_file, request(), progress=no_progress)
    user = session_of(studio, request())
    studio.image.click(POSITIVE, click(80, 90), request())  # object 1: a click
    studio.image.add_object(request())
    studio.image.click(BOX_CLICKS, click(180, 110), request())  # object 2: a box...
    studio.image.click(BOX_CLICKS, click(280, 210), request())
    studio.image.select_object("1", request())
    studio.image.click(NEGATIVE, click(10, 10), request())  # ...then object 1 again: a second click
    first, second = user.image.objects
    studio.image.undo(request())
    assert first.points == [(80, 90, 1)] and second.box is not None
    studio.image.undo(request())  # the box, although the active object was object 1
    assert second.box is None and second.mask is None and user.image.active == 1
    studio.image.click(BOX_CLICKS, click(5, 5), request())  # a lone corner is undone as such
    studio.image.undo(request())
    assert user.image.box_corner is None
    studio.image.undo(request())
    assert first.points == [] and first.mask is None


def test_a_box_dragged_on_the_box_canvas(studio, image_file):
    studio.image.upload(image_file, request(), progress=no_progress)
    studio.image.set_mode(BOX, request())
    user = session_of(studio, request())
    box = {"xmin": 30, "ymin": 40, "xmax": 150, "ymax": 140, "label": "", "color": (0, 0, 0)}
    view = studio.image.draw_box({"image": None, "boxes": [box]}, request())
    assert user.image.objects[0].box == [30, 40, 150, 140] and view[1]["boxes"] == []  # the canvas is reset
    assert all(v is not None for v in view[:1])
    skipped = studio.image.draw_box({"image": None, "boxes": []}, request())  # our own reset reports a change too
    assert all(isinstance(v, dict) and v.get("__type__") == "update" for v in skipped)


def test_choosing_or_adding_an_object_leaves_the_canvases_alone(studio, image_file):
    """The picture does not depend on which object is active: a box canvas reloaded for nothing drops a box being
    dragged meanwhile (seen on a busy machine). A box corner waiting for its second click is the exception."""
    studio.image.upload(image_file, request(), progress=no_progress)
    studio.image.set_mode(BOX, request())
    skip = gr.skip()
    for view in (studio.image.add_object(request()), studio.image.select_object("1", request())):
        assert view[0] == skip and view[1] == skip and "Object" in view[4]
    studio.image.set_mode(BOX_CLICKS, request())
    studio.image.click(BOX_CLICKS, SimpleNamespace(index=(40, 40)), request())  # one corner shown on the picture
    assert session_of(studio, request()).image.box_corner is not None
    view = studio.image.add_object(request())
    assert isinstance(view[0], np.ndarray)  # redrawn without the corner


def test_big_images_are_sent_as_previews_and_clicks_scaled_back(studio, tmp_path):
    big = np.zeros((4000, 6000, 3), np.uint8)
    big[1000:3000, 2000:4000] = 200
    path = tmp_path / "big.png"
    cv2.imwrite(str(path), big)
    canvas, *_ = studio.image.upload(str(path), request(), progress=no_progress)
    assert canvas.shape == (853, 1280, 3)  # at most 1280 pixels a side go to the browser
    canvas, _, gallery, *_ = studio.image.click(POSITIVE, click(640, 426), request())
    user = session_of(studio, request())
    assert user.image.objects[0].points == [(3000, 1996, 1)]  # in the image's own pixels
    assert canvas.shape == (853, 1280, 3) and all(max(g.shape[:2]) <= 320 for g, _ in gallery)
    assert user.image.objects[0].mask.shape == (4000, 6000)  # the masks (and exports) keep full resolution


class ScriptedEverything:
    """Stands in for SAM 2's automatic mask generator (untrained weights rarely make a confident mask): two known
    masks, the larger first after sorting, with progress reported per batch as the real one does."""

    def __init__(self, model, points_per_side=16):
        self.points_per_side = points_per_side

    def generate(self, image, progress=None):
        small, large = np.zeros(image.shape[:2], bool), np.zeros(image.shape[:2], bool)
        small[10:30, 10:30], large[50:150, 100:250] = True, True
        if progress is not None:
            progress(1, 1)
        return [
            {"segmentation": small, "area": int(small.sum()), "predicted_iou": 0.9, "point_coords": [[20.0, 20.0]]},
            {"segmentation": large, "area": int(large.sum()), "predicted_iou": 0.8, "point_coords": [[170.0, 90.0]]},
        ]


def test_segment_everything_makes_objects_to_keep_refine_and_undo(studio, image_file, monkeypatch):
    monkeypatch.setattr("app.gpu_tasks.AutomaticMaskGenerator", ScriptedEverything)
    studio.image.upload(image_file, request(), progress=no_progress)
    user = session_of(studio, request())
    studio.image.click(POSITIVE, click(300, 200), request())  # an object of the user's own comes first and stays
    mine = user.image.objects[0]
    studio.image.segment_everything(request(), progress=no_progress)
    objects = user.image.objects
    assert objects[0] is mine and len(objects) == 3
    assert [o.points for o in objects[1:]] == [[(170.0, 90.0, 1)], [(20.0, 20.0, 1)]]  # largest first
    assert user.image.active == 1  # the first found object is ready to refine
    studio.image.click(POSITIVE, click(120, 60), request())  # refine it with a click
    assert objects[1].points == [(170.0, 90.0, 1), (120, 60, 1)] and objects[1].mask is not None
    studio.image.undo(request())  # the refining click
    assert objects[1].points == [(170.0, 90.0, 1)]
    studio.image.undo(request())  # Segment everything, whole
    assert user.image.objects == [mine]


def test_segment_everything_that_finds_nothing_refuses_and_changes_nothing(studio, image_file, monkeypatch):
    class FindsNothing(ScriptedEverything):
        def generate(self, image, progress=None):
            return []

    monkeypatch.setattr("app.gpu_tasks.AutomaticMaskGenerator", FindsNothing)
    studio.image.upload(image_file, request(), progress=no_progress)
    studio.image.click(POSITIVE, click(80, 90), request())
    user = session_of(studio, request())
    with pytest.raises(REFUSED, match="found no object"):
        studio.image.segment_everything(request(), progress=no_progress)
    assert len(user.image.objects) == 1 and user.image.objects[0].points == [(80, 90, 1)]
    studio.image.click(POSITIVE, click(100, 100), request())  # the next click still works
    assert len(user.image.objects[0].points) == 2


def test_image_export_files(studio, image_file, scene_image):
    studio.image.upload(image_file, request(), progress=no_progress)
    with pytest.raises(REFUSED, match="Nothing to export"):
        studio.image.export(request())
    studio.image.click(BOX_CLICKS, click(30, 40), request())
    studio.image.click(BOX_CLICKS, click(150, 140), request())
    studio.image.name_object("1", "crate", request())
    user = session_of(studio, request())
    mask = user.image.objects[0].mask
    if not mask.any():  # untrained weights may give an empty mask: set one so the export has content
        user.image.objects[0].candidates[0, 40:140, 30:150] = True
    zip_path, coco_path, yolo_path, classes_path = studio.image.export(request())
    assert [Path(p).name for p in (zip_path, coco_path, yolo_path, classes_path)] == [
        "scene_masks.zip",
        "scene_coco.json",
        "scene.txt",
        "scene_classes.txt",
    ]
    assert Path(classes_path).read_text() == "crate\n"  # the YOLO labels' class list comes with them
    with zipfile.ZipFile(zip_path) as archive:
        png = cv2.imdecode(np.frombuffer(archive.read("object_1.png"), np.uint8), cv2.IMREAD_UNCHANGED)
    assert png.shape == scene_image.shape[:2] and set(np.unique(png)) <= {0, 255}
    coco = COCO(coco_path)
    assert len(coco.getAnnIds()) == 1 and coco.loadImgs(coco.getImgIds())[0]["file_name"] == "scene.png"
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["crate"]
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
    with pytest.raises(REFUSED, match=match) as error:
        studio.image.upload(str(path), request(), progress=no_progress)
    assert str(tmp_path) not in str(error.value)  # no server path in the message


def test_oversized_image_names_the_limit(small_model, image_file):
    studio = Studio(small_model, Limits(max_image_pixels=1000))
    page_load(studio)
    with pytest.raises(REFUSED, match="limit is 1,000 pixels"):
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
        with pytest.raises(REFUSED, match="reload the page"):
            studio.image.clear(forged)
        with pytest.raises(REFUSED, match="reload the page"):
            studio.image.upload(image_file, forged, progress=no_progress)
    assert len(studio.sessions) == 1  # only the fixture's user-a, who loaded the page


def test_a_full_registry_gives_a_new_visitor_an_idle_session_without_work(studio, image_file):
    """(Who gives way to whom, client by client: tests/app/test_client_limits.py.)"""
    for name in ("b", "c", "d"):
        studio.image.upload(image_file, page_load(studio, name), progress=no_progress)
    studio.image.click(POSITIVE, click(80, 90), request("b"))  # user-a loaded the page and did nothing yet
    studio.image.upload(image_file, page_load(studio, "e"), progress=no_progress)  # full: a new visitor still gets in
    assert len(studio.sessions) == 4
    with pytest.raises(REFUSED, match=r"expired.*reload the page"):
        studio.image.clear(request())  # user-a was evicted
    assert session_of(studio, request("b")).image.objects[0].points == [(80, 90, 1)]  # the others keep their work
    with contextlib.ExitStack() as requests_running:
        for name in "bcde":
            requests_running.enter_context(session_of(studio, request(name)).in_use())
        with pytest.raises(REFUSED, match="The studio is full: its 4 sessions are in use or hold other visitors"):
            page_load(studio, "f")  # refused only when no session may be given up


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
    frame, slider, status, timeline, objects, _ = studio.video.upload(str(video), request(), progress=no_progress)
    assert frame.shape == (64, 96, 3) and slider["maximum"] == 3 and "4 frames" in status
    assert choices(objects) == ["Object 1 — no prompt yet"]
    frame, slider, status, timeline, objects, _ = studio.video.click(0, POSITIVE, click(50, 45), request())
    assert choices(objects) == ["Object 1 — prompts on frame 0"] and 'class="tl-prompt"' in timeline
    *_, objects, _ = studio.video.add_object(2, request())
    assert objects["value"] == "2"
    studio.video.click(2, POSITIVE, click(20, 40), request())  # a second object, prompted on a later frame
    steps = list(studio.video.track(request()))
    # every tracked frame is shown where the user looks, the slider following it: 0..3 forward, 2..0 backward
    assert [step[1]["value"] for step in steps[:-1]] == [0, 1, 2, 3, 2, 1, 0]
    assert "7 of 7 frames done" in steps[-2][2] and steps[0][0].shape == (64, 96, 3)
    frame, slider, note, timeline, objects, _, overlay_path, (masks_path, coco_path) = steps[-1]
    assert note.startswith("Tracked: 7 of 7 frames") and slider["value"] == 0
    assert "tracked 4 frames" in choices(objects)[0] and timeline.count('class="tl-run"') == 2
    assert Path(overlay_path).name == "clip_tracked.mp4"
    with av.open(overlay_path) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264" and stream.codec_context.pix_fmt == "yuv420p"
        assert sum(1 for _ in container.decode(video=0)) == 4
    with zipfile.ZipFile(masks_path) as archive:
        names = set(archive.namelist())
    coco = COCO(coco_path)
    assert len(coco.getImgIds()) == 4
    assert {image["file_name"] for image in coco.dataset["images"]} <= names  # COCO's images are in the download
    assert len([n for n in names if n.endswith(".png")]) == 8  # 4 frames x 2 objects
    assert sorted(c["name"] for c in coco.dataset["categories"]) == ["object 1", "object 2"]
    frame, timeline = studio.video.show_frame(3, request())
    assert frame.shape == (64, 96, 3) and 'data-frame="3"' in timeline
    studio.video.remove_object(3, request())
    assert session_of(studio, request()).video.session.obj_ids == [1]


def test_video_undo_in_time_order_and_boxes_by_two_clicks(studio, tmp_path):
    studio.video.upload(str(write_video(tmp_path / "clip.mp4")), request(), progress=no_progress)
    session = session_of(studio, request()).video.session
    studio.video.click(1, POSITIVE, click(50, 45), request())
    studio.video.add_object(0, request())
    studio.video.click(2, BOX_CLICKS, click(10, 10), request())  # object 2: a box by two corners on frame 2
    studio.video.click(2, BOX_CLICKS, click(40, 50), request())
    studio.video.select_object("1", 0, request())
    studio.video.click(1, NEGATIVE, click(80, 10), request())  # object 1 again
    assert session.prompt(2, 2).box.tolist() == [10, 10, 40, 50] and len(session.prompt(1, 1).points) == 2
    _, slider, *_ = studio.video.undo(0, request())
    assert len(session.prompt(1, 1).points) == 1 and slider["value"] == 1  # the slider goes to the undone frame
    studio.video.undo(0, request())  # the box, whole
    assert session.obj_ids == [1]  # object 2 had nothing else: it is gone from tracking
    studio.video.undo(0, request())
    assert session.obj_ids == []


def test_cancel_stops_tracking_and_keeps_what_was_tracked(studio, tmp_path):
    studio.video.upload(str(write_video(tmp_path / "clip.mp4", frames=8)), request(), progress=no_progress)
    studio.video.click(0, POSITIVE, click(50, 45), request())
    assert studio.video.cancel(request()) == gr.skip()  # nothing running: the status is left as it is
    tracking = studio.video.track(request())
    next(tracking), next(tracking)  # frames 0 and 1 are tracked
    assert studio.video.cancel(request()).startswith("Cancelling")
    steps = list(tracking)
    *_, note, _, _, _, overlay_path, files = steps[-1]
    assert note.startswith("Cancelled: 2 of 8 frames") and overlay_path and len(files) == 2
    assert session_of(studio, request()).video.session.tracked_frames(1) == [0, 1]


def test_video_limits_and_bad_files(small_model, tmp_path):
    studio = Studio(small_model, Limits(max_video_frames=3))
    page_load(studio)
    with pytest.raises(REFUSED, match="limit is 3"):
        studio.video.upload(str(write_video(tmp_path / "long.mp4", frames=5)), request(), progress=no_progress)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\0\0\0\x18ftypmp42" + b"garbage" * 20)
    with pytest.raises(REFUSED, match="could not be read as a video") as error:
        studio.video.upload(str(broken), request(), progress=no_progress)
    assert str(tmp_path) not in str(error.value)
    with pytest.raises(REFUSED, match="Upload a video first"):
        list(studio.video.track(page_load(studio, "nobody")))


def test_auto_annotate_tab_with_a_zip(studio, tmp_path, scene_image, yolo_detector):
    archive = tmp_path / "upload.zip"
    _, jpg = cv2.imencode(".jpg", scene_image[:, :, ::-1])
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("photos/a.jpg", jpg.tobytes())
        zf.writestr("photos/b.jpg", jpg.tobytes())
        zf.writestr("photos/c[1].jpg", jpg.tobytes())  # glob-special characters in a name
        zf.writestr("../escape.jpg", jpg.tobytes())  # zip-slip: must not be written outside
        zf.writestr("notes.txt", "not an image")
    gallery, dataset_zip, _ = studio.annotate.run(
        [str(archive)], "yolo11n.pt", "", 0.0, request(), progress=no_progress
    )
    captions = [caption.split(": ")[0] for _, caption in gallery]
    assert captions == ["upload/photos/a.jpg", "upload/photos/b.jpg", "upload/photos/c[1].jpg"]  # the user's names
    assert all(re.fullmatch(r".*: (\d+ objects?|nothing found)", caption) for _, caption in gallery)
    with zipfile.ZipFile(dataset_zip) as dataset:
        names = dataset.namelist()
    assert "data.yaml" in names and "annotations.json" in names
    assert sum(n.startswith("labels/") and n.endswith(".txt") for n in names) == 3
    assert not [n for n in names if n.startswith(".")]  # no working files of the run in the download
    assert not (tmp_path.parent / "escape.jpg").exists()
    reports: list[float] = []
    studio.annotate.run([str(archive)], "yolo11n.pt", [], 0.0, request(), progress=lambda f, desc="": reports.append(f))
    assert reports[0] == 0.0 and reports[1:] == [1 / 3, 2 / 3, 1.0]  # the bar moves with the images
    with pytest.raises(REFUSED, match="Classes must be"):
        studio.annotate.run([str(archive)], "yolo11n.pt", "cats", 0.0, request(), progress=no_progress)
    with pytest.raises(REFUSED, match=r"yolo11n\.pt does not detect unicorn"):
        studio.annotate.run([str(archive)], "yolo11n.pt", ["person", "unicorn"], 0.0, request(), progress=no_progress)
    with pytest.raises(REFUSED, match="Unknown detector"):
        studio.annotate.run([str(archive)], "evil.pt", "", 0.0, request(), progress=no_progress)


def test_named_api_segment_image(studio, image_file, scene_image):
    mask, overlay, scores = studio.api.segment_image(image_file, json.dumps([[80, 90, 1], [200, 30, 0]]), "null")
    assert mask.shape == scene_image.shape[:2] and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}
    assert overlay.shape == scene_image.shape and len(scores["scores"]) == 1
    mask, _, scores = studio.api.segment_image(image_file, "[]", json.dumps([30, 40, 150, 140]))
    assert mask.shape == scene_image.shape[:2]
    for points, box, match in [("nonsense", None, "JSON"), ("[]", "null", "at least one"), ("[[1, 2]]", None, "JSON")]:
        with pytest.raises(REFUSED, match=match):
            studio.api.segment_image(image_file, points, box)


def test_auto_annotate_tab_with_a_video(studio, tmp_path, scene_image):
    from annotate.previews import write_h264

    frames = []
    for t in range(6):
        frame = np.full((48, 64, 3), 60, np.uint8)
        frame[8:30, 4 + 4 * t : 24 + 4 * t] = 220
        frames.append(frame)
    clip = write_h264(frames, tmp_path / "street clip.mp4", fps=10)
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), scene_image[:, :, ::-1])
    reports: list[tuple[float, str]] = []
    gallery, dataset_zip, preview = studio.annotate.run(
        [str(clip), str(photo)], "yolo11n.pt", [], 0.0, request(),
        progress=lambda f, desc="": reports.append((f, desc)), keyframe_interval=3,
    )  # fmt: skip
    captions = [caption.split(": ")[0] for _, caption in gallery]
    assert captions == ["photo.jpg", "street clip/000000.jpg", "street clip/000003.jpg", "street clip/000005.jpg"]
    assert [f for f, _ in reports] == [0.0, *[i / 7 for i in range(1, 8)]]  # one step per image and per frame
    assert reports[-1][1] == "Annotated 7 of 7 images and video frames"
    import av

    with av.open(preview) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    with zipfile.ZipFile(dataset_zip) as dataset:
        names = set(dataset.namelist())
    assert {"vis.json", "tracks/street clip.txt", "previews/street clip.mp4", "labels/street clip/000005.txt"} <= names

    long_clip = write_h264(frames * 6, tmp_path / "long.mp4", fps=10)  # 36 frames; this studio allows 30
    with pytest.raises(REFUSED, match=r"long\.mp4 has 36 frames .* the limit is 30 frames"):
        studio.annotate.run([str(long_clip)], "yolo11n.pt", [], 0.0, request(), progress=no_progress)
    with pytest.raises(REFUSED, match="keyframe interval"):
        studio.annotate.run([str(clip)], "yolo11n.pt", [], 0.0, request(), progress=no_progress, keyframe_interval=0)
