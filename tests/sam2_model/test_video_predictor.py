"""VideoPredictor: inputs, outputs, state, errors, many sessions, and memory that does not grow with the video."""

from __future__ import annotations

import functools

import av
import cv2
import numpy as np
import pytest
import torch

from sam2_model.video_predictor import NO_OBJ_SCORE, VideoPredictor
from sam2_model.video_session import VideoSession
from tests.devices import device_under_test, logit_atol

LOGIT_ATOL = logit_atol(device_under_test())  # 1e-4 in float32 on the CPU; bf16 on CUDA (tests/devices.py)


def moving_square(count: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    frames = []
    for i in range(count):
        frame = rng.integers(0, 60, (height, width, 3), dtype=np.uint8)
        frame[10:30, 5 + i : 25 + i] = (230, 30, 30)
        frames.append(frame)
    return frames


@pytest.fixture(scope="module")
def predictor(small_model) -> VideoPredictor:
    return VideoPredictor(small_model)


def write_mp4(path, frames: list[np.ndarray], fps: int = 10) -> None:
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_prompts_and_propagation_shapes(predictor):
    session = predictor.init_state(moving_square(5))
    assert isinstance(session, VideoSession) and session.num_frames == 5
    frame_idx, obj_ids, logits = predictor.add_new_points_or_box(session, 0, "car", points=[[15, 20]], labels=[1])
    assert (frame_idx, obj_ids, tuple(logits.shape)) == (0, ["car"], (1, 1, 48, 64))
    _, obj_ids, logits = predictor.add_new_points_or_box(session, 2, 7, box=[30, 5, 60, 40])  # another frame
    assert obj_ids == ["car", 7] and logits.shape == (2, 1, 48, 64)
    assert torch.all(logits[0] == NO_OBJ_SCORE)  # "car" has no output on frame 2 yet

    seen = [(f, ids, tuple(m.shape)) for f, ids, m in predictor.propagate_in_video(session)]
    assert seen == [(f, ["car", 7], (2, 1, 48, 64)) for f in range(5)]
    backward = [f for f, _, _ in predictor.propagate_in_video(session, start_frame_idx=2, reverse=True)]
    assert backward == [2, 1, 0]
    limited = [f for f, _, _ in predictor.propagate_in_video(session, start_frame_idx=1, max_frame_num_to_track=2)]
    assert limited == [1, 2, 3]
    assert session.tracked_frames("car") == [0, 1, 2, 3, 4]
    assert all(session.mask(f, "car").shape == (48, 64) for f in range(5))  # every tracked frame's mask is kept


def test_objects_can_be_added_after_tracking_and_removed(predictor):
    session = predictor.init_state(moving_square(4))
    predictor.add_new_points_or_box(session, 0, 1, points=[[15, 20]], labels=[1])
    list(predictor.propagate_in_video(session))
    _, obj_ids, _ = predictor.add_new_points_or_box(session, 3, 2, points=[[50, 40]], labels=[1])
    assert obj_ids == [1, 2]
    frames = [f for f, _, _ in predictor.propagate_in_video(session, start_frame_idx=3, reverse=True)]
    assert frames == [3, 2, 1, 0]
    remaining, updated = predictor.remove_object(session, 2)
    assert remaining == [1] and [f for f, _ in updated] == [3]
    assert [ids for _, ids, _ in predictor.propagate_in_video(session)][-1] == [1]


def test_add_new_mask_and_clear_prompts(predictor):
    session = predictor.init_state(moving_square(3))
    mask = np.zeros((48, 64), bool)
    mask[10:30, 5:25] = True
    _, _, logits = predictor.add_new_mask(session, 0, "m", mask)
    assert logits.shape == (1, 1, 48, 64)
    list(predictor.propagate_in_video(session))
    predictor.add_new_points_or_box(session, 1, "m", points=[[10, 15]], labels=[0], clear_old_points=False)
    frame_idx, _, _ = predictor.clear_all_prompts_in_frame(session, 1, "m")
    assert frame_idx == 1 and session.prompt(1, "m") is None and session.prompted_frames("m") == [0]


def test_folder_and_video_file_inputs(predictor, tmp_path):
    frames = moving_square(4)
    folder = tmp_path / "frames"
    folder.mkdir()
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i}.png"), frame[:, :, ::-1])
    cv2.imwrite(str(folder / "10.png"), frames[0][:, :, ::-1])  # sorted as a number, not as text
    from_folder = predictor.init_state(folder)
    assert from_folder.num_frames == 5 and (from_folder.video_height, from_folder.video_width) == (48, 64)
    np.testing.assert_array_equal(from_folder.frames.rgb(1), frames[1])

    video = tmp_path / "clip.mp4"
    write_mp4(video, frames)
    from_file = predictor.init_state(video)
    assert from_file.num_frames == 4 and (from_file.video_height, from_file.video_width) == (48, 64)
    assert np.abs(from_file.frames.rgb(2).astype(int) - frames[2]).mean() < 20  # lossy H.264, same picture
    predictor.add_new_points_or_box(from_file, 0, 1, points=[[15, 20]], labels=[1])
    assert len(list(predictor.propagate_in_video(from_file))) == 4
    predictor.close_state(from_file)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda tmp: tmp / "missing.mp4", "Video not found"),
        (lambda tmp: (tmp / "empty_folder").mkdir() or tmp / "empty_folder", "No JPEG or PNG frames"),
        (lambda tmp: (tmp / "bad.mp4").write_bytes(b"not a video at all") and tmp / "bad.mp4", "bad.mp4"),
        (lambda tmp: (tmp / "clip.xyz").write_bytes(b"x") and tmp / "clip.xyz", "unsupported video type"),
        (lambda tmp: [], "no frames"),
        (lambda tmp: [np.zeros((4, 4), np.uint8)], "HxWx3 uint8"),
    ],
)
def test_unreadable_videos_raise_value_error_naming_them(predictor, tmp_path, make, match):
    with pytest.raises(ValueError, match=match):
        predictor.init_state(make(tmp_path))


def test_errors_name_the_problem(predictor):
    session = predictor.init_state(moving_square(3))
    with pytest.raises(IndexError, match=r"frames 0\.\.2"):
        predictor.add_new_points_or_box(session, 3, 1, points=[[1, 1]], labels=[1])
    with pytest.raises(ValueError, match="go together"):
        predictor.add_new_points_or_box(session, 0, 1, points=[[1, 1]])
    with pytest.raises(ValueError, match="one label per point"):
        predictor.add_new_points_or_box(session, 0, 1, points=[[1, 1], [2, 2]], labels=[1])
    with pytest.raises(ValueError, match="clear_old_points=True"):
        predictor.add_new_points_or_box(session, 0, 1, box=[0, 0, 5, 5], clear_old_points=False)
    with pytest.raises(RuntimeError, match="add_new_points_or_box"):
        next(predictor.propagate_in_video(session))  # nothing to track yet
    predictor.add_new_points_or_box(session, 0, "a", points=[[1, 1]], labels=[1])
    with pytest.raises(KeyError, match=r"Unknown object id 'b'; this session tracks \['a'\]"):
        predictor.remove_object(session, "b")
    with pytest.raises(KeyError, match="Unknown object id"):
        predictor.clear_all_prompts_in_frame(session, 0, "b")
    with pytest.raises(IndexError, match="out of range"):
        next(predictor.propagate_in_video(session, start_frame_idx=9))

    predictor.reset_state(session)
    assert session.obj_ids == []
    with pytest.raises(RuntimeError, match="No object has prompts"):
        next(predictor.propagate_in_video(session))
    predictor.close_state(session)
    with pytest.raises(RuntimeError, match="closed"):
        predictor.add_new_points_or_box(session, 0, "a", points=[[1, 1]], labels=[1])


def test_sessions_are_independent(predictor):
    """Two users' sessions on one model: prompts and results never leak between them."""
    first, second = predictor.init_state(moving_square(3)), predictor.init_state(moving_square(3)[::-1])
    predictor.add_new_points_or_box(first, 0, "x", points=[[15, 20]], labels=[1])
    predictor.add_new_points_or_box(second, 0, "y", box=[30, 5, 60, 40])
    alone = [m.clone() for _, _, m in predictor.propagate_in_video(first)]
    list(predictor.propagate_in_video(second))
    assert first.obj_ids == ["x"] and second.obj_ids == ["y"]
    again = [m for _, _, m in predictor.propagate_in_video(first)]
    for a, b in zip(alone, again, strict=True):
        torch.testing.assert_close(a, b)


def test_session_memory_stops_growing_after_the_first_window(predictor):
    """A long video: the session's tensors stop growing once tracking is one memory window in."""
    frames = moving_square(3 * predictor.memory_window)
    session = predictor.init_state(frames)
    predictor.add_new_points_or_box(session, 0, "a", points=[[15, 20]], labels=[1])
    predictor.add_new_points_or_box(session, 0, "b", box=[30, 5, 60, 40])
    sizes = [session.tensor_bytes() for _ in predictor.propagate_in_video(session)]
    window = predictor.memory_window + 2
    assert max(sizes[window:]) == sizes[window], "tensor memory grew after the first window"
    assert all(len(track.non_cond) <= predictor.memory_window + 1 for track in session.tracks)  # tracker internals
    assert all(len(track.masks) == len(frames) for track in session.tracks)  # every frame's mask kept, compactly
    assert sizes[-1] < 2 * sizes[window // 2]


def test_deprecated_alias_warns(predictor):
    session = predictor.init_state(moving_square(2))
    with pytest.warns(DeprecationWarning, match="add_new_points_or_box"):
        predictor.add_new_points(session, 0, 1, points=[[1, 1]], labels=[1])


def test_objects_with_one_memory_layout_are_tracked_as_one_batch(small_model, monkeypatch):
    """Two objects prompted on the same frame go through one tracking step per frame, with the results of two."""

    def track(batched: bool) -> list[torch.Tensor]:
        predictor = VideoPredictor(small_model, batch_objects=batched)
        calls: list[int] = []
        real_track_step = type(small_model.net)._track_step.__get__(small_model.net)  # the class's, unpatched

        def counting_track_step(**kwargs):
            calls.append(kwargs["current_vision_feats"][-1].shape[1])  # batch size of this call
            return real_track_step(**kwargs)

        monkeypatch.setitem(vars(small_model.net), "_track_step", counting_track_step)  # undone: no copy left
        session = predictor.init_state(moving_square(4))
        predictor.add_new_points_or_box(session, 0, "a", points=[[15, 20]], labels=[1])
        predictor.add_new_points_or_box(session, 0, "b", box=[30, 5, 60, 40])
        calls.clear()
        masks = [m.clone() for _, _, m in predictor.propagate_in_video(session)]
        assert calls == ([2] * 3 if batched else [1] * 6)  # frames 1..3 tracked; frame 0 is prompted
        monkeypatch.undo()
        return masks

    assert VideoPredictor(small_model).batch_objects is False  # CPU default: one object at a time (measured faster)

    for batched, alone in zip(track(batched=True), track(batched=False), strict=True):
        torch.testing.assert_close(batched, alone, atol=LOGIT_ATOL, rtol=0)


def test_prompts_entirely_off_the_frame_warn(predictor):
    session = predictor.init_state(moving_square(2))  # 64x48
    with pytest.warns(UserWarning, match=r"Every point lies outside the 64x48 image"):
        predictor.add_new_points_or_box(session, 0, 1, points=[[480, 320]], labels=[1])
    with pytest.warns(UserWarning, match=r"A box lies entirely outside the 64x48 image"):
        predictor.add_new_points_or_box(session, 1, 1, box=[100, 100, 200, 200])


@pytest.mark.parametrize(("components", "transfers_per_frame"), [("opencv", 2), ("torch", 1)])
def test_each_tracked_frame_crosses_to_the_host_once_or_twice_whatever_the_objects(
    small_model, monkeypatch, components, transfers_per_frame
):
    """Per tracked frame, every object's masks go to the host together, also when the objects are tracked in
    separate batches: once with the hole filling of GPUs (tensor operations), twice with OpenCV's (the CPU's
    default: the low-res regions, then the binary masks kept as RLE). Both give the same masks."""
    from sam2_model import transforms, video_tracker

    fill = functools.partial(transforms.fill_holes_and_sprinkles, components=components)
    monkeypatch.setattr(video_tracker, "fill_holes_and_sprinkles", fill)
    predictor = VideoPredictor(small_model, batch_objects=False)  # three batches of one: the worst case
    session = predictor.init_state(moving_square(4))
    for obj_id, x in ((1, 15), (2, 40), (3, 55)):
        predictor.add_new_points_or_box(session, 0, obj_id, points=[[x, 20]], labels=[1])
    transfers: list[int] = []
    real_cpu = torch.Tensor.cpu

    def counting_cpu(self, *args, **kwargs):
        transfers.append(1)
        return real_cpu(self, *args, **kwargs)

    frames = predictor.propagate_in_video(session)
    next(frames)  # frame 0: prompted, no tracking step
    with monkeypatch.context() as counting:
        counting.setattr(torch.Tensor, "cpu", counting_cpu)
        for _ in frames:
            assert len(transfers) == transfers_per_frame
            transfers.clear()
    masks = [session.frame_rles(t) for t in range(4)]
    monkeypatch.undo()
    if components == "torch":  # the same masks as OpenCV's hole filling, on every frame
        reference = VideoPredictor(small_model, batch_objects=False)
        again = reference.init_state(moving_square(4))
        for obj_id, x in ((1, 15), (2, 40), (3, 55)):
            reference.add_new_points_or_box(again, 0, obj_id, points=[[x, 20]], labels=[1])
        for _ in reference.propagate_in_video(again):
            pass
        assert masks == [again.frame_rles(t) for t in range(4)]


def test_a_prompts_result_upsamples_every_object_in_one_call_as_each_alone(predictor, monkeypatch):
    """The masks a prompt returns (every object on the frame) come from one interpolate to the video's size, with
    each object's values as if upsampled alone."""
    import torch.nn.functional as F

    session = predictor.init_state(moving_square(2))
    for obj_id, x in ((1, 15), (2, 40), (3, 55)):
        predictor.add_new_points_or_box(session, 0, obj_id, points=[[x, 20]], labels=[1])
    real_interpolate = F.interpolate
    to_video_size: list[int] = []

    def counting(tensor, size=None, *args, **kwargs):
        if size is not None and tuple(size) == (48, 64):
            to_video_size.append(len(tensor))
        return real_interpolate(tensor, size, *args, **kwargs)

    monkeypatch.setattr(F, "interpolate", counting)
    _, _, masks = predictor.add_new_points_or_box(session, 0, 2, points=[[42, 22]], labels=[1])
    monkeypatch.undo()
    assert to_video_size == [3]
    for row, track in enumerate(session.tracks):
        alone = F.interpolate(track.output_at(0, True).pred_masks, (48, 64), mode="bilinear", align_corners=False)
        assert torch.equal(masks[row : row + 1], alone)
