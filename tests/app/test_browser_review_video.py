"""The Review tab's videos in headless Chromium, as a person uses them (see `browser.py`): the studio started with
`--dataset` on an `auto_annotate` run over a clip, then open, choose the video, move to a frame with the slider,
correct a track there with a click and re-propagate it to the end, delete another track from that frame on (the
video list's caption then says it ends early), save; the saved files are read back by the dataset reader."""

from __future__ import annotations

import re

import pytest

from .browser import CHROMIUM_MISSING

if CHROMIUM_MISSING:
    pytest.skip(
        "Chromium is not installed: apt-get install chromium && pip install playwright", allow_module_level=True
    )

from playwright.sync_api import expect

from annotate import auto_annotate
from annotate.dataset import open_dataset
from annotate.previews import write_h264
from app.demo import build_demo
from app.review_filters import DATASET_ORDER, NEEDS_A_LOOK
from app.settings import parse_settings

from ..annotate.clips import ColourDetector, clip_frames, use_colour_tracker
from .browser import WAIT_MS, click_image_pixel, screenshot_path, settled
from .conftest import served
from .test_browser_review import choose

NORTH, RED, GREEN = "clips/north", 1, 2  # north: 7 frames, red tracked from frame 0, green from frame 2
RED_ON_FRAME_4 = (28, 22)  # the red square's centre on frame 4 (it moves 3 pixels right a frame)


@pytest.fixture(scope="module")
def video_dataset_app(tmp_path_factory, small_model):
    """(url, dataset folder): the studio started as `sam2-studio --dataset FOLDER` on an auto_annotate run of one
    7-frame clip, its squares found by colour and tracked by our tracker."""
    data = tmp_path_factory.mktemp("review_video_browser") / "data"
    write_h264(clip_frames(7, green_from=2), data / "clips" / "north.mp4", fps=10)
    folder = data.parent / "dataset"
    with pytest.MonkeyPatch.context() as patch:
        use_colour_tracker(patch)
        auto_annotate(data, det_model=ColourDetector(), sam_model=small_model, output_dir=folder,
                      formats=["yolo", "coco", "masks"], keyframe_interval=2, progress=False)  # fmt: skip
    settings = parse_settings(["--dataset", str(folder)], environ={})
    with served(build_demo(small_model, settings.limits, dataset=settings.dataset)) as url:
        yield url, folder


def test_review_a_video_repropagate_a_corrected_track_cut_another_and_save(browser, video_dataset_app, tmp_path):
    url, folder = video_dataset_app
    before = open_dataset(folder)
    keys = before.video(NORTH).frame_keys
    assert [sorted(a.track_id for a in before.instances(k)) for k in keys] == [[RED]] * 2 + [[RED, GREEN]] * 5
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(WAIT_MS)
    page.goto(url, wait_until="load")
    page.get_by_role("tab", name="Review").click()
    page.locator("#review_open").click()
    status, objects = page.locator("#review_status"), page.locator("#review_objects")
    expect(status).to_contain_text("listed")

    choose(page, "#review_video", f"{NORTH} · 7 frames · 2 tracks · to review")
    expect(page.locator("#review_tracks")).to_contain_text("green")
    number = page.locator("#review_frame input[type=number]")
    number.fill("4")
    number.press("Enter")
    expect(objects).to_contain_text("Track 2")
    page.locator("#review_objects label").first.click()  # track 1: clicks on the frame now correct it
    expect(objects).to_contain_text("Track 1 · red — as tracked")
    page.evaluate("window.scrollTo(0, 0)")  # the frame is at the top; the video section below it
    click_image_pixel(page, "#review_canvas", *RED_ON_FRAME_4)
    expect(objects).to_contain_text("Track 1 · red — corrected")
    page.locator("#review_propagate").click()  # forward, to the end: the default range
    expect(status).to_contain_text("Re-propagated:")
    expect(objects).to_contain_text("Track 1 · red — as tracked")  # the frame shown again from the dataset
    choose(page, "#review_track_a", "2")
    page.locator("#review_cut").click()
    expect(status).to_contain_text("Track 2 deleted from this frame on (3 frames)")
    expect(objects).not_to_contain_text("Track 2")
    settled(page, "#review_canvas")
    page.screenshot(path=str(screenshot_path(tmp_path, "screenshot_review_video.png")), full_page=True)
    listed = page.locator("#review_video input")  # the open video stays chosen: its caption is the list's
    expect(listed).to_have_value(re.compile(r"· edited · track 2 ends early \(frame 3\)"))  # the cut redrew it
    choose(page, "#review_video_order", DATASET_ORDER)
    expect(listed).to_have_value(f"{NORTH} · 7 frames · 2 tracks · edited")
    choose(page, "#review_video_order", NEEDS_A_LOOK)  # green now vanishes mid-picture after frame 3
    expect(listed).to_have_value(re.compile(r"· edited · track 2 ends early \(frame 3\)"))
    page.locator("#review_save").click()
    expect(status).to_contain_text("Saved")
    page.close()

    saved = open_dataset(folder)
    tracks = [[a.track_id for a in saved.instances(k)] for k in keys]
    assert [[t for t in f if t == GREEN] for f in tracks] == [[]] * 2 + [[GREEN]] * 2 + [[]] * 3  # gone from 4 on
    red = [[a.mask.tolist() for a in saved.instances(k) if a.track_id == RED] for k in keys]
    red_before = [[a.mask.tolist() for a in before.instances(k) if a.track_id == RED] for k in keys]
    assert red[:4] == red_before[:4]  # before the corrected frame: untouched
    assert red[4:] != red_before[4:]  # from it on: SAM 2's re-propagation (untrained: not the square)
