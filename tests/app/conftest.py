"""Fixtures of the app's tests: a studio with a page-loaded user, and a launched server."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest

from app.demo import build_demo
from app.detector_pool import DetectorPool
from app.gpu import GpuRunner
from app.settings import Limits

from .zerogpu import ForkedGpu

IN_PROCESS, ZERO_GPU = "in-process", "zerogpu"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def request(name: str = "user-a") -> SimpleNamespace:
    """What Gradio passes handlers as `gr.Request`: the tab's session hash, and its client (one per user)."""
    return SimpleNamespace(session_hash=name, client=SimpleNamespace(host=f"client-of-{name}"), headers={})


@contextmanager
def served(demo: Any) -> Iterator[str]:
    """The demo served, queue on, on a free loopback port (uploads up to 20 MB) -> its URL; closed after."""
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, max_file_size="20mb")
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()


@pytest.fixture(scope="module")
def launch(small_model, yolo_detector) -> Iterator[Callable]:
    """launch(limits) -> (demo, url): the studio served on a free loopback port, closed after the module."""
    launched = []

    def start(limits: Limits | None = None, **launch_options):
        detectors = DetectorPool(["yolo11n.pt"], loader=lambda name: yolo_detector)  # no download in tests
        demo = build_demo(small_model, limits or Limits(max_sessions=16), detectors)
        port = free_port()
        options = {"show_error": False, "max_file_size": "20mb", **launch_options}
        queue = demo.queue(max_size=demo.studio.limits.max_queue)
        queue.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, **options)
        launched.append(demo)
        return demo, f"http://127.0.0.1:{port}/"

    yield start
    for demo in launched:
        demo.close()


@pytest.fixture
def zerogpu() -> ForkedGpu:
    """The ZeroGPU stand-in (each GPU call in a forked process, everything pickled); `calls` records the calls."""
    return ForkedGpu()


def runner_for(mode: str) -> GpuRunner:
    """How GPU tasks run in a test: in-process, or in forked workers as on ZeroGPU."""
    return GpuRunner(ForkedGpu(), isolated=True) if mode == ZERO_GPU else GpuRunner()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Browser tests run in-process; those marked `zerogpu` also under the ZeroGPU stand-in, and every one of them
    with SAM2_TEST_ZEROGPU=1."""
    if "app_url" not in metafunc.fixturenames:
        return
    modes = [IN_PROCESS]
    if os.environ.get("SAM2_TEST_ZEROGPU") == "1" or metafunc.definition.get_closest_marker("zerogpu"):
        modes.append(ZERO_GPU)
    metafunc.parametrize("app_url", modes, indirect=True, scope="module")


# ------------------------------------------------------------------------------ browser tests (see browser.py)
@pytest.fixture(scope="module")
def app_url(small_model, request):
    """(demo, url): the studio served on a free loopback port for the test module, its GPU tasks run as the
    parameter says (in-process, or zerogpu: the stand-in)."""
    from ultralytics import YOLO

    detectors = DetectorPool(["yolo11n.pt"], loader=lambda name: YOLO("yolo11n.yaml"))  # untrained, no download
    mode = getattr(request, "param", IN_PROCESS)
    demo = build_demo(small_model, Limits(max_sessions=16), detectors, runner=runner_for(mode))
    with served(demo) as url:
        yield demo, url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    from .browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, app_url):
    """A fresh tab at desktop size, the studio loaded."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    from .browser import WAIT_MS

    page.set_default_timeout(WAIT_MS)
    page.goto(app_url[1], wait_until="load")
    from playwright.sync_api import expect

    expect(page.locator("#header")).to_contain_text("SAM 2.1 tiny")
    yield page
    page.close()
