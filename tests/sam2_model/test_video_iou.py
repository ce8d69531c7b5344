"""SAM 2's predicted IoU on video frames: the tracker keeps the IoU head's prediction for every object's mask on
every frame (`VideoSession.frame_ious`), which `propagate_in_video` (Meta's contract) does not return."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from sam2_model.video_predictor import VideoPredictor
from sam2_model.video_tracker import masks_and_values_to_host
from tests.devices import device_under_test, logit_atol
from tests.sam2_model.conftest import REFERENCE_VIDEO_FRAMES
from tests.sam2_model.test_video_predictor import moving_square

IOU_TOLERANCE = logit_atol(device_under_test())


@pytest.mark.reference
def test_each_frames_predicted_iou_is_the_one_metas_iou_head_gives(tiny_model, meta_predictor, video_folder):
    """Same weights, same prompts: on every prompted and tracked frame, each object's IoU is what Meta's IoU head
    predicted for the mask Meta kept (with three candidates, the one it chose: the highest)."""
    predicted: list[tuple[int, list[float]]] = []  # Meta's tracking steps: (frame, IoU per object of the batch)
    real_track_step = meta_predictor._track_step

    def recording_track_step(frame_idx, *args, **kwargs):
        found = real_track_step(frame_idx, *args, **kwargs)
        ious = found[1][2]  # (current_out, sam_outputs, ...): sam_outputs' third is the IoU head's BxC output
        predicted.append((frame_idx, ious.max(dim=-1).values.float().tolist()))
        return found

    meta_predictor._track_step = recording_track_step
    try:
        ours = VideoPredictor(tiny_model, fill_hole_area=8)
        our_state, their_state = ours.init_state(video_folder), meta_predictor.init_state(str(video_folder))
        expected: dict[tuple[int, int], float] = {}
        # a click (three candidate masks) and a box (one mask): Meta's steps run one object at a time
        for obj_id, prompt in ((1, {"points": [[25, 25]], "labels": [1]}), (2, {"box": [55, 35, 85, 65]})):
            ours.add_new_points_or_box(our_state, 0, obj_id, **prompt)
            meta_predictor.add_new_points_or_box(their_state, 0, obj_id, **prompt)
            [(frame, [iou])] = predicted
            expected[(frame, obj_id)] = iou
            predicted.clear()
        our_frames = [frame for frame, _, _ in ours.propagate_in_video(our_state)]
        for _ in meta_predictor.propagate_in_video(their_state):
            pass
    finally:
        del meta_predictor._track_step  # the class's method again
    tracked = list(range(1, REFERENCE_VIDEO_FRAMES))
    assert [frame for frame, _ in predicted] == [t for t in tracked for _ in (1, 2)]  # frame 0 is prompted
    for (frame, [iou]), obj_id in zip(predicted, [1, 2] * len(tracked), strict=True):
        expected[(frame, obj_id)] = iou
    assert our_frames == list(range(REFERENCE_VIDEO_FRAMES))
    found = {(t, obj_id): iou for t in our_frames for obj_id, iou in our_state.frame_ious(t).items()}
    assert found.keys() == expected.keys()
    for key, iou in expected.items():
        assert found[key] == pytest.approx(iou, abs=IOU_TOLERANCE), key


def test_every_object_has_an_iou_on_every_frame_batched_or_not(small_model):
    """Whether objects are tracked in one batch or one by one, each has its own IoU in [0, 1] on every frame (also
    where its mask is empty); a mask prompt gives 1 (the mask is taken as it is); forgetting frames drops theirs."""

    def run(batched: bool) -> tuple[VideoPredictor, list[dict[object, float]], object]:
        predictor = VideoPredictor(small_model, batch_objects=batched)
        session = predictor.init_state(moving_square(4))
        predictor.add_new_points_or_box(session, 0, "a", points=[[15, 20]], labels=[1])
        predictor.add_new_points_or_box(session, 0, "b", box=[30, 5, 60, 40])
        mask = np.zeros((48, 64), bool)
        mask[30:40, 40:60] = True
        predictor.add_new_mask(session, 0, "c", mask)
        frames = [t for t, _, _ in predictor.propagate_in_video(session)]
        return predictor, [session.frame_ious(t) for t in frames], session

    _, batched, _ = run(batched=True)
    predictor, alone, session = run(batched=False)
    assert len(alone) == 4 and all(list(ious) == ["a", "b", "c"] for ious in alone)
    assert all(0.0 <= iou <= 1.0 for ious in alone for iou in ious.values())
    assert alone[0]["c"] == 1.0
    for ious_batched, ious_alone in zip(batched, alone, strict=True):
        assert ious_batched == pytest.approx(ious_alone, abs=IOU_TOLERANCE)
    predictor.forget_frames(session, 2)
    assert session.frame_ious(1) == {} and list(session.frame_ious(2)) == ["a", "b", "c"]


@pytest.mark.parametrize("shape", [(3, 5, 7), (1, 48, 64), (0, 4, 4)])
def test_masks_and_values_cross_to_the_host_together_unchanged(shape):
    """The frame's binary masks and IoUs, packed into one transfer, come back exactly (any mask size: the floats'
    bytes stay aligned)."""
    generator = torch.Generator().manual_seed(0)
    masks = torch.rand(shape, generator=generator) > 0.5
    values = torch.rand(shape[0], generator=generator)
    host_masks, host_values = masks_and_values_to_host(masks, values)
    assert host_masks.dtype == np.bool_ and host_values.dtype == np.float32
    np.testing.assert_array_equal(host_masks, masks.numpy())
    np.testing.assert_array_equal(host_values, values.numpy())
