"""VideoSession's public face: objects, prompts in pixels, newest masks, metadata, and the rule while propagating."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sam2_model import VideoObject
from sam2_model.video_predictor import VideoPredictor

from .test_video_predictor import moving_square


@pytest.fixture(scope="module")
def predictor(small_model) -> VideoPredictor:
    return VideoPredictor(small_model)


def test_objects_prompts_and_masks_through_the_public_face(predictor):
    session = predictor.init_state(moving_square(4))
    assert session.objects == () and session.obj_ids == []
    predictor.add_new_points_or_box(session, 1, "car", box=[5, 10, 25, 30])
    predictor.add_new_points_or_box(
        session, 1, "car", points=[[15, 20], [40, 40]], labels=[1, 0], clear_old_points=False
    )
    prompt = session.prompt(1, "car")
    np.testing.assert_allclose(prompt.points, [[15, 20], [40, 40]], atol=1e-4)  # video pixels, as given
    assert prompt.labels.tolist() == [1, 0] and prompt.box.tolist() == [5, 10, 25, 30] and not prompt.mask
    assert session.prompt(0, "car") is None
    # the newest mask of a prompted frame is the prompt's result, at the video's resolution
    assert session.mask(1, "car").shape == (48, 64) and session.mask(1, "car").dtype == bool
    assert session.mask(0, "car") is None and session.frame_masks(0) == {}

    predictor.add_new_mask(session, 3, 7, np.pad(np.ones((10, 10), bool), ((10, 28), (20, 34))))
    assert session.prompt(3, 7).mask and session.prompted_frames(7) == [3]
    session.set_object_info(7, class_id=2, label="ball")
    assert session.objects == (
        VideoObject("car", None, None, (1,), ()),
        VideoObject(7, 2, "ball", (3,), ()),
    )

    masks_seen = {}
    for frame_idx, obj_ids, video_masks in predictor.propagate_in_video(session):
        masks_seen[frame_idx] = (video_masks[:, 0] > 0).cpu().numpy()
        assert obj_ids == ["car", 7]
    assert sorted(masks_seen) == [1, 2, 3]  # forward from the first prompted frame
    assert session.tracked_frames("car") == [1, 2, 3] and session.object(7).tracked_frames == (1, 2, 3)
    for frame_idx, binary in masks_seen.items():
        found = session.frame_masks(frame_idx)
        assert list(found) == ["car", 7]
        np.testing.assert_array_equal(found["car"], binary[0])
        np.testing.assert_array_equal(session.mask(frame_idx, 7), binary[1])
    assert session.object(7).label == "ball"  # metadata survives tracking

    with pytest.raises(KeyError, match=r"Unknown object id 'bus'; this session tracks \['car', 7\]"):
        session.mask(1, "bus")
    with pytest.raises(IndexError, match="out of range"):
        session.mask(9, "car")


def test_clearing_a_prompt_clears_its_mask(predictor):
    session = predictor.init_state(moving_square(3))
    predictor.add_new_points_or_box(session, 0, 1, points=[[15, 20]], labels=[1])
    predictor.add_new_points_or_box(session, 2, 1, points=[[20, 20]], labels=[1])
    predictor.clear_all_prompts_in_frame(session, 2, 1)
    assert session.prompt(2, 1) is None and session.mask(2, 1) is None and session.prompted_frames(1) == [0]


def test_remove_object_strict(predictor):
    session = predictor.init_state(moving_square(2))
    predictor.add_new_points_or_box(session, 0, "a", points=[[15, 20]], labels=[1])
    with pytest.raises(KeyError, match="Unknown object id 'b'"):
        predictor.remove_object(session, "b")
    assert predictor.remove_object(session, "b", strict=False) == (["a"], [])  # Meta's lenient mode
    assert session.obj_ids == ["a"]


def test_edits_are_refused_while_propagating_and_allowed_after(predictor):
    session = predictor.init_state(moving_square(4))
    predictor.add_new_points_or_box(session, 0, 1, points=[[15, 20]], labels=[1])
    frames = predictor.propagate_in_video(session)
    assert not session.is_propagating  # a generator not started yet holds nothing
    assert next(frames)[0] == 0
    assert session.is_propagating
    edits = [
        lambda: predictor.add_new_points_or_box(session, 2, 2, points=[[40, 30]], labels=[1]),
        lambda: predictor.add_new_mask(session, 2, 1, np.ones((48, 64), bool)),
        lambda: predictor.clear_all_prompts_in_frame(session, 0, 1),
        lambda: predictor.remove_object(session, 1),
        lambda: predictor.reset_state(session),
        lambda: next(predictor.propagate_in_video(session, reverse=True)),
    ]
    for edit in edits:
        with pytest.raises(RuntimeError, match="Tracking is in progress"):
            edit()
    assert session.obj_ids == [1] and session.mask(0, 1) is not None  # reads are allowed
    frames.close()  # stopping the generator ends the propagation
    assert not session.is_propagating
    predictor.add_new_points_or_box(session, 2, 2, points=[[40, 30]], labels=[1])
    assert session.obj_ids == [1, 2]


def test_an_edit_from_another_thread_mid_propagation_is_refused_and_ids_match_masks(predictor):
    session = predictor.init_state(moving_square(6))
    predictor.add_new_points_or_box(session, 0, "a", points=[[15, 20]], labels=[1])
    predictor.add_new_points_or_box(session, 0, "b", box=[30, 5, 60, 40])
    errors: list[Exception] = []
    started, edited = threading.Event(), threading.Event()

    def edit():
        started.wait()
        for call in (
            lambda: predictor.add_new_points_or_box(session, 3, "c", points=[[5, 5]], labels=[1]),
            lambda: predictor.remove_object(session, "a"),
        ):
            try:
                call()
            except RuntimeError as error:
                errors.append(error)
        edited.set()

    thread = threading.Thread(target=edit)
    thread.start()
    seen = []
    for frame_idx, obj_ids, masks in predictor.propagate_in_video(session):
        seen.append((list(obj_ids), masks.shape[0]))
        if frame_idx == 1:
            started.set()
            edited.wait(timeout=30)
    thread.join()
    assert len(errors) == 2 and all("Tracking is in progress" in str(e) for e in errors)
    assert all(ids == ["a", "b"] and rows == 2 for ids, rows in seen)
    assert session.obj_ids == ["a", "b"]


def test_closing_the_session_stops_a_running_propagation(predictor):
    session = predictor.init_state(moving_square(4))
    predictor.add_new_points_or_box(session, 0, 1, points=[[15, 20]], labels=[1])
    frames = predictor.propagate_in_video(session)
    next(frames)
    predictor.close_state(session)
    with pytest.raises(RuntimeError, match="closed"):
        next(frames)
    assert not session.is_propagating
