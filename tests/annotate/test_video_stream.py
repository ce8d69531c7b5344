"""VideoStream (lazy, strided, windowed decoding), video lengths, and naming videos in a dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from annotate.previews import write_h264
from annotate.video_stream import VideoStream, is_video, video_length
from annotate.videos import VideoTask, find_videos, plan_videos


def numbered_frames(count: int) -> list[np.ndarray]:
    """Frame t is flat grey level 10 * t (so a decoded frame says which it is)."""
    return [np.full((32, 48, 3), 10 * t, np.uint8) for t in range(count)]


@pytest.fixture
def clip(tmp_path) -> Path:
    return write_h264(numbered_frames(12), tmp_path / "clip.mp4", fps=12)


def level(image: np.ndarray) -> int:
    return round(float(image.mean()) / 10)


def test_the_tracker_reads_a_stream_in_order_without_decoding_ahead(clip):
    """The tracker asks for the next frame ahead (`prefetch`) before reading this one: a stream decodes in order on
    the caller's thread, so nothing is decoded ahead and every frame reads as it was."""
    import torch

    stream = VideoStream(clip)
    for index in range(3):
        stream.prefetch(index + 1, 64)
        frame = stream.model_input(index, 64, torch.device("cpu"))
        assert frame.shape == (1, 3, 64, 64) and frame.dtype == torch.float32
        assert level(stream.rgb(index)) == index
    assert stream._prefetched == {}
    stream.close()


def test_every_stride_th_frame_decoded_forward_with_a_window(clip):
    stream = VideoStream(clip, stride=3, window=2)
    assert (stream.num_frames, stream.video_frames, stream.fps) == (4, 12, 12.0)
    assert (stream.height, stream.width) == (32, 48)
    assert [stream.video_frame(i) for i in range(4)] == [0, 3, 6, 9]
    assert [level(stream.rgb(i)) for i in range(4)] == [0, 3, 6, 9]
    assert level(stream.rgb(2)) == 6  # within the window
    with pytest.raises(RuntimeError, match="no longer buffered"):
        stream.rgb(0)
    with pytest.raises((IndexError, ValueError)):
        stream.rgb(4)
    stream.close()


def test_unreadable_videos_raise_value_errors_naming_them(tmp_path, clip):
    (tmp_path / "junk.mp4").write_bytes(b"not a video")
    with pytest.raises(ValueError, match=r"junk\.mp4"):
        VideoStream(tmp_path / "junk.mp4")
    with pytest.raises(ValueError, match=r"junk\.mp4"):
        video_length(tmp_path / "junk.mp4")
    with pytest.raises(ValueError, match="pixels"):
        VideoStream(clip, max_pixels=100)
    with pytest.raises(ValueError, match="stride"):
        VideoStream(clip, stride=0)
    assert video_length(clip) == (12, 12.0)


def test_webm_without_a_frame_count_in_its_header(tmp_path):
    import av

    path = tmp_path / "clip.webm"
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libvpx-vp9", rate=10)
        stream.width, stream.height, stream.pix_fmt = 48, 32, "yuv420p"
        for image in numbered_frames(7):
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())
    assert video_length(path)[0] == 7
    assert VideoStream(path, stride=2).num_frames == 4


def test_finding_and_naming_videos(tmp_path):
    for name in ("a.mp4", "a.mov", "b.MKV", "sub/c.webm", ".hidden/d.mp4", "notes.txt", "photos/e.avi"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    videos = find_videos(tmp_path)
    assert [v.relative_to(tmp_path).as_posix() for v in videos] == [
        "a.mov",
        "a.mp4",
        "b.MKV",
        "photos/e.avi",
        "sub/c.webm",
    ]
    assert is_video(Path("x.M4V")) and not is_video(Path("x.jpg"))
    tasks = plan_videos(tmp_path, videos, image_keys=["photos/e/001", "photos/cat"])
    assert [t.key for t in tasks] == ["a_mov", "a_mp4", "b", "photos/e_avi", "sub/c"]  # no two share a folder
    assert [t.sequence for t in tasks] == ["a_mov", "a_mp4", "b", "photos__e_avi", "sub__c"]  # flat
    assert plan_videos(tmp_path / "a.mp4", [tmp_path / "a.mp4"], [])[0].key == "a"  # one video file
    clashing = plan_videos(tmp_path, [tmp_path / "a" / "b.mp4", tmp_path / "a__b.mp4", tmp_path / "images.mp4"], [])
    assert [(t.key, t.sequence) for t in clashing] == [("a/b", "a__b"), ("a__b", "a__b_2"), ("images_", "images_")]
    task = VideoTask(tmp_path / "sub" / "c.webm", "sub/c")
    assert (task.frame_key(120), task.frame_file(7)) == ("sub/c/000120", "images/sub/c/000007.jpg")
    assert VideoTask.from_dict(task.to_dict()) == task
