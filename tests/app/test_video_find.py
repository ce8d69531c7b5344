"""Find on a video's frame (app.video_find): the boxes found by name or like an example become objects of the
tracking session, named after their phrase, prompted on that frame, and tracked by Track like any other."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.detector_pool import DetectorPool
from app.refusals import Refusal
from app.settings import Limits
from app.studio import Studio

from .conftest import request
from .test_find import yoloe_pool
from .test_studio import write_video


@pytest.fixture(scope="module")
def finders(tmp_path_factory) -> DetectorPool:
    return yoloe_pool(tmp_path_factory.mktemp("video_find"))


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    return write_video(tmp_path_factory.mktemp("video_find") / "clip.mp4")  # 96x64, 4 frames


def open_video(small_model, finders, video, max_objects):
    studio = Studio(small_model, Limits(max_objects=max_objects), finders=finders)
    studio.open_session(request())
    with studio.user_session(request()) as user:
        studio.video.workflow.open_video(user, str(video), lambda *a, **k: None)
    return studio, user


def test_found_objects_join_the_session_named_and_prompted_then_track(small_model, finders, video):
    studio, user = open_video(small_model, finders, video, max_objects=2)
    frame, masks = studio.video.finder.find(user, 1, "person, red car", confidence=0.0)
    session = user.video.session
    assert frame == 1 and masks is not None and masks.shape == (2, 1, 64, 96)
    assert sorted(session.obj_ids) == user.video.object_ids == [1, 2]  # the empty object 1 was used first
    for obj_id in session.obj_ids:
        assert user.video.class_names[obj_id] in ("person", "red car")
        assert session.prompt(1, obj_id).box is not None and session.mask(1, obj_id) is not None
    with pytest.raises(Refusal, match="the most allowed"):
        studio.video.finder.find(user, 1, "person", confidence=0.0)
    list(studio.video.workflow.tracking_steps(user))
    assert all(session.mask(f, i) is not None for f in (0, 3) for i in (1, 2))  # tracked both ways from frame 1
    assert studio.video.workflow.undo(user) == 1 and len(session.obj_ids) == 1  # one undo per found object


def test_find_similar_on_a_frame_uses_the_active_objects_box(small_model, finders, video):
    studio, user = open_video(small_model, finders, video, max_objects=3)
    with pytest.raises(Refusal, match="draw a box around one example"):
        studio.video.finder.find_similar(user, 0, confidence=0.0)
    studio.video.workflow.name_object(user.video, 1, "ball")
    studio.video.workflow.add_prompt(user, 0, 1, box=[20, 10, 80, 60])
    frame, _ = studio.video.finder.find_similar(user, 0, confidence=0.0)
    session = user.video.session
    assert frame == 0 and 1 < len(session.obj_ids) <= 3
    assert [user.video.class_names[i] for i in sorted(session.obj_ids)][1:] == ["ball"] * (len(session.obj_ids) - 1)
