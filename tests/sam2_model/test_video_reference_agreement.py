"""Same weights, same prompts, same masks as Meta's SAM2VideoPredictor, on every frame and object.

One session scenario on a synthetic JPEG folder (the format Meta's loader reads): two objects (a click and a box) on
frame 0 tracked forward; a negative click on a later frame with clear_old_points=False and tracking again; a third
object added on the last frame and tracked in reverse (so the reverse pass starts on a frame where the first two are
already tracked); an object removed and tracking again.
Meta's predictor is configured like ours (corrections become conditioning frames; hole filling of 8 low-res pixels,
its default, made to run on the CPU as on a GPU) and, as on the CPU it mixes its bfloat16 memories with float32
weights, its memory attention runs in float32 there (the bf16 -> fp32 cast is exact); on CUDA
(SAM2_TEST_DEVICE=cuda) both run in bf16 autocast, as each does on a GPU. The frames are textured so that the
untrained model's masks have holes on tracked frames, which the test checks, so hole filling is really compared.
"""

from __future__ import annotations

import pytest
import torch

from sam2_model import video_tracker
from sam2_model.transforms import fill_holes_and_sprinkles
from sam2_model.video_predictor import VideoPredictor
from tests.devices import device_under_test, logit_atol, min_iou
from tests.sam2_model.conftest import REFERENCE_VIDEO_FRAMES

pytestmark = pytest.mark.reference

NUM_FRAMES = REFERENCE_VIDEO_FRAMES  # the `video_folder` fixture's (conftest.py)
# float32 on the CPU (measured: at most ~3e-7 on every frame and object); bf16 on CUDA (tests/devices.py)
LOGIT_TOLERANCE = logit_atol(device_under_test())
MIN_IOU = min_iou(device_under_test())


def assert_agree(ours, theirs):
    (our_frame, our_ids, our_logits), (their_frame, their_ids, their_logits) = ours, theirs
    assert our_frame == their_frame and list(our_ids) == list(their_ids)
    torch.testing.assert_close(our_logits, their_logits, atol=LOGIT_TOLERANCE, rtol=0)
    for a, b in zip(our_logits > 0, their_logits > 0, strict=True):
        union = (a | b).sum().item()
        assert union == 0 or (a & b).sum().item() / union >= MIN_IOU


def test_video_session_agrees_with_meta(tiny_model, meta_predictor, video_folder, monkeypatch):
    assert meta_predictor.fill_hole_area == 8
    ours = VideoPredictor(tiny_model, fill_hole_area=8)
    filled: list[int] = []  # pixels our hole filling changed, per tracker call

    def counting_fill(logits, *args, **kwargs):
        result = fill_holes_and_sprinkles(logits, *args, **kwargs)
        filled.append(int((result != logits).sum()))
        return result

    monkeypatch.setattr(video_tracker, "fill_holes_and_sprinkles", counting_fill)
    our_state, their_state = ours.init_state(video_folder), meta_predictor.init_state(str(video_folder))

    def both(call):
        assert_agree(call(ours, our_state), call(meta_predictor, their_state))

    def propagate(**kwargs):
        our_frames = list(ours.propagate_in_video(our_state, **kwargs))
        their_frames = list(meta_predictor.propagate_in_video(their_state, **kwargs))
        assert [f for f, _, _ in our_frames] == [f for f, _, _ in their_frames] and our_frames
        for a, b in zip(our_frames, their_frames, strict=True):
            assert_agree(a, b)

    both(lambda p, s: p.add_new_points_or_box(s, 0, 1, points=[[25, 25]], labels=[1]))
    both(lambda p, s: p.add_new_points_or_box(s, 0, 2, box=[55, 35, 85, 65]))
    propagate()
    last = NUM_FRAMES - 1
    both(lambda p, s: p.add_new_points_or_box(s, last - 1, 1, points=[[60, 50]], labels=[0], clear_old_points=False))
    propagate()
    both(lambda p, s: p.add_new_points_or_box(s, last, 3, points=[[80, 10]], labels=[1]))
    filled.clear()
    propagate(start_frame_idx=last, reverse=True)
    # the reverse pass re-tracked objects 1 and 2 on its start frame first (one call each), and holes were filled
    assert sum(filled[:2]) > 0, "no hole to fill on the reverse start frame: the case is not covered"
    our_ids, our_updated = ours.remove_object(our_state, 2)
    their_ids, their_updated = meta_predictor.remove_object(their_state, 2)
    assert our_ids == their_ids == [1, 3]
    assert [f for f, _ in our_updated] == [f for f, _ in their_updated]
    propagate()
