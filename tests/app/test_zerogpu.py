"""The studio under the ZeroGPU stand-in (every GPU call in a forked process, everything pickled): the server's
session sees every change, Cancel reaches a tracking, and each call asks for a duration from its work size."""

from __future__ import annotations

import zipfile

import cv2
import pytest
import torch

from app import gpu
from app.detector_pool import DetectorPool
from app.gpu import GpuRunner
from app.gpu_tasks import tracked_visits
from app.prompts import POSITIVE
from app.settings import Limits
from app.studio import Studio

from .conftest import request
from .test_studio import choices, click, no_progress, page_load, session_of, write_video


@pytest.fixture
def studio(small_model, yolo_detector, zerogpu) -> Studio:
    detectors = DetectorPool(["yolo11n.pt"], loader=lambda name: yolo_detector)
    limits = Limits(max_sessions=4, max_video_frames=30, max_annotate_images=10)
    studio = Studio(small_model, limits, detectors, runner=GpuRunner(zerogpu, isolated=True))
    page_load(studio)
    return studio


def tensors_of(value) -> list[torch.Tensor]:
    """Every tensor inside tracks, outputs, dicts and lists."""
    import dataclasses

    if isinstance(value, torch.Tensor):
        return [value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return [t for f in dataclasses.fields(value) for t in tensors_of(getattr(value, f.name))]
    if isinstance(value, dict):
        return [t for item in value.values() for t in tensors_of(item)]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in tensors_of(item)]
    return []


def test_image_work_comes_back_to_the_servers_session(studio, zerogpu, tmp_path, scene_image):
    path = tmp_path / "scene.png"
    cv2.imwrite(str(path), scene_image[:, :, ::-1])
    studio.image.upload(str(path), request(), progress=no_progress)
    user = session_of(studio, request())
    assert user.image.features is not None and user.image.features.image_embed.device.type == "cpu"

    _, _, gallery, objects, _, _ = studio.image.click(POSITIVE, click(80, 90), request())
    assert len(gallery) == 3 and choices(objects)[0].startswith("Object 1 — 1 click, score")
    assert user.image.objects[0].candidates.shape == (3, *scene_image.shape[:2])  # the forked call's masks, here
    studio.image.pick_candidate(_select(2), request())
    assert user.image.objects[0].choice == 2
    exported = studio.image.export(request())
    assert any(name.endswith(".json") for name in exported)
    assert [call.task for call in zerogpu.calls] == ["embed_image", "segment_image"]
    assert all(call.seconds == gpu.click_seconds() for call in zerogpu.calls)

    mask, _, scores = studio.api.segment_image(str(path), "[[80, 90, 1]]", None)  # the named API: same tasks
    assert mask.shape == scene_image.shape[:2] and len(scores["scores"]) == 3


def test_video_track_cancel_correct_and_export_under_zerogpu(studio, zerogpu, tmp_path):
    studio.video.upload(str(write_video(tmp_path / "clip.mp4", frames=8)), request(), progress=no_progress)
    assert not zerogpu.calls  # opening a video decodes it here: no GPU
    user = session_of(studio, request())
    session = user.video.session
    studio.video.click(0, POSITIVE, click(50, 45), request())
    assert session.obj_ids == [1] and session.mask(0, 1) is not None  # the worker's result, in the server's session

    tracking = studio.video.track(request())
    next(tracking), next(tracking)  # frames 0 and 1 are shown
    assert studio.video.cancel(request()).startswith("Cancelling")  # a flag in this process: it stops the reading
    *_, note, _, _, _, overlay, files = list(tracking)[-1]
    assert note.startswith("Cancelled: 2 of 8 frames") and overlay and len(files) == 2
    assert session.tracked_frames(1) == [0, 1] and session.mask(1, 1) is not None  # what was tracked is kept
    assert not session.is_propagating
    track_call = zerogpu.calls[-1]
    assert track_call.task == "track_video" and track_call.seconds == gpu.track_seconds(8, 1)

    studio.video.click(5, POSITIVE, click(30, 20), request())  # a correction on a later frame
    assert session.prompted_frames(1) == [0, 5] and session.mask(5, 1) is not None
    steps = list(studio.video.track(request()))
    assert steps[-1][2].startswith("Tracked: 14 of 14 frames")  # forward 0..7, backward 5..0
    assert session.tracked_frames(1) == list(range(8))
    assert all(t.device.type == "cpu" for t in tensors_of(session.tracks))  # the server keeps the state on the CPU
    assert any(t.dtype == torch.bfloat16 for t in tensors_of(session.tracks))  # memories came back with it
    outputs = [o for track in session.tracks for o in (*track.cond.values(), *track.non_cond.values())]
    constants = {id(t) for o in outputs for t in o.maskmem_pos_enc or []}
    assert constants == {id(t) for t in session.maskmem_pos_enc}  # one positional encoding crossed, not one per frame
    _, _, _, _, _, _, overlay, (masks_zip, _coco) = steps[-1]
    with zipfile.ZipFile(masks_zip) as archive:
        assert len([n for n in archive.namelist() if n.endswith(".png")]) == 8


def test_auto_annotate_under_zerogpu(studio, zerogpu, tmp_path, scene_image):
    files = []
    for name in ("a.jpg", "b.jpg"):
        cv2.imwrite(str(tmp_path / name), scene_image[:, :, ::-1])
        files.append(str(tmp_path / name))
    reports: list[float] = []
    gallery, dataset_zip, _ = studio.annotate.run(
        files, "yolo11n.pt", [], 0.0, request(), progress=lambda f, desc="": reports.append(f)
    )
    assert reports == [0.0, 0.5, 1.0]  # the worker's progress, item by item
    with zipfile.ZipFile(dataset_zip) as dataset:
        assert sum(n.startswith("labels/") for n in dataset.namelist()) == 2
    assert len(gallery) == 2
    assert [(c.task, c.seconds) for c in zerogpu.calls] == [("annotate_files", gpu.annotate_seconds(2))]


def test_a_refusal_in_the_worker_reaches_the_server(studio, tmp_path):
    studio.video.upload(str(write_video(tmp_path / "clip.mp4")), request(), progress=no_progress)
    with pytest.raises(Exception, match="Click on an object"):
        list(studio.video.track(request()))  # no object yet: refused before any GPU call
    session = session_of(studio, request()).video.session
    with pytest.raises(ValueError):
        studio.gpu.prompt_video(_state(session), 0, 1, points=[[1.0, 2.0, 3.0]], labels=[1])  # pickled back
    assert session.obj_ids == []


# --------------------------------------------------------------------------------------------- budgets (pure)
@pytest.mark.parametrize(
    ("frames", "objects", "expected"),
    [(0, 0, 20), (8, 1, 22), (300, 3, 245), (600, 3, 470), (300, 10, 600), (10_000, 1, 600)],
)
def test_track_budget_grows_with_frames_times_objects(frames, objects, expected):
    assert gpu.track_seconds(frames, objects) == expected


@pytest.mark.parametrize(
    ("files", "video_frames", "expected"), [(0, 0, 10), (1, 0, 14), (100, 0, 410), (2, 300, 168), (200, 0, 600)]
)
def test_annotate_budget_grows_with_files_and_video_frames(files, video_frames, expected):
    assert gpu.annotate_seconds(files, video_frames) == expected


@pytest.mark.parametrize("budget", [lambda: gpu.track_seconds(-1, 1), lambda: gpu.annotate_seconds(1, -2)])
def test_negative_work_sizes_are_refused(budget):
    with pytest.raises(ValueError, match=">= 0"):
        budget()


@pytest.mark.parametrize(
    ("passes", "expected"), [([(0, False)], 24), ([(0, False), (10, True)], 35), ([(23, False), (23, True)], 25)]
)
def test_tracked_visits_count_both_passes(passes, expected):
    assert tracked_visits(24, passes) == expected


def test_without_a_decorator_tasks_run_as_they_are():
    def task(x: int) -> int:
        return x + 1

    assert GpuRunner().wrap(task, lambda x: 1) is task
    asked = []
    runner = GpuRunner(lambda duration: (asked.append(duration(41)), lambda f: f)[1], isolated=True)
    assert runner.wrap(task, lambda x: x * 2)(1) == 2 and asked == [82]  # spaces.GPU(duration=callable)(task)


def _select(index: int):
    import gradio as gr

    return gr.SelectData(None, {"index": index, "value": None})


def _state(session):
    from app.tracker_state import state_of

    return state_of(session, portable=True)


def test_the_stand_in_forks_and_pickles_and_forked_cpu_work_does_not_hang(zerogpu):
    """The stand-in is what it claims (another process, copies both ways), and a task's CPU work in a forked worker
    finishes after the parent's torch has started its thread pool (`gpu.fork_safe`; without it, it waits forever)."""
    import os

    torch.ones(4_000_000).mul_(2)  # a parallel CPU op here: the pool a fork does not carry over

    def where(values: list[int]) -> tuple[int, float, list[int]]:
        gpu.fork_safe()
        values.append(1)
        return os.getpid(), float(torch.ones(4_000_000).mul_(2).sum()), values

    mine = [0]
    pid, total, values = zerogpu(where)(mine)
    assert pid != os.getpid() and total == 8_000_000.0
    assert values == [0, 1] and mine == [0]  # the worker changed its copy only
    assert zerogpu.calls[0].sent > 0 and zerogpu.calls[0].received > 0
    threads = torch.get_num_threads()
    gpu.fork_safe()  # in the server: nothing changes
    assert torch.get_num_threads() == threads
