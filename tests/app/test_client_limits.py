"""One client against everyone else (issue #22): forged page loads evict no one else's session, one client cannot
take every queue slot, and a client's address is what it connects from unless a trusted proxy says otherwise.

The attacks come from outside, over HTTP, from one loopback address (127.0.0.2) while the user connects from
another (127.0.0.1); Linux routes all of 127.0.0.0/8 to loopback.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from app.clients import UNKNOWN, TrustedProxies, client_address
from app.sessions import SessionLimitError, SessionRegistry
from app.settings import Limits, parse_settings

USER, ATTACKER, BYSTANDER = "127.0.0.1", "127.0.0.2", "127.0.0.3"


# ------------------------------------------------------------------------------------------------- HTTP helpers
def from_address(url: str, address: str) -> httpx.Client:
    """An HTTP client of the app that connects from `address` (a loopback address)."""
    return httpx.Client(base_url=url, timeout=120, transport=httpx.HTTPTransport(local_address=address))


def fn_index(demo: Any, name: str, input_id: str | None = None) -> int:
    """The index of the event whose handler is `name` (and, given `input_id`, with that input component)."""
    for index, fn in demo.fns.items():
        if fn.name == name and (input_id is None or any(b.elem_id == input_id for b in fn.inputs)):
            return index
    raise LookupError(name)


def join(client: httpx.Client, fn: int, session: str, data: list[Any], **headers: str) -> httpx.Response:
    body = {"data": data, "fn_index": fn, "session_hash": session, "event_data": None}
    return client.post("gradio_api/queue/join", json=body, headers=headers)


def messages(client: httpx.Client, session: str) -> list[dict[str, Any]]:
    """The session's queue messages until its event has completed."""
    found = []
    with client.stream("GET", "gradio_api/queue/data", params={"session_hash": session}) as events:
        for line in events.iter_lines():
            if line.startswith("data:"):
                found.append(json.loads(line[len("data:") :]))
                if found[-1]["msg"] == "process_completed":
                    break
    return found


def upload(client: httpx.Client, path: Path) -> dict[str, Any]:
    [server_path] = client.post("gradio_api/upload", files={"files": (path.name, path.read_bytes())}).json()
    return {"path": server_path, "orig_name": path.name, "meta": {"_type": "gradio.FileData"}}


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 120.0) -> None:
    """Poll `condition` (loopback state, cheap) until it holds; fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still waiting after {seconds:.0f} s for {what}")
        time.sleep(0.05)


def in_flight(demo: Any, client: str) -> tuple[int, int]:
    return demo.client_gate.in_flight(demo._queue, client)


@contextlib.contextmanager
def held_model(demo: Any) -> Iterator[tuple[threading.Event, threading.Semaphore]]:
    """Model requests of the named API wait, once started, until the yielded event is set (released on exit);
    the semaphore is released as each starts."""
    release, started = threading.Event(), threading.Semaphore(0)
    open_image = demo.studio.open_image

    def held(path: str | None) -> Any:
        started.release()
        release.wait()
        return open_image(path)

    demo.studio.open_image = held
    try:
        yield release, started
    finally:
        release.set()
        demo.studio.open_image = open_image


@pytest.fixture(scope="module")
def scene_png(tmp_path_factory, scene_image) -> Path:
    path = tmp_path_factory.mktemp("clients") / "scene.png"
    cv2.imwrite(str(path), scene_image[:, :, ::-1])
    return path


# --------------------------------------------------------------------------------- 1. forged page loads evict
def test_forged_page_loads_from_one_address_evict_no_one_elses_session(launch, scene_png):
    """Once, 12 page loads with invented session hashes (no browser) evicted a user thinking between clicks."""
    demo, url = launch(Limits(max_sessions=3))
    load, clear = fn_index(demo, "open_session"), fn_index(demo, "clear", None)
    image_upload = fn_index(demo, "upload", "image_upload")
    with from_address(url, USER) as user, from_address(url, BYSTANDER) as bystander:
        assert join(user, load, "user", []).status_code == 200 and messages(user, "user")
        assert join(user, image_upload, "user", [upload(user, scene_png)]).status_code == 200
        assert all(m.get("success", True) for m in messages(user, "user"))  # the user's work: an embedded image
        assert join(bystander, load, "bystander", []).status_code == 200 and messages(bystander, "bystander")

    with from_address(url, ATTACKER) as attacker:
        for number in range(12):  # each with a forged X-Forwarded-For too: not trusted by default
            forged = {"X-Forwarded-For": f"198.51.100.{number}"}
            assert join(attacker, load, f"forged-{number}", [], **forged).status_code == 200
    wait_until(lambda: in_flight(demo, ATTACKER) == (0, 0), "the forged page loads to be handled")

    held = Counter(session.client for session in demo.studio.sessions.live())
    assert held == {USER: 1, BYSTANDER: 1, ATTACKER: 1}  # the attacker only ever replaced its own
    with from_address(url, USER) as user:
        assert join(user, clear, "user", []).status_code == 200
        answer = json.dumps(messages(user, "user"))
    assert "reload the page" not in answer and "expired" not in answer
    assert demo.studio.sessions.get("user").image.image is not None  # the upload is still there


# ------------------------------------------------------------------------------------- 2. every queue slot
def test_one_client_cannot_take_every_queue_slot(launch, scene_png):
    """Measured before: with SAM2_MAX_QUEUE=2, one client's 8 simultaneous calls took every slot and the next
    visitor got "Queue is full"."""
    demo, url = launch(Limits(max_queue=2))
    segment = fn_index(demo, "segment_image")
    with held_model(demo) as (release, _), from_address(url, ATTACKER) as attacker:
        data = [upload(attacker, scene_png), "[[80, 90, 1]]", "null"]

        def call(number: int) -> httpx.Response:  # a script's sessions, each with a forged X-Forwarded-For
            return join(attacker, segment, f"script-{number}", data, **{"X-Forwarded-For": f"203.0.113.{number}"})

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(call, range(8)))
        admitted = [a for a in answers if a.status_code == 200]
        refused = [a for a in answers if a.status_code != 200]
        assert len(admitted) == 1  # its share: the queue's size less one (the model share is 2)
        assert {a.status_code for a in refused} == {429}
        assert "model requests queued or running (the limit is 1 per visitor" in refused[0].json()["detail"]

        with from_address(url, USER) as user:
            assert join(user, segment, "visitor", data).status_code == 200  # served in its turn
            release.set()
            done = messages(user, "visitor")[-1]
        assert done["success"] and done["output"]["data"][2]["scores"]
    # nothing leaks: every event done, both clients are back to nothing in flight and may call again
    wait_until(lambda: in_flight(demo, ATTACKER) == in_flight(demo, USER) == (0, 0), "the shares to be released")
    with from_address(url, ATTACKER) as attacker:
        assert join(attacker, segment, "again", data).status_code == 200
        assert messages(attacker, "again")[-1]["success"]


def test_a_client_that_goes_away_gives_its_share_back(launch, scene_png):
    demo, url = launch(Limits(model_concurrency=1))  # the first request runs, the second waits in the queue
    segment = fn_index(demo, "segment_image")
    with held_model(demo) as (release, started), from_address(url, ATTACKER) as attacker:
        data = [upload(attacker, scene_png), "[[80, 90, 1]]", "null"]
        assert [join(attacker, segment, "leaving", data).status_code for _ in range(2)] == [200, 200]
        assert started.acquire(timeout=120)  # the first is running
        assert join(attacker, segment, "leaving", data).status_code == 429  # a model share is 2
        with attacker.stream("GET", "gradio_api/queue/data", params={"session_hash": "leaving"}) as events:
            next(events.iter_lines())  # connected; the client goes away
        wait_until(lambda: in_flight(demo, ATTACKER) == (1, 1), "the queued request to leave with its client")
        release.set()  # the running one ends
        wait_until(lambda: in_flight(demo, ATTACKER) == (0, 0), "the running request to give its place back")
        assert join(attacker, segment, "back", data).status_code == 200
        assert messages(attacker, "back")[-1]["success"]


def test_the_shares_hold_in_an_app_that_mounts_the_studio(small_model, yolo_detector, scene_png):
    """Embedding: `gr.mount_gradio_app` serves the studio's Blocks, whose queue its gate guards."""
    import fastapi
    import gradio as gr
    import uvicorn

    from app.demo import build_demo
    from app.detector_pool import DetectorPool

    from .conftest import free_port

    detectors = DetectorPool(["yolo11n.pt"], loader=lambda name: yolo_detector)
    demo = build_demo(small_model, Limits(model_concurrency=1), detectors)
    app = gr.mount_gradio_app(fastapi.FastAPI(), demo, path="/studio")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, "the embedding app to start")
        segment = fn_index(demo, "segment_image")
        url = f"http://127.0.0.1:{port}/studio/"
        with held_model(demo) as (release, _), from_address(url, ATTACKER) as attacker:
            data = [upload(attacker, scene_png), "[[80, 90, 1]]", "null"]
            assert [join(attacker, segment, f"s{i}", data).status_code for i in range(3)] == [200, 200, 429]
            release.set()
            assert messages(attacker, "s0")[-1]["success"]
    finally:
        server.should_exit = True
        thread.join()


# ------------------------------------------------------------------------------- sessions: who gives way
def registry_with(sessions: dict[str, tuple[str, bool]], **limits: int) -> SessionRegistry:
    """A registry holding `sessions`: hash -> (client, holds work), opened in that order."""
    registry = SessionRegistry(**limits)
    for session_hash, (client, work) in sessions.items():
        session = registry.open(session_hash, client)
        if work:
            session.image.image = np.zeros((4, 4, 3), np.uint8)  # an upload
        time.sleep(0.001)  # distinct last-use times
    return registry


@pytest.mark.parametrize(
    ("sessions", "limits", "opener", "gone"),
    [
        # a client at its cap replaces its own oldest idle session, an empty one first
        ({"a1": ("A", True), "a2": ("A", False), "b": ("B", True)}, {"max_per_client": 2}, "A", "a2"),
        ({"a1": ("A", True), "a2": ("A", True), "b": ("B", False)}, {"max_per_client": 2}, "A", "a1"),
        # a full registry: the opener's own session first, then an empty one, then a bigger holder's oldest
        ({"a": ("A", True), "b": ("B", True), "c1": ("C", True)}, {"max_sessions": 3}, "C", "c1"),
        ({"a": ("A", False), "b": ("B", True), "c": ("C", False)}, {"max_sessions": 3}, "C", "c"),
        ({"a": ("A", True), "b": ("B", False), "c": ("C", True)}, {"max_sessions": 3}, "D", "b"),
        ({"a": ("A", True), "b1": ("B", True), "b2": ("B", True)}, {"max_sessions": 3}, "D", "b1"),
    ],
)
def test_a_new_session_replaces_the_fairest_one(sessions, limits, opener, gone):
    registry = registry_with(sessions, **limits)
    registry.open("new", opener)
    assert {s.client for s in registry.live()} >= {c for h, (c, _) in sessions.items() if h != gone}
    with pytest.raises(SessionLimitError, match="expired"):
        registry.get(gone)


def test_no_one_elses_work_is_given_up_and_a_busy_client_is_told_its_limit():
    registry = registry_with({"a": ("A", True), "b": ("B", True), "c": ("C", True)}, max_sessions=3)
    with pytest.raises(SessionLimitError, match="The studio is full: its 3 sessions are in use or hold other"):
        registry.open("new", "D")  # every session is another visitor's work
    registry = registry_with({"a1": ("A", False), "a2": ("A", False)}, max_per_client=2)
    busy = r"2 tabs .* each with a request running \(the limit is 2 per"
    with registry.get("a1").in_use(), registry.get("a2").in_use(), pytest.raises(SessionLimitError, match=busy):
        registry.open("a3", "A")
    assert len(registry) == 2


# ----------------------------------------------------------------------------------------- client addresses
def request_from(peer: str | None, forwarded: str | None = None) -> SimpleNamespace:
    headers = {} if forwarded is None else {"x-forwarded-for": forwarded}
    return SimpleNamespace(client=None if peer is None else SimpleNamespace(host=peer), headers=headers)


@pytest.mark.parametrize(
    ("setting", "peer", "forwarded", "client"),
    [
        ("0", "192.0.2.1", "198.51.100.7", "192.0.2.1"),  # not trusted: the header is the client's own invention
        ("1", "10.0.0.5", "198.51.100.7, 10.0.0.9", "198.51.100.7"),  # any peer: the leftmost
        ("private", "10.0.0.5", "203.0.113.9, 198.51.100.7, 10.0.0.9", "198.51.100.7"),  # the rightmost not ours
        ("private", "192.0.2.1", "198.51.100.7", "192.0.2.1"),  # a public peer is no proxy of ours
        ("10.0.0.0/8, 192.0.2.7", "192.0.2.7", "198.51.100.7", "198.51.100.7"),
        ("10.0.0.0/8", "10.1.2.3", "", "10.1.2.3"),  # no header: the proxy itself
        ("0", "2001:db8::1", None, "2001:db8::/64"),  # IPv6: a host's whole /64 is one client
        ("0", "::ffff:192.0.2.1", None, "192.0.2.1"),
        ("1", "10.0.0.5", "[2001:db8::5]:443", "2001:db8::/64"),
        ("0", None, "198.51.100.7", UNKNOWN),
    ],
)
def test_the_client_is_the_peer_unless_a_trusted_proxy_names_it(setting, peer, forwarded, client):
    assert client_address(request_from(peer, forwarded), TrustedProxies.parse(setting)) == client


def test_the_trusted_proxy_setting_defaults_to_private_peers_on_a_space_and_is_checked():
    assert parse_settings([], {}).trusted_proxies == TrustedProxies()
    assert parse_settings([], {"SPACE_ID": "me/studio"}).trusted_proxies == TrustedProxies.parse("private")
    assert parse_settings([], {"SAM2_TRUSTED_PROXY": "1"}).trusted_proxies.trust_all
    with pytest.raises(SystemExit):
        parse_settings(["--trusted-proxy", "the proxy"], {})
    with pytest.raises(ValueError, match=r"SAM2_TRUSTED_PROXY .* must be 0"):
        TrustedProxies.parse("10.0.0.0/33")
