"""VideoSession's public face: objects, prompts in pixels, newest masks, metadata, and the rule while propagating."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from sam2_model import VideoObject
from sam2_model.video_predictor import VideoPredictor
from tests.devices import device_under_test, logit_atol

from .test_video_predictor import moving_square

LOGIT_ATOL = logit_atol(device_under_test())  # 1e-4 in float32 on the CPU; bf16 on CUDA (tests/devices.py)


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


def test_segment_boxes_gives_each_box_the_mask_of_a_new_object_and_changes_nothing(predictor):
    session = predictor.init_state(moving_square(3))
    predictor.add_new_points_or_box(session, 0, "kept", box=[2, 2, 20, 20])
    boxes = np.array([[5, 10, 25, 30], [30, 5, 60, 40]], np.float32)
    logits = predictor.segment_boxes(session, 1, boxes)
    assert logits.shape == (2, 1, 48, 64) and logits.dtype == torch.float32
    assert session.obj_ids == ["kept"] and session.prompted_frames("kept") == [0]  # nothing added
    for row, box in enumerate(boxes):  # the same as prompting a new object with that box alone
        alone = predictor.init_state(moving_square(3))
        _, _, expected = predictor.add_new_points_or_box(alone, 1, "new", box=box)
        torch.testing.assert_close(logits[row], expected[0], atol=LOGIT_ATOL, rtol=0)
    assert predictor.segment_boxes(session, 1, np.zeros((0, 4))).shape == (0, 1, 48, 64)
    with pytest.raises(ValueError, match="xyxy"):
        predictor.segment_boxes(session, 1, [[1, 2, 3]])


def test_forget_frames_keeps_tracking_with_the_newest_prompt_and_drops_the_rest(predictor):
    session = predictor.init_state(moving_square(8))
    predictor.add_new_points_or_box(session, 0, 1, box=[5, 10, 25, 30])
    predictor.add_new_points_or_box(session, 2, 1, box=[6, 10, 26, 30])
    for _ in predictor.propagate_in_video(session, max_frame_num_to_track=4):
        pass
    assert session.tracked_frames(1) == [0, 1, 2, 3, 4]
    predictor.forget_frames(session, 4)
    assert session.prompted_frames(1) == [2]  # the newest prompt stays: it conditions what comes next
    assert session.tracked_frames(1) == [4] and session.mask(1, 1) is None and session.mask(4, 1) is not None
    assert set(session.frame_rles(4)) == {1} and session.frame_rles(4)[1]["size"] == [48, 64]
    frames = [t for t, _, _ in predictor.propagate_in_video(session, start_frame_idx=5)]
    assert frames == [5, 6, 7] and session.tracked_frames(1) == [4, 5, 6, 7]


def test_forgetting_consumed_frames_changes_no_later_mask(predictor):
    def track(forget: bool) -> dict[int, torch.Tensor]:
        session = predictor.init_state(moving_square(9))
        predictor.add_new_points_or_box(session, 0, "a", box=[5, 10, 25, 30])
        predictor.add_new_points_or_box(session, 0, "b", points=[[40, 30]], labels=[1])
        for _ in predictor.propagate_in_video(session, max_frame_num_to_track=4):
            pass
        if forget:
            predictor.forget_frames(session, 4)
        return {t: masks.cpu() for t, _, masks in predictor.propagate_in_video(session, start_frame_idx=5)}

    kept, forgotten = track(False), track(True)
    assert sorted(forgotten) == [5, 6, 7, 8]
    for t in kept:  # tracked memories and the one prompt per object stay: the same logits, bit for bit
        torch.testing.assert_close(forgotten[t], kept[t], atol=0, rtol=0)


def test_a_session_on_shared_frames_leaves_them_open(predictor):
    from sam2_model.video_frames import VideoFrames

    frames = VideoFrames(moving_square(3))
    first, second = predictor.init_state(frames), predictor.init_state(frames)
    assert first.frames is frames and second.frames is frames and not first.feature_cache  # no warm-up
    predictor.close_state(first)
    assert second.frames.rgb(2).shape == (48, 64, 3)  # still readable for the other session


def test_a_session_can_start_with_another_sessions_image_features(small_model, monkeypatch):
    from sam2_model.video_frames import VideoFrames

    predictor = VideoPredictor(small_model, feature_cache_frames=6)
    frames = VideoFrames(moving_square(5))
    first = predictor.init_state(frames)
    predictor.add_new_points_or_box(first, 0, 1, box=[5, 10, 25, 30])
    for _ in predictor.propagate_in_video(first):
        pass

    def backward(session):
        predictor.add_new_points_or_box(session, 4, 9, box=[20, 10, 40, 30])
        return [logits.clone() for _, _, logits in predictor.propagate_in_video(session, 4, reverse=True)]

    encoded: list[int] = []
    real = small_model.net.forward_image
    # on the instance's __dict__: undone, the class's method shows through again (setattr's undo would leave a copy
    # of the bound method on the shared model, hiding it from tests that take the class's away)
    monkeypatch.setitem(vars(small_model.net), "forward_image", lambda image: encoded.append(1) or real(image))
    shared = backward(predictor.init_state(frames, features_from=first))
    assert encoded == []  # every frame's features came from the first session
    fresh = backward(predictor.init_state(frames))
    assert len(encoded) == 5
    for a, b in zip(shared, fresh, strict=True):
        assert torch.equal(a, b)  # the same masks, bit for bit

    with pytest.raises(ValueError, match="same VideoFrames"):
        predictor.init_state(VideoFrames(moving_square(5)), features_from=first)
