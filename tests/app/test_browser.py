"""End to end in headless Chromium (Debian's `chromium`, driven by Playwright): what a person does in the studio.

`.ci/run` installs both. On a developer machine without Chromium these tests skip with the install command; in CI
(CI=true) a missing browser fails them. `SAM2_SCREENSHOTS=1` writes the README's screenshots into assets/.
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

import pytest

from app.demo import build_demo

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EXAMPLES = Path(__file__).resolve().parents[2] / "app" / "examples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip

if CHROMIUM is None and os.environ.get("CI") != "true":
    pytest.skip(
        "Chromium is not installed: apt-get install chromium && pip install playwright", allow_module_level=True
    )
from playwright.sync_api import expect, sync_playwright  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(small_model):
    demo = build_demo(small_model)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, max_file_size="20mb")
    yield demo, f"http://127.0.0.1:{port}/"
    demo.close()


@pytest.fixture(scope="module")
def page(app_url):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        yield page
        browser.close()


def screenshot_path(tmp_path: Path, name: str) -> Path:
    return ASSETS / name if os.environ.get("SAM2_SCREENSHOTS") == "1" else tmp_path / name


def click_image_pixel(page, selector: str, x: int, y: int) -> float:
    """Click pixel (x, y) of the image shown in `selector` (object-fit: contain); return the display scale."""
    image = page.locator(f"{selector} img").first
    expect(image).to_be_visible()
    natural_w, natural_h, left, top, width, height = image.evaluate(
        "e => { const r = e.getBoundingClientRect(); return [e.naturalWidth, e.naturalHeight, r.left, r.top, r.width,"
        " r.height]; }"
    )
    scale = min(width / natural_w, height / natural_h)
    offset_x, offset_y = (width - natural_w * scale) / 2, (height - natural_h * scale) / 2
    page.mouse.click(left + offset_x + (x + 0.5) * scale, top + offset_y + (y + 0.5) * scale)
    return scale


def test_image_click_reaches_the_server_and_draws_the_overlay(app_url, page, tmp_path):
    demo, url = app_url
    page.goto(url, wait_until="load")
    page.locator("#image_upload input[type=file]").set_input_files(str(EXAMPLES / "scene.jpg"))
    expect(page.locator("#image_canvas img")).to_be_visible()
    expect(page.locator("#image_objects")).to_contain_text("0 click(s)")
    target = (350, 290)  # the ball in app/examples/scene.jpg (640x426)
    scale = click_image_pixel(page, "#image_canvas", *target)
    expect(page.locator("#image_objects")).to_contain_text("1 click(s)")
    sessions = demo.studio.sessions.live()
    assert len(sessions) == 1
    x, y, label = sessions[0].image.objects[0].points[0]
    tolerance = 1 + 1 / scale  # a click lands within one CSS pixel
    assert abs(x - target[0]) <= tolerance and abs(y - target[1]) <= tolerance and label == 1
    page.screenshot(path=str(screenshot_path(tmp_path, "screenshot_image.png")), full_page=True)


def test_video_click_track_and_the_result_plays(app_url, page, tmp_path):
    _, url = app_url
    page.goto(url, wait_until="load")
    page.get_by_role("tab", name="Video").click()
    page.locator("#video_upload input[type=file]").set_input_files(str(EXAMPLES / "video.mp4"))
    expect(page.locator("#video_frame img")).to_be_visible()
    expect(page.locator("#video_status")).to_contain_text("24 frames")
    click_image_pixel(page, "#video_frame", 250, 225)  # the ball on frame 0 of app/examples/video.mp4 (480x320)
    expect(page.locator("#video_status")).to_contain_text("object 1: frames [0]")
    page.locator("#track").click()
    video = page.locator("#tracked_video video")
    expect(video).to_be_attached(timeout=180_000)
    page.wait_for_function(
        "() => { const v = document.querySelector('#tracked_video video'); return v && v.readyState === 4; }",
        timeout=120_000,
    )
    page.screenshot(path=str(screenshot_path(tmp_path, "screenshot_video.png")), full_page=True)


def test_auto_annotate_tab_renders(app_url, page, tmp_path):
    _, url = app_url
    page.goto(url, wait_until="load")
    page.get_by_role("tab", name="Auto-annotate").click()
    expect(page.locator("#annotate_files")).to_be_visible()
    page.screenshot(path=str(screenshot_path(tmp_path, "screenshot_annotate.png")), full_page=True)
