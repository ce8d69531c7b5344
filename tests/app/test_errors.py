"""The handler boundary: our own refusals reach the person with their message (no server path); anything else is a
bug, logged with its traceback and shown as an apology; running out of memory says so."""

from __future__ import annotations

import logging

import gradio as gr
import pytest
import torch

from app.errors import APOLOGY, OUT_OF_MEMORY, guard
from app.prompts import PromptError
from app.refusals import Refusal, TrackingInProgress
from app.sessions import SessionLimitError
from app.uploads import UploadError
from sam2_model import TrackingInProgressError


def raising(error: Exception):
    def handler() -> None:
        raise error

    return handler


@pytest.mark.parametrize(
    ("error", "shown", "logged"),
    [
        (Refusal("Upload an image first."), "Upload an image first.", False),
        (PromptError("The point (9, 9) is outside the 4x4 image."), "outside the 4x4 image", False),
        (UploadError("/tmp/gradio/abc/big.zip expands to 2 GB"), "<file> expands to 2 GB", False),
        (TrackingInProgress(), "Tracking is in progress", False),
        (SessionLimitError("Your session has expired: reload the page."), "reload the page", False),
        (gr.Error("Said by us."), "Said by us.", False),
        (KeyError("obj_id"), APOLOGY, True),  # an internal bug, not the user's input
        (IndexError("list index out of range"), APOLOGY, True),
        (ValueError("operands could not be broadcast"), APOLOGY, True),  # a library's, deep inside
        (RuntimeError("CUDA error: device-side assert"), APOLOGY, True),
        (MemoryError(), OUT_OF_MEMORY, True),
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), OUT_OF_MEMORY, True),
    ],
)
def test_what_the_person_sees_and_what_the_server_logs(error, shown, logged, caplog):
    with caplog.at_level(logging.ERROR, logger="sam2_studio"), pytest.raises(gr.Error) as raised:
        guard(raising(error))()  # the named API: the error itself
    assert shown in str(raised.value.message) and "/tmp/" not in str(raised.value.message)
    assert bool(caplog.records) == logged
    if logged:
        assert caplog.records[0].exc_info is not None  # with its traceback


def test_in_the_browser_a_refusal_is_a_warning_that_keeps_every_panel(monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr(gr, "Warning", warnings.append)
    kept = guard(raising(Refusal("Nothing to export yet.")), keep=3)()
    assert warnings == ["Nothing to export yet."] and len(kept) == 3
    assert all(isinstance(v, dict) and v.get("__type__") == "update" and len(v) == 1 for v in kept)  # gr.skip()


def test_a_generator_handler_refuses_the_same_way(monkeypatch):
    warnings: list[str] = []
    monkeypatch.setattr(gr, "Warning", warnings.append)

    def stream():
        yield 1
        raise TrackingInProgress()

    assert list(guard(stream, keep=1)()) == [1, gr.skip()]
    assert warnings == ["Tracking is in progress: wait until it has finished, or Cancel it."]


@pytest.mark.parametrize(
    ("raised", "shown"),
    [
        # the GPU ran out of memory during a click, and a tracking of the video started before the error was read
        (torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2 GiB"), OUT_OF_MEMORY),
        (RuntimeError("CUDA error: device-side assert"), APOLOGY),
        # the predictor refused the edit because the tracking had started: that one is "in progress"
        (TrackingInProgressError("Tracking is in progress on this video session"), "Tracking is in progress"),
    ],
)
def test_a_video_edit_says_tracking_is_in_progress_only_when_it_is_the_reason(raised, shown):
    from types import SimpleNamespace

    from app.video_workflow import editing

    session = SimpleNamespace(is_propagating=False)

    def click() -> None:
        with editing(session):
            session.is_propagating = True  # Track pressed while the edit ran
            raise raised

    with pytest.raises(gr.Error) as error:
        guard(click)()
    assert shown in str(error.value.message)
