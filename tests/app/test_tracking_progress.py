"""The time estimate while tracking: measured, not guessed — "estimating" until frames are timed, then a fit of the
per-frame cost that follows SAM 2's growing memory, within 50% of the truth after three tracked frames."""

from __future__ import annotations

import re

import pytest

from app.prompts import POSITIVE
from app.tracking_progress import TrackingEstimate, TrackingPlan, progress_note

from .test_studio import click, no_progress, page_load, request, studio, write_video  # noqa: F401


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cost(k: int) -> float:
    """Seconds for the k-th tracked frame of a pass: the encoder, plus memory attention over min(k, 7) memories
    (the shape measured on a 2-core CPU: ~1.2 s + ~0.5 s per memory for one object with tiny)."""
    return 1.2 + 0.5 * min(k, 7)


@pytest.mark.parametrize("frames", [12, 24, 60])
def test_the_estimate_after_three_frames_is_within_half_of_the_truth(frames):
    plan = TrackingPlan(((frames, 1),))  # one pass from the prompted frame 0
    estimate = TrackingEstimate(plan)
    for k in (1, 2, 3):
        estimate.add(k, cost(k))
    truth = sum(cost(k) for k in range(4, frames))
    guess = estimate.seconds_left(0, 3)
    assert guess is not None and abs(guess - truth) <= 0.5 * truth, (guess, truth)


def test_two_passes_count_the_backward_one_too():
    plan = TrackingPlan(((20, 2), (15, 2)))
    estimate = TrackingEstimate(plan)
    for k in (1, 2, 3):
        estimate.add(k, cost(k))
    truth = sum(cost(k) for k in range(4, 19)) + sum(cost(k) for k in range(1, 14))
    guess = estimate.seconds_left(0, 3)
    assert guess is not None and abs(guess - truth) <= 0.5 * truth


def test_unknown_until_two_frames_are_timed_and_never_zero_before_the_end():
    estimate = TrackingEstimate(TrackingPlan(((24, 1),)))
    assert estimate.seconds_left(0, 0) is None
    estimate.add(1, 2.0)
    assert estimate.seconds_left(0, 1) is None
    note = progress_note(1, 24, 0, 24, False, None)
    assert "estimating the time left" in note and "0 s" not in note
    assert "finishing" in progress_note(24, 24, 23, 24, False, 0.0)


def test_the_tab_shows_the_estimate_from_the_tracking_it_times(studio, tmp_path):  # noqa: F811
    """The real workflow on a 12-frame clip, its clock and frame costs simulated: what the status line says after
    three tracked frames against the seconds the rest then took."""
    clock = FakeClock()
    workflow = studio.video.workflow
    workflow.clock = clock
    positions: list[int] = []

    def advance(frame: int) -> None:  # the frame's cost on the simulated clock (frame 0 is the prompt: free)
        if frame != 0:
            positions.append(frame)
            clock.now += cost(len(positions))

    workflow.after_frame = advance
    studio.video.upload(str(write_video(tmp_path / "clip.mp4", frames=12)), request(), progress=no_progress)
    studio.video.click(0, POSITIVE, click(50, 45), request())
    notes = [(step[2], clock.now) for step in studio.video.track(request())]
    assert "1 of 12 frames done · estimating the time left" in notes[0][0]
    said, at = notes[3]  # after the prompt and three tracked frames
    seconds = float(re.search(r"about (\d+) s left", said).group(1))
    truth = notes[-2][1] - at
    assert abs(seconds - truth) <= 0.5 * truth, (said, truth)
