"""The Image tab in headless Chromium, as a person uses it: act, look, act again (see `browser.py`)."""

from __future__ import annotations

import re

import pytest

from app.media import color_of

from .browser import CHROMIUM_MISSING

if CHROMIUM_MISSING:
    pytest.skip(
        "Chromium is not installed: apt-get install chromium && pip install playwright", allow_module_level=True
    )

from playwright.sync_api import expect

from .browser import (
    BALL,
    WAIT_MS,
    click_image_pixel,
    drag,
    in_view,
    pixel_of,
    screenshot_path,
    settled,
    upload_scene,
    warnings_shown,
)


# --------------------------------------------------------------------------------------- the first things a user does
def test_the_page_says_what_runs_and_how_to_use_it(page):
    expect(page.locator("#header")).to_contain_text("Model: SAM 2.1 tiny on cpu")
    expect(page.locator("#untrained_banner")).to_contain_text("random weights")
    expect(page.locator("#image_steps")).to_contain_text("Upload an image")


@pytest.mark.zerogpu  # also under the ZeroGPU stand-in (see conftest.pytest_generate_tests)
def test_an_example_loads_and_is_ready_to_click(page, app_url, tmp_path):
    page.locator("#image_examples .thumbnail-item").first.click()  # the example, as a new user's first move
    # its embedding: seconds on a busy CPU (a forked worker under the ZeroGPU stand-in runs on one thread)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — no prompt yet", timeout=60_000)
    scale = click_image_pixel(page, "#image_canvas", *BALL)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 1 click")
    [user] = [s for s in app_url[0].studio.sessions.live() if s.image.image is not None and s.image.name == "scene.jpg"]
    x, y, label = user.image.objects[0].points[0]
    tolerance = 1 + 1 / scale  # a click lands within one CSS pixel
    assert abs(x - BALL[0]) <= tolerance and abs(y - BALL[1]) <= tolerance and label == 1
    # three candidates, whole, with readable scores
    expect(page.locator("#image_candidates")).to_contain_text("1: score")
    expect(page.locator("#image_candidates")).to_contain_text("✓")  # the chosen one is marked
    expect(page.locator("#image_candidates img")).to_have_count(3)


@pytest.mark.zerogpu  # also under the ZeroGPU stand-in (see conftest.pytest_generate_tests)
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


def test_three_boxes_dragged_in_a_row(page):
    upload_scene(page)
    page.get_by_label("Box (drag)").check()
    expect(page.locator("#image_hint")).to_contain_text("drag a box around it")
    canvas = "#image_box_canvas canvas"
    expect(page.locator(canvas).first).to_be_visible()
    for number, (x0, x1) in enumerate(((0.15, 0.35), (0.45, 0.6), (0.7, 0.9)), start=1):
        if number > 1:
            page.locator("#image_add_object").click()
            expect(page.locator("#image_hint")).to_contain_text(f"Object {number}: drag a box around it")
        drag(page, canvas, (x0, 0.5), (x1, 0.75))  # the next drag draws, no tool to pick again
        expect(page.locator("#image_objects")).to_contain_text(f"Object {number} — box")
    assert "Drag a box" not in warnings_shown(page)  # a drag that worked is not told to drag
    expect(page.locator("#image_box_canvas button[aria-label^='Rotate']").first).to_be_hidden()


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


@pytest.mark.zerogpu  # also under the ZeroGPU stand-in (see conftest.pytest_generate_tests)
def test_names_and_exports_follow_the_upload(page):
    upload_scene(page)
    click_image_pixel(page, "#image_canvas", *BALL)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 1 click")
    page.locator("#image_class input, #image_class textarea").first.fill("ball")
    page.locator("#image_class input, #image_class textarea").first.press("Enter")
    expect(page.locator("#image_objects")).to_contain_text("Object 1 · ball")
    page.locator("#image_export").click()
    for stem, suffix in (("scene_masks", "zip"), ("scene_coco", "json"), ("scene", "txt"), ("scene_classes", "txt")):
        expect(page.locator("#image_downloads")).to_contain_text(re.compile(rf"{stem}\s*\.{suffix}"))
    page.locator("#image_clear").click()
    expect(page.locator("#image_downloads")).not_to_contain_text("scene_masks")  # Clear clears the downloads


def test_a_name_lands_on_the_object_it_was_typed_for(page):
    upload_scene(page)
    click_image_pixel(page, "#image_canvas", *BALL)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 1 click")
    page.locator("#image_add_object").click()
    expect(page.locator("#image_objects")).to_contain_text("Object 2 — no prompt yet")
    name = page.locator("#image_class input, #image_class textarea").first
    for round_ in range(3):  # typed, then straight to the other object in the list (no Enter)
        name.fill(f"crate {round_}")
        page.locator("#image_objects label").first.click()
        expect(page.locator("#image_hint")).to_contain_text("Object 1")
        expect(page.locator("#image_objects")).to_contain_text(f"Object 2 · crate {round_}")
        name.fill(f"ball {round_}")
        page.locator("#image_objects label").nth(1).click()
        expect(page.locator("#image_hint")).to_contain_text("Object 2")
        expect(page.locator("#image_objects")).to_contain_text(f"Object 1 · ball {round_}")
    page.locator("#image_add_object").click()  # a new object starts without a name
    expect(page.locator("#image_objects")).to_contain_text("Object 3 — no prompt yet")
    expect(name).to_have_value("")


def test_segment_everything_then_clicks_refine_and_undo_takes_it_back(page, monkeypatch):
    from tests.app.test_studio import ScriptedEverything  # known masks: untrained weights rarely make one

    monkeypatch.setattr("app.gpu_tasks.AutomaticMaskGenerator", ScriptedEverything)
    upload_scene(page)
    page.locator("#image_everything").click()
    expect(page.locator("#image_objects label")).to_have_count(2)
    assert in_view(page, "#image_canvas")  # the canvas is where the person was looking
    for clicks in (2, 3):  # each click refines the found object
        click_image_pixel(page, "#image_canvas", 150 + 20 * clicks, 100)
        expect(page.locator("#image_objects")).to_contain_text(f"Object 1 — {clicks} clicks")
    page.locator("#image_undo").click()
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 2 clicks")
    page.locator("#image_undo").click()
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 1 click")  # seen before the next undo
    page.locator("#image_undo").click()  # Segment everything, whole
    expect(page.locator("#image_objects label")).to_have_count(1)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — no prompt yet")
    click_image_pixel(page, "#image_canvas", *BALL)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 1 click")


def test_after_segment_everything_finds_nothing_the_next_click_works(page, monkeypatch):
    from tests.app.test_studio import ScriptedEverything

    class FindsNothing(ScriptedEverything):
        def generate(self, image, progress=None):
            return []

    monkeypatch.setattr("app.gpu_tasks.AutomaticMaskGenerator", FindsNothing)
    upload_scene(page)
    click_image_pixel(page, "#image_canvas", *BALL)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 1 click")
    page.locator("#image_everything").click()
    expect(page.get_by_text("found no object").first).to_be_visible()
    assert in_view(page, "#image_canvas")
    click_image_pixel(page, "#image_canvas", 100, 100)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — 2 clicks")


def test_the_work_surface_and_its_controls_share_one_screen(browser, app_url, tmp_path):
    """Desktop and phone: the canvas, the mode, the object's actions and the object list are together; nothing
    needs scrolling between a click and the next action."""
    for width, height, name in ((1400, 1000, "desktop"), (390, 844, "phone")):
        page = browser.new_page(viewport={"width": width, "height": height})
        page.set_default_timeout(WAIT_MS)
        page.goto(app_url[1], wait_until="load")
        upload_scene(page)
        settled(page, "#image_canvas")
        canvas = page.locator("#image_canvas").bounding_box()
        controls = [page.locator(s).bounding_box() for s in ("#image_mode", "#image_everything", "#image_objects")]
        assert canvas["y"] < controls[0]["y"] < controls[1]["y"] < controls[2]["y"]
        assert controls[2]["y"] - (canvas["y"] + canvas["height"]) < 420, name  # one thumb's scroll, not 1,100 px
        if name == "desktop":
            assert all(in_view(page, s) for s in ("#image_canvas", "#image_mode", "#image_everything"))
        assert page.locator("#image_candidates").is_hidden() and page.locator("#image_downloads").is_hidden()
        page.screenshot(path=str(screenshot_path(tmp_path, f"screenshot_image_{name}.png")), full_page=True)
        page.close()
