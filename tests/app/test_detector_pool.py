"""DetectorPool: one YOLO instance per request at a time (ultralytics' YOLO is not thread safe), same weights."""

from __future__ import annotations

import threading

import pytest
import torch

from app.detector_pool import DetectorPool


def test_concurrent_requests_borrow_separate_instances_with_the_same_weights(yolo_detector):
    loads: list[str] = []

    def loader(name: str):
        loads.append(name)
        return yolo_detector

    pool = DetectorPool(["yolo11n.pt"], loader=loader, max_per_name=2)
    with pool.borrow("yolo11n.pt") as first, pool.borrow("yolo11n.pt") as second:
        assert first is not second and first is not yolo_detector  # the loaded template is never lent
        for a, b in zip(first.model.parameters(), second.model.parameters(), strict=True):
            assert torch.equal(a, b)
    with pool.borrow("yolo11n.pt") as again:
        assert again in (first, second)  # returned instances are reused
    assert loads == ["yolo11n.pt"]  # loaded (or downloaded) once


def test_a_request_beyond_the_limit_waits_for_an_instance(yolo_detector):
    pool = DetectorPool(["yolo11n.pt"], loader=lambda name: yolo_detector, max_per_name=1)
    order: list[str] = []
    release = threading.Event()

    def second_request():
        with pool.borrow("yolo11n.pt"):
            order.append("second")

    with pool.borrow("yolo11n.pt"):
        thread = threading.Thread(target=second_request)
        thread.start()
        thread.join(timeout=0.5)
        assert thread.is_alive() and order == []  # waiting
        order.append("first done")
        release.set()
    thread.join(timeout=30)
    assert order == ["first done", "second"]


def test_unknown_detectors_are_refused_before_loading():
    pool = DetectorPool(["yolo11n.pt"], loader=lambda name: pytest.fail("must not load"))
    refused = pytest.raises(ValueError, match=r"Unknown detector 'evil\.pt'; choose one of yolo11n\.pt")
    with refused, pool.borrow("evil.pt"):
        pass
