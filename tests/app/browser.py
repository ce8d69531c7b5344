"""What the browser tests share (their fixtures, `app_url`, `browser` and `page`, are in conftest.py): headless
Chromium (Debian's `chromium`, driven by Playwright) and the moves of a person: click a pixel of a picture they see,
wait for the result before the next action.

`.ci/run` installs both. On a developer machine without Chromium the browser tests skip with the install command; in
CI (CI=true) a missing browser fails them. `SAM2_SCREENSHOTS=1` writes the README's screenshots into assets/.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ASSETS = Path(__file__).resolve().parents[2] / "assets"
EXAMPLES = Path(__file__).resolve().parents[2] / "app" / "examples"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip
BALL = (352, 294)  # the ball in app/examples/scene.jpg (640x426)
VIDEO_BALL = (264, 228)  # the ball on frame 0 of app/examples/video.mp4 (480x320, 24 frames)

CHROMIUM_MISSING = CHROMIUM is None and os.environ.get("CI") != "true"
SKIP_REASON = "Chromium is not installed: apt-get install chromium && pip install playwright"
# How long a step may take before a test gives up: generous, because each waits for the model on a CPU that CI or
# a laptop may be sharing (Playwright's own default for `expect` is 5 s, which a busy machine overruns).
WAIT_MS = 300_000
if not CHROMIUM_MISSING:
    from playwright.sync_api import expect

    expect.set_options(timeout=WAIT_MS)


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


def idle(page) -> None:
    """Wait until no event is pending on the page (no progress shown), as a person waits before the next move."""
    page.wait_for_function("() => !document.querySelector('.progress-text, .eta-bar')")


def click_image_pixel(page, selector: str, x: int, y: int) -> float:
    """Click pixel (x, y) of the picture shown in `selector`, once the page has settled; return the display scale.

    The pixel must be where the person looks (inside the window, without scrolling): a click computed for a point
    off screen would land nowhere and look like a dead canvas."""
    settled(page, selector)
    left, top, scale, _, _, _ = image_box(page, selector)
    point = (left + (x + 0.5) * scale, top + (y + 0.5) * scale)
    viewport = page.viewport_size
    assert 0 <= point[0] < viewport["width"] and 0 <= point[1] < viewport["height"], (
        f"pixel ({x}, {y}) of {selector} is off screen at {point}: the page scrolled away from the work surface"
    )
    page.mouse.click(*point)
    return scale


def in_view(page, selector: str) -> bool:
    """Whether the element is wholly inside the window as it is now (no scrolling)."""
    return page.locator(selector).first.evaluate(
        "e => { const r = e.getBoundingClientRect(); return r.top >= 0 && r.left >= 0 && r.bottom <= innerHeight"
        " && r.right <= innerWidth; }"
    )


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


def drag(page, selector: str, start: tuple[float, float], end: tuple[float, float]) -> None:
    """Press at `start`, move, release at `end`: fractions (x, y) of the element's box."""
    box = page.locator(selector).first.bounding_box()
    (x0, y0), (x1, y1) = ((box["x"] + box["width"] * fx, box["y"] + box["height"] * fy) for fx, fy in (start, end))
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=5)
    page.mouse.move(x1, y1, steps=5)
    page.mouse.up()


def warnings_shown(page) -> str:
    """The text of the toasts on the page now."""
    toasts = page.locator(".toast-body, [data-testid='toast-body']")
    return " | ".join(toasts.all_inner_texts())
