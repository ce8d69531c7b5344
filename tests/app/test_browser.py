"""End to end in headless Chromium (Debian's `chromium`, driven by Playwright): what a person does in the studio, and
what they see.

`.ci/run` installs both. On a developer machine without Chromium these tests skip with the install command; in CI
(CI=true) a missing browser fails them. `SAM2_SCREENSHOTS=1` writes the README's screenshots into assets/.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from ultralytics import YOLO

from app.demo import build_demo
from app.detector_pool import DetectorPool
from app.media import color_of
from app.settings import Limits

from .conftest import free_port

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EXAMPLES = Path(__file__).resolve().parents[2] / "app" / "examples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
BALL = (352, 294)  # the ball in app/examples/scene.jpg (640x426)
VIDEO_BALL = (264, 228)  # the ball on frame 0 of app/examples/video.mp4 (480x320, 24 frames)

if CHROMIUM is None and os.environ.get("CI") != "true":
    pytest.skip(
        "Chromium is not installed: apt-get install chromium && pip install playwright", allow_module_level=True
    )
from playwright.sync_api import expect, sync_playwright  # noqa: E402


@pytest.fixture(scope="module")
def app_url(small_model):
    detectors = DetectorPool(["yolo11n.pt"], loader=lambda name: YOLO("yolo11n.yaml"))  # untrained, no download
    demo = build_demo(small_model, Limits(max_sessions=16), detectors)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, max_file_size="20mb")
    yield demo, f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh tab at desktop size, the studio loaded."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(app_url[1], wait_until="load")
    expect(page.locator("#header")).to_contain_text("SAM 2.1 tiny")
    yield page
    page.close()


def screenshot_path(tmp_path: Path, name: str) -> Path:
    return ASSETS / name if os.environ.get("SAM2_SCREENSHOTS") == "1" else tmp_path / name


def image_box(page, selector: str) -> tuple[float, float, float, float, int, int]:
    """(left, top, scale, natural width, natural height) of the picture shown in `selector` (object-fit: contain)."""
    image = page.locator(f"{selector} img").first
    expect(image).to_be_visible()
    natural_w, natural_h, left, top, width, height = image.evaluate(
        "e => { const r = e.getBoundingClientRect(); return [e.naturalWidth, e.naturalHeight, r.left, r.top, r.width,"
        " r.height]; }"
    )
    scale = min(width / natural_w, height / natural_h)
    left += (width - natural_w * scale) / 2
    top += (height - natural_h * scale) / 2
    return left, top, scale, scale, natural_w, natural_h


def settled(page, selector: str) -> None:
    """Wait until the picture in `selector` is loaded and no event is pending on the page (as a person waits for
    the previous click's result before the next: Gradio ignores a click on a picture that is being replaced)."""
    page.wait_for_function(
        """sel => { const i = document.querySelector(sel + ' img');
        return i && i.complete && i.naturalWidth > 0 && !document.querySelector('.progress-text, .eta-bar'); }""",
        arg=selector,
    )


def click_image_pixel(page, selector: str, x: int, y: int) -> float:
    """Click pixel (x, y) of the picture shown in `selector`, once the page has settled; return the display scale."""
    settled(page, selector)
    left, top, scale, _, _, _ = image_box(page, selector)
    page.mouse.click(left + (x + 0.5) * scale, top + (y + 0.5) * scale)
    return scale


def pixel_of(page, selector: str, x: int, y: int) -> tuple[int, int, int]:
    """The RGB the browser shows at pixel (x, y) of the picture in `selector`."""
    return tuple(
        page.locator(f"{selector} img").first.evaluate(
            """(e, [x, y]) => { const c = document.createElement('canvas'); c.width = e.naturalWidth;
            c.height = e.naturalHeight; const g = c.getContext('2d'); g.drawImage(e, 0, 0);
            return Array.from(g.getImageData(x, y, 1, 1).data.slice(0, 3)); }""",
            [x, y],
        )
    )


def picture_of(page, selector: str) -> str:
    return page.locator(f"{selector} img").first.get_attribute("src") or ""


def upload_scene(page) -> None:
    page.locator("#image_upload input[type=file]").set_input_files(str(EXAMPLES / "scene.jpg"))
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — no prompt yet")


def open_video_tab(page) -> None:
    page.get_by_role("tab", name="Video").click()
    page.locator("#video_upload input[type=file]").set_input_files(str(EXAMPLES / "video.mp4"))
    expect(page.locator("#video_status")).to_contain_text("24 frames")


# --------------------------------------------------------------------------------------- the first things a user does
def test_the_page_says_what_runs_and_how_to_use_it(page):
    expect(page.locator("#header")).to_contain_text("Model: SAM 2.1 tiny on cpu")
    expect(page.locator("#untrained_banner")).to_contain_text("random weights")
    expect(page.locator("#image_steps")).to_contain_text("Upload an image")


def test_an_example_loads_and_is_ready_to_click(page, app_url, tmp_path):
    page.get_by_text("scene.jpg").first.click()  # the example, as a new user's first move
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — no prompt yet")
    scale = click_image_pixel(page, "#image_canvas", *BALL)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 1 click")
    [user] = [s for s in app_url[0].studio.sessions.live() if s.image.image is not None and s.image.name == "scene.jpg"]
    x, y, label = user.image.objects[0].points[0]
    tolerance = 1 + 1 / scale  # a click lands within one CSS pixel
    assert abs(x - BALL[0]) <= tolerance and abs(y - BALL[1]) <= tolerance and label == 1
    # three candidates, whole, with readable scores
    expect(page.locator("#image_candidates")).to_contain_text("candidate 1: score")
    expect(page.locator("#image_candidates img")).to_have_count(3)


def test_clicks_are_drawn_in_their_objects_colour_and_objects_are_chosen_from_the_list(page, tmp_path):
    upload_scene(page)
    click_image_pixel(page, "#image_canvas", 100, 100)
    # as a person does: see the click's mask before the next action (a loaded server may answer a quicker UI
    # event, such as adding an object, before the model has handled the click)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 1 click")
    page.locator("#image_add_object").click()
    expect(page.locator("#image_objects")).to_contain_text("Object 2 — no prompt yet")
    click_image_pixel(page, "#image_canvas", 500, 120)
    expect(page.locator("#image_objects")).to_contain_text("Object 2 — 1 click")
    for number, (x, y) in ((1, (100, 100)), (2, (500, 120))):  # each dot has its object's colour
        expected = color_of(number - 1).as_rgb()
        shown = pixel_of(page, "#image_canvas", x - 2, y + 2)  # inside the dot, off its white + sign
        assert all(abs(a - b) <= 12 for a, b in zip(shown, expected, strict=True)), (number, shown, expected)
    swatches = page.locator("#image_objects label").evaluate_all(
        "labels => labels.map(l => getComputedStyle(l, '::before').backgroundColor)"
    )
    assert swatches == [f"rgb({r}, {g}, {b})" for r, g, b in (color_of(0).as_rgb(), color_of(1).as_rgb())]
    page.locator("#image_objects label").first.click()  # choose object 1 by clicking it in the list
    expect(page.locator("#image_hint")).to_contain_text("Object 1")
    click_image_pixel(page, "#image_canvas", 150, 150)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 2 clicks")
    settled(page, "#image_canvas")
    expect(page.locator("#image_candidates img")).to_have_count(0)  # several prompts: one mask, nothing to pick
    page.screenshot(path=str(screenshot_path(tmp_path, "screenshot_image.png")), full_page=True)


def test_undo_takes_back_the_most_recent_prompt_of_any_kind(page):
    upload_scene(page)
    click_image_pixel(page, "#image_canvas", 100, 100)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 1 click")
    page.get_by_label("Box (two clicks)").check()
    expect(page.locator("#image_hint")).to_contain_text("click one corner of its box")
    click_image_pixel(page, "#image_canvas", 80, 220)
    expect(page.locator("#image_hint")).to_contain_text("opposite corner")  # the first corner is a corner mark
    click_image_pixel(page, "#image_canvas", 210, 310)
    expect(page.locator("#image_objects")).to_contain_text("1 click, box")
    page.locator("#image_undo").click()
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 1 click, score")  # the box went, the click stays
    page.locator("#image_undo").click()
    expect(page.locator("#image_objects")).to_contain_text("no prompt yet")


def test_a_box_by_dragging(page):
    upload_scene(page)
    page.get_by_label("Box (drag)").check()
    expect(page.locator("#image_hint")).to_contain_text("drag a box around it")
    canvas = page.locator("#image_box_canvas canvas").first
    expect(canvas).to_be_visible()
    box = canvas.bounding_box()
    start = (box["x"] + box["width"] * 0.15, box["y"] + box["height"] * 0.5)
    end = (box["x"] + box["width"] * 0.35, box["y"] + box["height"] * 0.75)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move((start[0] + end[0]) / 2, (start[1] + end[1]) / 2, steps=5)
    page.mouse.move(*end, steps=5)
    page.mouse.up()
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — box")


def test_a_refusal_leaves_the_work_surface_as_it_was(page):
    upload_scene(page)
    click_image_pixel(page, "#image_canvas", *BALL)
    expect(page.locator("#image_objects")).to_contain_text("1 click")
    for number in range(2, 34):  # more objects than allowed: the 33rd is refused
        page.locator("#image_add_object").click()
        if number <= 32:
            expect(page.locator("#image_objects label")).to_have_count(number)
    expect(page.get_by_text("at most 32 objects").first).to_be_visible(timeout=60_000)
    expect(page.locator("#image_canvas img")).to_be_visible()  # the picture stays; no "Error" badge replaces it
    expect(page.locator("#image_canvas")).not_to_contain_text("Error")
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 1 click")
    page.get_by_role("tab", name="Video").click()
    page.locator("#track").click()  # no video yet
    expect(page.get_by_text("Upload a video first").first).to_be_visible()
    expect(page.locator("#video_frame")).not_to_contain_text("Error")


def test_names_and_exports_follow_the_upload(page):
    upload_scene(page)
    click_image_pixel(page, "#image_canvas", *BALL)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 1 click")
    page.locator("#image_class input, #image_class textarea").first.fill("ball")
    page.locator("#image_class input, #image_class textarea").first.press("Enter")
    expect(page.locator("#image_objects")).to_contain_text("Object 1 · ball")
    page.locator("#image_export").click()
    for stem, suffix in (("scene_masks", "zip"), ("scene_coco", "json"), ("scene", "txt")):
        expect(page.locator("#image_downloads")).to_contain_text(re.compile(rf"{stem}\s*\.{suffix}"))
    page.locator("#image_clear").click()
    expect(page.locator("#image_downloads")).not_to_contain_text("scene_masks")  # Clear clears the downloads


def test_segment_everything_makes_objects(page):
    upload_scene(page)
    page.locator("#image_everything").click()
    objects, refusal = page.locator("#image_objects label"), page.get_by_text("found no object")
    expect(objects.nth(1).or_(refusal.first)).to_be_visible(timeout=120_000)  # untrained weights may find nothing


def test_on_a_phone_the_canvas_comes_before_the_controls(browser, app_url):
    page = browser.new_page(viewport={"width": 390, "height": 844})
    page.goto(app_url[1], wait_until="load")
    canvas_top = page.locator("#image_canvas").bounding_box()["y"]
    assert (
        canvas_top < page.locator("#image_upload").bounding_box()["y"] < page.locator("#image_mode").bounding_box()["y"]
    )
    page.close()


# ----------------------------------------------------------------------------------------------------- the video tab
def test_tracking_is_watched_frame_by_frame_and_the_slider_follows(page, tmp_path):
    open_video_tab(page)
    click_image_pixel(page, "#video_frame", *VIDEO_BALL)
    expect(page.locator("#video_objects")).to_contain_text("Object 1 — prompts on frame 0")
    page.locator("#track").click()
    status = page.locator("#video_status")
    expect(status).to_contain_text(re.compile(r"Tracking forward: frame \d+ .* · \d+ of 24 frames done · about"))
    seen, shot = set(), False
    for _ in range(400):  # the frame panel changes while tracking, and no progress overlay covers it
        seen.add(picture_of(page, "#video_frame"))
        assert page.locator("#video_frame .eta-bar, #video_frame .progress-text").count() == 0
        text = status.inner_text()
        if "Tracked" in text:
            break
        if not shot and re.search(r"· (\d\d) of 24 frames done", text):  # a live frame for the README
            page.screenshot(path=str(screenshot_path(tmp_path, "screenshot_video.png")), full_page=True)
            shot = True
        time.sleep(0.1)
    expect(status).to_contain_text("Tracked: 24 of 24 frames", timeout=180_000)
    assert len(seen) > 2
    expect(page.locator("#video_timeline .tl-run")).to_have_count(1)
    # the panel shows the slider's frame: the timeline's cursor sits on it
    slider_value = page.locator("#frame_slider input[type=number]").input_value()
    assert page.locator("#video_timeline .timeline").get_attribute("data-frame") == slider_value
    page.wait_for_function(
        "() => { const v = document.querySelector('#tracked_video video'); return v && v.readyState >= 2; }",
        timeout=120_000,
    )
    # scrubbing shows that frame's masks
    number = page.locator("#frame_slider input[type=number]")
    number.fill("7")
    number.press("Enter")
    expect(page.locator("#video_timeline .timeline")).to_have_attribute("data-frame", "7")


def test_cancel_stops_at_the_next_frame_and_keeps_what_was_tracked(page, app_url, monkeypatch):
    predictor = app_url[0].studio.video.predictor
    step = predictor._propagate_frame

    def slow_step(*args, **kwargs):  # on a fast machine the 24 frames could all be tracked before Cancel arrives
        time.sleep(0.5)
        return step(*args, **kwargs)

    monkeypatch.setattr(predictor, "_propagate_frame", slow_step)
    open_video_tab(page)
    click_image_pixel(page, "#video_frame", *VIDEO_BALL)
    expect(page.locator("#video_objects")).to_contain_text("prompts on frame 0")
    page.locator("#track").click()
    expect(page.locator("#video_status")).to_contain_text("frames done")
    page.locator("#cancel").click()
    expect(page.locator("#video_status")).to_contain_text(re.compile(r"Cancelled: \d+ of 24 frames"), timeout=60_000)
    expect(page.locator("#video_objects")).to_contain_text("tracked")
    expect(page.locator("#tracked_video video")).to_be_attached()


def test_video_objects_and_undo(page):
    open_video_tab(page)
    click_image_pixel(page, "#video_frame", *VIDEO_BALL)
    expect(page.locator("#video_objects")).to_contain_text("Object 1 — prompts on frame 0")  # seen before adding
    page.locator("#video_add_object").click()
    expect(page.locator("#video_objects")).to_contain_text("Object 2 — no prompt yet")
    click_image_pixel(page, "#video_frame", 150, 200)
    expect(page.locator("#video_objects")).to_contain_text("Object 2 — prompts on frame 0")
    page.locator("#video_undo").click()  # the most recent prompt: object 2's
    expect(page.locator("#video_objects")).to_contain_text("Object 1 — prompts on frame 0")
    expect(page.locator("#video_objects")).not_to_contain_text("Object 2 — prompts")


# ---------------------------------------------------------------------------------------------- the annotate tab
def test_auto_annotate_keeps_names_and_says_what_it_found(page, tmp_path):
    page.get_by_role("tab", name="Auto-annotate").click()
    page.locator("#annotate_files input[type=file]").set_input_files(
        [str(EXAMPLES / "scene.jpg"), str(EXAMPLES / "scene_2.jpg")]
    )
    page.locator("#annotate_classes input").first.click()
    page.get_by_role("option", name="person").click()  # classes by name, from the detector's list
    page.locator("#annotate_run").click()
    gallery = page.locator("#annotate_gallery")
    expect(gallery).to_contain_text("scene.jpg: nothing found", timeout=120_000)  # person only: nothing here
    expect(gallery).to_contain_text("scene_2.jpg: nothing found")
    expect(page.locator("#annotate_dataset")).to_contain_text(re.compile(r"dataset\s*\.zip"))
    page.screenshot(path=str(screenshot_path(tmp_path, "screenshot_annotate.png")), full_page=True)


def test_auto_annotate_a_video_shows_its_frames_and_the_tracked_preview(page, tmp_path):
    page.get_by_role("tab", name="Auto-annotate").click()
    page.locator("#annotate_files input[type=file]").set_input_files([str(EXAMPLES / "video.mp4")])
    keyframes = page.locator("#annotate_keyframes input[type=number]")
    keyframes.fill("8")
    keyframes.press("Enter")
    page.locator("#annotate_run").click()
    gallery = page.locator("#annotate_gallery")
    expect(gallery).to_contain_text(re.compile(r"video/000000\.jpg: (\d+ objects?|nothing found)"), timeout=180_000)
    expect(gallery).to_contain_text("video/000023.jpg")  # the first, middle and last frame
    expect(page.locator("#annotate_preview video")).to_be_attached()
    expect(page.locator("#annotate_dataset")).to_contain_text(re.compile(r"dataset\s*\.zip"))
    page.screenshot(path=str(screenshot_path(tmp_path, "screenshot_annotate_video.png")), full_page=True)
