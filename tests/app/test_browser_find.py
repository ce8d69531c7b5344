"""Find in the Image tab in headless Chromium: names -> found objects, the confidence slider hiding and showing them
live, Find similar on a boxed example; in the Video tab, a found object tracked; in the Auto-annotate tab, typed
names as the dataset's classes (untrained YOLOE with test-made text embeddings; see `browser.py`)."""

from __future__ import annotations

import re

import pytest

from .browser import CHROMIUM_MISSING

if CHROMIUM_MISSING:
    pytest.skip(
        "Chromium is not installed: apt-get install chromium && pip install playwright", allow_module_level=True
    )

from playwright.sync_api import expect

from app import examples_dir
from app.demo import build_demo
from app.detector_pool import DetectorPool
from app.settings import Limits

from .browser import click_image_pixel, open_video_tab, screenshot_path, upload_scene
from .conftest import IN_PROCESS, free_port, runner_for
from .test_find import embeddings_file, untrained
from .test_find_api import dataset_names

OBJECTS = "#image_objects label"


@pytest.fixture(scope="module")
def app_url(small_model, request, tmp_path_factory):
    """(demo, url): the studio with an untrained YOLOE for Find (the text embeddings of "person" and "red car" from a
    file, as a server offline has them), at most 4 objects an image and 1 found on a video's frame."""
    from ultralytics import YOLO

    npz = embeddings_file(tmp_path_factory.mktemp("browser_find") / "names.npz", ["person", "red car"])
    yoloe = untrained("yoloe-11s-seg.pt")
    finders = DetectorPool(["yoloe-11s-seg.pt"], loader=lambda name: yoloe, text_embeddings=npz)
    detectors = DetectorPool(["yolo11n.pt"], loader=lambda name: YOLO("yolo11n.yaml"))
    runner = runner_for(getattr(request, "param", IN_PROCESS))
    limits = Limits(max_sessions=8, max_objects=4, max_tracks=1)
    demo = build_demo(small_model, limits, detectors, runner=runner, finders=finders)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, max_file_size="20mb")
    yield demo, f"http://127.0.0.1:{port}/"
    demo.close()


def set_confidence(page, value: float) -> None:
    box = page.locator("#image_find_confidence input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def test_find_by_name_then_the_slider_then_find_similar(page, tmp_path):
    upload_scene(page)
    set_confidence(page, 0)  # untrained YOLOE scores everything ~0.0002: show all it finds
    page.locator("#image_find_text textarea").fill("person, red car")
    page.locator("#image_find").click()
    expect(page.locator(OBJECTS)).to_have_count(4)  # the object limit of this server
    for label in page.locator(OBJECTS).all_inner_texts():
        assert ("· person" in label or "· red car" in label) and "found 0.00" in label, label
    page.screenshot(path=str(screenshot_path(tmp_path, "screenshot_find.png")), full_page=True)

    set_confidence(page, 0.5)  # every found object is below: hidden, no model call
    expect(page.locator(OBJECTS)).to_have_count(1)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — no prompt yet")
    set_confidence(page, 0)
    expect(page.locator(OBJECTS)).to_have_count(4)

    page.locator("#image_clear").click()
    expect(page.locator(OBJECTS)).to_have_count(1)
    page.locator("#image_mode label", has_text="Box (two clicks)").click()
    click_image_pixel(page, "#image_canvas", 300, 240)
    click_image_pixel(page, "#image_canvas", 400, 340)
    expect(page.locator("#image_objects")).to_contain_text("Object 1 — box")
    page.locator("#image_find_similar").click()
    expect(page.locator(OBJECTS)).to_have_count(4)
    labels = page.locator(OBJECTS).all_inner_texts()
    assert "Object 1 — box" in labels[0] and all("· similar" in label for label in labels[1:]), labels


def test_an_object_found_on_a_video_frame_is_tracked(page, tmp_path):
    open_video_tab(page)
    page.locator("#video_find_confidence input").fill("0")
    page.locator("#video_find_text textarea").fill("person")
    page.locator("#video_find").click()
    expect(page.locator("#video_objects")).to_contain_text(re.compile(r"person.*prompts on frame 0"))
    page.screenshot(path=str(screenshot_path(tmp_path, "screenshot_find_video.png")), full_page=True)
    page.locator("#track").click()
    expect(page.locator("#video_status")).to_contain_text(re.compile(r"[2-9] of 24 frames done"))
    page.locator("#cancel").click()
    expect(page.locator("#video_status")).to_contain_text("Cancelled")
    expect(page.locator("#video_objects")).to_contain_text("tracked")


def test_auto_annotate_with_typed_names_names_the_dataset_classes_after_them(page, tmp_path):
    """An open-vocabulary detector in the Auto-annotate tab: the class picker takes typed names, and the dataset's
    classes are those names, in the order typed (read from the zip the page offers)."""
    page.get_by_role("tab", name="Auto-annotate").click()
    page.locator("#annotate_files input[type=file]").set_input_files([str(examples_dir() / "scene.jpg")])
    page.locator("#annotate_detector input").first.click()
    page.get_by_role("option", name="yoloe-11s-seg.pt").click()
    names = page.locator("#annotate_classes input").first
    names.click()  # the picker's closed-set choices are gone once the detector's change has arrived: names typed now
    expect(page.get_by_role("option", name="bicycle", exact=True)).to_have_count(0)
    for name in ("red car", "person"):
        names.fill(name)
        names.press("Enter")
    expect(page.locator("#annotate_classes")).to_contain_text("red car")
    expect(page.locator("#annotate_classes")).to_contain_text("person")
    conf = page.locator("#annotate_conf input[type=number]")
    conf.fill("0")  # untrained YOLOE scores everything ~0.0002
    conf.press("Enter")
    page.locator("#annotate_run").click()
    expect(page.locator("#annotate_gallery")).to_contain_text(re.compile(r"scene\.jpg: \d+ objects?"))
    page.screenshot(path=str(screenshot_path(tmp_path, "screenshot_find_annotate.png")), full_page=True)
    link = page.locator("#annotate_dataset a").first
    expect(link).to_have_attribute("href", re.compile(r"scene_dataset\.zip"))
    archive = tmp_path / "dataset.zip"
    archive.write_bytes(page.request.get(link.get_attribute("href")).body())
    assert dataset_names(str(archive)) == {0: "red car", 1: "person"}
