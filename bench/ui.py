"""How long a person waits in the studio: from an action in the browser (headless Chromium) to its visible result.

The studio runs SAM 2.1 tiny (untrained weights of the real size: the same work as a trained model) on this machine;
Playwright performs each action as a user does and waits for what the user would see (a timer stopped on what the
browser shows needs no GPU synchronisation: the result left the GPU before it was drawn). Prints a Markdown table of
median seconds over `--repeats` runs, and on CUDA the peak GPU memory of the whole run.

    python bench/ui.py                 # needs Debian's chromium and playwright (requirements-dev.txt)
    python bench/ui.py --repeats 5 --device cuda
"""

from __future__ import annotations

import argparse
import re
import shutil
import socket
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

EXAMPLES = Path(__file__).resolve().parents[1] / "app" / "examples"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def click_pixel(page, selector: str, x: int, y: int) -> None:
    """Click pixel (x, y) of the picture in `selector` once it is loaded and nothing is pending."""
    page.wait_for_function(
        """sel => { const i = document.querySelector(sel + ' img');
        return i && i.complete && i.naturalWidth > 0 && !document.querySelector('.progress-text, .eta-bar'); }""",
        arg=selector,
    )
    natural_w, natural_h, left, top, width, height = page.locator(f"{selector} img").first.evaluate(
        "e => { const r = e.getBoundingClientRect(); return [e.naturalWidth, e.naturalHeight, r.left, r.top, r.width,"
        " r.height]; }"
    )
    scale = min(width / natural_w, height / natural_h)
    left, top = left + (width - natural_w * scale) / 2, top + (height - natural_h * scale) / 2
    page.mouse.click(left + (x + 0.5) * scale, top + (y + 0.5) * scale)


def timed(action: Callable[[], None], done: Callable[[], None]) -> float:
    start = time.perf_counter()
    action()
    done()
    return time.perf_counter() - start


def measure(page, url: str) -> dict[str, float]:
    """One pass over every action; seconds each."""
    from playwright.sync_api import expect

    expect.set_options(timeout=600_000)  # a loaded machine is slow, not broken: the table says how slow
    page.goto(url, wait_until="load")
    objects = page.locator("#image_objects")
    times = {
        "upload an image (embedding included)": timed(
            lambda: page.locator("#image_upload input[type=file]").set_input_files(str(EXAMPLES / "scene.jpg")),
            lambda: expect(objects).to_contain_text("Object 1 — no prompt yet"),
        )
    }
    times["click: mask and three candidates shown"] = timed(
        lambda: click_pixel(page, "#image_canvas", 352, 294),
        lambda: expect(page.locator("#image_candidates img")).to_have_count(3),
    )
    src = page.locator("#image_canvas img").first.get_attribute("src")
    times["pick a candidate"] = timed(
        lambda: page.locator("#image_candidates img").nth(2).click(),
        lambda: expect(page.locator("#image_canvas img").first).not_to_have_attribute("src", src or ""),
    )
    page.locator("#image_add_object").click()
    expect(objects).to_contain_text("Object 2 — no prompt yet")
    page.get_by_label("Box (two clicks)").check()
    expect(page.locator("#image_hint")).to_contain_text("click one corner")
    click_pixel(page, "#image_canvas", 96, 224)
    expect(page.locator("#image_hint")).to_contain_text("opposite corner")
    times["box (second corner to mask)"] = timed(
        lambda: click_pixel(page, "#image_canvas", 206, 309),
        lambda: expect(objects).to_contain_text("Object 2 — box"),
    )
    page.get_by_label("Positive click").check()
    page.locator("#image_everything").click()
    found = page.locator("#image_objects label").nth(2).or_(page.get_by_text("found no object").first)
    expect(found).to_be_visible(timeout=600_000)  # untrained weights may find nothing: the next click is what counts
    src = page.locator("#image_canvas img").first.get_attribute("src")
    times["refine after Segment everything (click to mask)"] = timed(
        lambda: click_pixel(page, "#image_canvas", 500, 120),
        lambda: expect(page.locator("#image_canvas img").first).not_to_have_attribute("src", src or ""),
    )
    page.get_by_role("tab", name="Video").click()
    times["upload a video (24 frames, 480x320)"] = timed(
        lambda: page.locator("#video_upload input[type=file]").set_input_files(str(EXAMPLES / "video.mp4")),
        lambda: expect(page.locator("#video_status")).to_contain_text("24 frames"),
    )
    times["click on a frame"] = timed(
        lambda: click_pixel(page, "#video_frame", 264, 228),
        lambda: expect(page.locator("#video_objects")).to_contain_text("prompts on frame 0"),
    )
    number = page.locator("#frame_slider input[type=number]")
    times["scrub to another frame"] = timed(
        lambda: (number.fill("12"), number.press("Enter")),
        lambda: expect(page.locator("#video_timeline .timeline")).to_have_attribute("data-frame", "12"),
    )
    status = page.locator("#video_status")
    times["track: first tracked frame shown (frame 1)"] = timed(
        lambda: page.locator("#track").click(),
        lambda: expect(status).to_contain_text(re.compile(r"· ([2-9]|\d\d) of 24 frames done"), timeout=300_000),
    )
    expect(status).to_contain_text(re.compile(r"· [3-9] of 24 frames done|· \d\d of 24"), timeout=300_000)
    times["cancel: tracking stopped, files ready"] = timed(
        lambda: page.locator("#cancel").click(),
        lambda: expect(status).to_contain_text("Cancelled", timeout=300_000),
    )
    number.fill("16")
    number.press("Enter")
    expect(page.locator("#video_timeline .timeline")).to_have_attribute("data-frame", "16")
    times["correction after Track (click on frame 16, not yet seen by the model)"] = timed(
        lambda: click_pixel(page, "#video_frame", 200, 150),
        lambda: expect(page.locator("#video_objects")).to_contain_text("prompts on frames 0, 16"),
    )
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("bench/ui.py needs Chromium: apt-get install chromium (and pip install playwright)")
    import torch
    from playwright.sync_api import sync_playwright

    from app.demo import build_demo
    from bench.isolated import format_mb, gpu_peak_mb, report_gpu_peak, reset_gpu_peak, resolve_device
    from sam2_model import load_model

    device = resolve_device(args.device)
    reset_gpu_peak(device)
    model = load_model("sam2.1_t.pt", device, untrained=True)
    demo = build_demo(model)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    runs: list[dict[str, float]] = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            for _ in range(args.repeats):
                model.embedding_cache.clear()  # every run embeds its image anew, as a new user's upload would
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.set_default_timeout(120_000)
                runs.append(measure(page, f"http://127.0.0.1:{port}/"))
                page.close()
            browser.close()
    finally:
        demo.close()
    peak = gpu_peak_mb(device)
    report_gpu_peak([peak])
    on_gpu = f", peak GPU memory {format_mb(peak)} MB over the whole run" if peak is not None else ""
    print(f"\nSAM 2.1 tiny on {model.device}{on_gpu}, torch {torch.__version__}, {torch.get_num_threads()} CPU "
          f"threads, headless Chromium, median of {args.repeats}\n")  # fmt: skip
    print("| action | seconds until the user sees the result |")
    print("|---|---|")
    for action in runs[0]:
        print(f"| {action} | {statistics.median(run[action] for run in runs):.2f} |")


if __name__ == "__main__":
    main()
