"""VideoFrames.model_input: the encoder's input bit-identical to Meta's video loader (normalised in float32 on the
device now, where it was float64 on the CPU before), and the next frame decoded ahead while one is tracked."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from sam2.utils.misc import load_video_frames  # Meta's loader: requirements-dev.txt

from sam2_model import video_frames
from sam2_model.transforms import IMAGENET_MEAN, IMAGENET_STD
from sam2_model.video_frames import VideoFrames
from sam2_model.video_predictor import VideoPredictor

from .test_video_predictor import moving_square


@pytest.fixture(scope="module")
def jpeg_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    rng = np.random.default_rng(3)
    for i in range(3):
        cv2.imwrite(str(folder / f"{i:05d}.jpg"), rng.integers(0, 256, (90, 120, 3), dtype=np.uint8))
    return folder


def float64_model_input(frames: VideoFrames, index: int, size: int) -> torch.Tensor:
    """What model_input computed before it normalised in float32: float64 x / 255, cast, then mean and std."""
    resized = np.array(video_frames.Image.fromarray(frames.rgb(index)).resize((size, size)))
    tensor = torch.from_numpy(resized / 255.0).permute(2, 0, 1).float()
    tensor -= torch.tensor(IMAGENET_MEAN, dtype=torch.float32)[:, None, None]
    tensor /= torch.tensor(IMAGENET_STD, dtype=torch.float32)[:, None, None]
    return tensor[None]


def test_float32_division_by_255_equals_the_float64_one_for_every_uint8():
    values = np.arange(256, dtype=np.uint8)
    assert torch.equal(torch.from_numpy(values).float() / 255.0, torch.from_numpy(values / 255.0).float())


@pytest.mark.parametrize("size", [1024, 256])
def test_model_input_is_bit_identical_to_meta_and_to_the_float64_path(jpeg_folder, size):
    frames = VideoFrames(jpeg_folder)
    meta, _, _ = load_video_frames(
        str(jpeg_folder), size, offload_video_to_cpu=True, compute_device=torch.device("cpu")
    )
    for index in range(frames.num_frames):
        ours = frames.model_input(index, size, torch.device("cpu"))
        assert ours.dtype == torch.float32 and ours.shape == (1, 3, size, size)
        assert torch.equal(ours[0], meta[index])
        assert torch.equal(ours, float64_model_input(frames, index, size))


def test_a_prefetched_frame_is_decoded_once_and_gives_the_same_input(jpeg_folder, monkeypatch):
    frames = VideoFrames(jpeg_folder)
    expected = frames.model_input(1, 256, torch.device("cpu"))
    decoded: list[int] = []
    rgb = frames.rgb
    monkeypatch.setattr(frames, "rgb", lambda index: decoded.append(index) or rgb(index))
    frames.prefetch(1, 256)
    frames.prefetch(1, 256)  # already on its way: not decoded twice
    frames.prefetch(7, 256)  # out of range: nothing
    assert torch.equal(frames.model_input(1, 256, torch.device("cpu")), expected)
    assert decoded == [1]
    assert frames._prefetched == {}  # consumed
    frames.model_input(2, 256, torch.device("cpu"))  # not prefetched: decoded when asked
    assert decoded == [1, 2]


def test_prefetching_is_bounded_and_close_drops_what_waits(jpeg_folder):
    frames = VideoFrames(jpeg_folder)
    for index in range(3):
        frames.prefetch(index, 64)
    assert list(frames._prefetched) == [(1, 64), (2, 64)]  # at most two per video: the oldest was dropped
    frames.close()
    assert frames._prefetched == {}


def test_tracking_decodes_the_next_frame_ahead(small_model, monkeypatch):
    asked: list[int] = []
    prefetch = VideoFrames.prefetch
    monkeypatch.setattr(VideoFrames, "prefetch", lambda self, i, size: asked.append(i) or prefetch(self, i, size))
    predictor = VideoPredictor(small_model)
    session = predictor.init_state(moving_square(3))
    predictor.add_new_points_or_box(session, 0, 1, box=[5, 10, 25, 30])
    seen = []
    for frame_idx, _, _ in predictor.propagate_in_video(session):
        seen.append(frame_idx)
        assert asked == list(range(1, min(frame_idx + 2, 3)))  # the next one was asked for before this one came
    assert seen == [0, 1, 2] and asked == [1, 2]  # frame 0's features were cached by the prompt: not decoded again


def test_frames_cross_to_a_forked_worker_and_prefetch_there(jpeg_folder):
    """ZeroGPU's workers are forked from the server and get the frames pickled: the copy leaves this process's
    prefetch threads and locks behind, and the child decodes ahead with a pool of its own."""
    import multiprocessing
    import pickle

    frames = VideoFrames(jpeg_folder)
    frames.prefetch(1, 64)  # this process's pool has a thread now: the child must not wait on it
    expected = frames.model_input(1, 64, torch.device("cpu"))
    frames.prefetch(2, 64)
    copy = pickle.loads(pickle.dumps(frames))
    assert copy._prefetched == {} and torch.equal(copy.model_input(1, 64, torch.device("cpu")), expected)

    def child(payload: bytes, out: multiprocessing.queues.Queue) -> None:
        received = pickle.loads(payload)
        received.prefetch(1, 64)
        pending = received._prefetched[(1, 64)]
        out.put(pending.result(timeout=600).shape)  # run by the child's own pool: a lost thread never finishes it

    context = multiprocessing.get_context("fork")
    out = context.Queue()
    worker = context.Process(target=child, args=(pickle.dumps(frames), out))
    worker.start()
    assert out.get(timeout=600) == (64, 64, 3)
    worker.join(timeout=600)
    assert worker.exitcode == 0
    frames.close()
