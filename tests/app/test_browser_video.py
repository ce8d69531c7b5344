"""The Video and Auto-annotate tabs in headless Chromium, as a person uses them: prompt, track, look, correct, track
again (see `browser.py`)."""

from __future__ import annotations

import re
import time

import pytest

from .browser import CHROMIUM_MISSING

if CHROMIUM_MISSING:
    pytest.skip(
        "Chromium is not installed: apt-get install chromium && pip install playwright", allow_module_level=True
    )

from playwright.sync_api import expect

from .browser import (  # noqa: F401  (fixtures are used by name)
    EXAMPLES,
    VIDEO_BALL,
    WAIT_MS,
    click_image_pixel,
    in_view,
    open_video_tab,
    picture_of,
    screenshot_path,
    settled,
    warnings_shown,
)


@pytest.fixture
def paced(app_url):
    """Tracking slowed to at least 0.5 s a frame, so a person's Cancel or click lands mid-run on any machine."""
    workflow = app_url[0].studio.video.workflow
    workflow.after_frame = lambda frame: time.sleep(0.5)
    yield
    workflow.after_frame = lambda frame: None


def go_to_frame(page, frame: int) -> None:
    number = page.locator("#frame_slider input[type=number]")
    number.fill(str(frame))
    number.press("Enter")
    expect(page.locator("#video_timeline .timeline")).to_have_attribute("data-frame", str(frame))


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
    expect(status).to_contain_text("Tracked: 24 of 24 frames", timeout=2 * WAIT_MS)
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


@pytest.mark.zerogpu  # also under the ZeroGPU stand-in (see conftest.pytest_generate_tests)
def test_cancel_stops_at_the_next_frame_and_keeps_what_was_tracked(page, paced):
    open_video_tab(page)
    click_image_pixel(page, "#video_frame", *VIDEO_BALL)
    expect(page.locator("#video_objects")).to_contain_text("prompts on frame 0")
    page.locator("#track").click()
    expect(page.locator("#video_status")).to_contain_text("frames done")
    page.locator("#cancel").click()
    expect(page.locator("#video_status")).to_contain_text(re.compile(r"Cancelled: \d+ of 24 frames"))
    expect(page.locator("#video_objects")).to_contain_text("tracked")
    expect(page.locator("#tracked_video video")).to_be_attached()


@pytest.mark.zerogpu  # also under the ZeroGPU stand-in (see conftest.pytest_generate_tests)
def test_a_click_after_tracking_corrects_the_frame_shown(page, paced):
    """SAM 2's loop: prompt, track, look at a later frame, correct it there, track again; after Cancel and after a
    finished tracking alike."""
    open_video_tab(page)
    click_image_pixel(page, "#video_frame", *VIDEO_BALL)
    expect(page.locator("#video_objects")).to_contain_text("prompts on frame 0")
    page.locator("#track").click()
    assert in_view(page, "#video_frame")  # pressing Track leaves the frame where the person looks
    expect(page.locator("#video_status")).to_contain_text(re.compile(r"[2-9] of 24 frames done"))
    page.locator("#cancel").click()
    expect(page.locator("#video_status")).to_contain_text("Cancelled")
    go_to_frame(page, 9)
    settled(page, "#video_frame")
    before = picture_of(page, "#video_frame")
    click_image_pixel(page, "#video_frame", 200, 150)  # a correction on an untracked frame
    expect(page.locator("#video_objects")).to_contain_text("prompts on frames 0, 9")
    expect(page.locator("#video_frame img").first).not_to_have_attribute("src", before)
    expect(page.locator("#frame_slider input[type=number]")).to_have_value("9")  # the shown frame got it
    page.locator("#track").click()  # track again, this time to the end
    expect(page.locator("#video_status")).to_contain_text("Tracked: ", timeout=2 * WAIT_MS)
    go_to_frame(page, 15)
    settled(page, "#video_frame")
    click_image_pixel(page, "#video_frame", 100, 100)  # and a correction after a finished tracking
    expect(page.locator("#video_objects")).to_contain_text("prompts on frames 0, 9, 15")


def test_a_click_while_tracking_is_refused_with_a_message(page, paced):
    open_video_tab(page)
    click_image_pixel(page, "#video_frame", *VIDEO_BALL)
    expect(page.locator("#video_objects")).to_contain_text("prompts on frame 0")
    page.locator("#track").click()
    expect(page.locator("#video_status")).to_contain_text("frames done")
    click_image_pixel(page, "#video_frame", 100, 100)
    expect(page.get_by_text("Tracking is in progress").first).to_be_visible()
    page.locator("#cancel").click()
    expect(page.locator("#video_status")).to_contain_text("Cancelled")
    expect(page.locator("#video_objects")).to_contain_text("prompts on frame 0;")  # the refused click added nothing
    click_image_pixel(page, "#video_frame", 100, 100)  # once stopped, the same click works
    expect(page.locator("#video_objects")).to_contain_text(re.compile(r"prompts on frames 0, \d+"))


def test_the_estimate_waits_for_measurements_and_then_gives_one(page, paced):
    open_video_tab(page)
    click_image_pixel(page, "#video_frame", *VIDEO_BALL)
    expect(page.locator("#video_objects")).to_contain_text("prompts on frame 0")
    page.locator("#track").click()
    status = page.locator("#video_status")
    expect(status).to_contain_text("1 of 24 frames done · estimating the time left")  # the prompted frame is free
    expect(status).to_contain_text(re.compile(r"[3-9] of 24 frames done · about \d+ (s|min) left"))
    assert "about 0 s left" not in status.inner_text()
    page.locator("#cancel").click()
    expect(status).to_contain_text("Cancelled")


def test_video_objects_are_named_for_the_exports(page):
    open_video_tab(page)
    click_image_pixel(page, "#video_frame", *VIDEO_BALL)
    expect(page.locator("#video_objects")).to_contain_text("Object 1 — prompts on frame 0")
    name = page.locator("#video_class input, #video_class textarea").first
    name.fill("ball")
    name.press("Enter")
    expect(page.locator("#video_objects")).to_contain_text("Object 1 · ball — prompts on frame 0")


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
@pytest.mark.zerogpu  # also under the ZeroGPU stand-in (see conftest.pytest_generate_tests)
def test_auto_annotate_keeps_names_and_says_what_it_found(page, tmp_path):
    page.get_by_role("tab", name="Auto-annotate").click()
    page.locator("#annotate_files input[type=file]").set_input_files(
        [str(EXAMPLES / "scene.jpg"), str(EXAMPLES / "scene_2.jpg")]
    )
    page.locator("#annotate_classes input").first.click()
    page.get_by_role("option", name="person").click()  # classes by name, from the detector's list
    page.locator("#annotate_run").click()
    gallery = page.locator("#annotate_gallery")
    expect(gallery).to_contain_text("scene.jpg: nothing found")  # person only: nothing here
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
    expect(gallery).to_contain_text(re.compile(r"video/000000\.jpg: (\d+ objects?|nothing found)"), timeout=2 * WAIT_MS)
    expect(gallery).to_contain_text("video/000023.jpg")  # the first, middle and last frame
    expect(page.locator("#annotate_preview video")).to_be_attached()
    expect(page.locator("#annotate_dataset")).to_contain_text(re.compile(r"video_dataset\s*\.zip"))  # its name
    page.screenshot(path=str(screenshot_path(tmp_path, "screenshot_annotate_video.png")), full_page=True)


def test_the_frame_slider_and_track_share_one_screen(browser, app_url, tmp_path):
    """Desktop and phone: the frame, the slider, the mode, Track and Cancel come together, before the upload and the
    outputs; the empty output panels take no room."""
    for width, height, name in ((1400, 1000, "desktop"), (390, 844, "phone")):
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(WAIT_MS)
        page.goto(app_url[1], wait_until="load")
        open_video_tab(page)
        settled(page, "#video_frame")
        boxes = [page.locator(s).bounding_box() for s in ("#video_frame", "#frame_slider", "#video_mode", "#track")]
        assert [b["y"] for b in boxes] == sorted(b["y"] for b in boxes)
        frame_bottom = boxes[0]["y"] + boxes[0]["height"]
        assert boxes[3]["y"] - frame_bottom < 250, name  # Track sits just under the frame (it was 2,000 px below)
        if name == "desktop":
            assert all(in_view(page, s) for s in ("#video_frame", "#frame_slider", "#track", "#cancel"))
        assert page.locator("#tracked_video").is_hidden() and page.locator("#video_files").is_hidden()
        page.screenshot(path=str(screenshot_path(tmp_path, f"screenshot_video_{name}.png")), full_page=True)
        page.close()
