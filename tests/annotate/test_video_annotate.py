"""auto_annotate on videos, end to end with an untrained SAM 2: every file of the dataset, readers of each format,
resume, crash safety, bad videos, the summary, memory in video length. (The association logic itself is proven
against scripted ground truth in test_video_tracks.py: random weights make meaningless masks.)"""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from annotate import AnnotationSummary, auto_annotate
from annotate.previews import write_h264

from .clips import FRAMES, HEIGHT, WIDTH, ColourDetector, clip_frames, use_colour_tracker


@pytest.fixture
def media(tmp_path, scene_image) -> Path:
    """media/: clips/street.mp4 (14 frames) and a photo."""
    folder = tmp_path / "media"
    write_h264(clip_frames(), folder / "clips" / "street.mp4", fps=10)
    cv2.imwrite(str(folder / "photo.png"), scene_image[:, :, ::-1])
    return folder


def run(media: Path, model, **kwargs):
    options = {"det_model": ColourDetector(), "sam_model": model, "progress": False, "keyframe_interval": 4}
    return auto_annotate(media, **{**options, **kwargs})


def test_a_video_becomes_frames_labels_tracks_vis_and_preview(media, small_model):
    ticks: list[tuple[int, int]] = []
    summary = run(
        media, small_model, formats=["yolo", "coco", "masks"], preview=True, progress=lambda d, t: ticks.append((d, t))
    )
    output = Path(summary.output_dir)
    frames = sorted((output / "images" / "clips" / "street").iterdir())
    assert [f.name for f in frames] == [f"{i:06d}.jpg" for i in range(FRAMES)]
    assert cv2.imread(str(frames[0])).shape == (HEIGHT, WIDTH, 3)
    labels = sorted((output / "labels" / "clips" / "street").iterdir())
    assert [f.stem for f in labels] == [f.stem for f in frames]
    assert (output / "labels" / "photo.txt").is_file()  # the photo is annotated in the same run
    assert ticks[-1] == (1 + FRAMES, 1 + FRAMES)  # one unit per image and per frame

    (video,) = summary.videos
    assert video["key"] == "clips/street" and video["frames"] == FRAMES and video["failure"] is None
    assert video["tracks"] == video["tracks_started"] >= 1
    assert set(video["tracks_by_class"]) <= {"red", "green"}
    assert sum(video["instances"].values()) == sum(len(f.read_text().splitlines()) for f in labels)

    results = [line.split(",") for line in (output / "tracks" / "clips__street.txt").read_text().splitlines()]
    assert len(results) == sum(video["instances"].values())
    for frame, track_id, left, top, w, h, score, *unused in results:  # MOT results: frames from 1
        assert 1 <= int(frame) <= FRAMES and int(track_id) >= 1 and unused == ["-1", "-1", "-1"]
        assert float(left) >= 0 and float(left) + float(w) <= WIDTH and float(top) + float(h) <= HEIGHT
        assert 0 < float(score) <= 1
    gt = (output / "mot" / "clips__street" / "gt" / "gt.txt").read_text().splitlines()
    assert [row.split(",")[:6] for row in gt] == [row[:6] for row in results]  # the same tracks, as ground truth
    assert {row.split(",", 6)[6] for row in gt} <= {"1,1,1", "1,2,1"}  # consider, class + 1, visibility

    coco = json.loads(Path(summary.coco_json).read_text())
    frame_annotations = [a for a in coco["annotations"] if "track_id" in a]
    assert len(frame_annotations) == len(results)
    assert len(coco["images"]) == 1 + FRAMES
    masks = sorted((output / "masks" / "clips" / "street").iterdir())
    assert len(masks) == FRAMES and all(p.name.startswith("track_") for m in masks for p in m.iterdir())

    import av

    with av.open(str(output / "previews" / "clips" / "street.mp4")) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert sum(1 for _ in container.decode(stream)) == FRAMES
    assert summary.files["vis"] == str(output / "vis.json")
    assert not list(output.rglob("*.tmp"))
    assert not list((output / ".auto_annotate" / "tracking").rglob("*.jsonl"))  # the working file is gone
    saved = json.loads((output / "summary.json").read_text())
    assert saved["videos"][0]["source"] == "clips/street.mp4"  # relative to the input folder
    assert "1 video (14 frames)" in str(summary)


def test_frames_pass_ultralytics_checker_and_loader(media, small_model):
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset, verify_image_label

    summary = run(media, small_model)
    output = Path(summary.output_dir)
    for image in sorted((output / "images" / "clips").rglob("*.jpg")):
        label = output / "labels" / image.relative_to(output / "images").with_suffix(".txt")
        result = verify_image_label((str(image), str(label), "", False, 2, 0, 0, False))
        assert "ignoring corrupt" not in result[-1] and "WARNING" not in result[-1], result[-1]
        assert result[5] == 0 and result[8] == 0  # nothing missing, nothing corrupt
    data = check_det_dataset(str(output / "data.yaml"))
    files = set()
    for side in ("train", "val"):  # the video on one side, the photo on the other
        dataset = YOLODataset(img_path=data[side], data=data, task="segment", augment=False, imgsz=96, cache=False)
        files.add(
            frozenset(Path(label["im_file"]).relative_to(output / "images").as_posix() for label in dataset.labels)
        )
    assert files == {frozenset({"photo.png"}), frozenset(f"clips/street/{i:06d}.jpg" for i in range(FRAMES))}
    assert data["names"] == {0: "red", 1: "green"}


def test_resume_redoes_nothing_and_overwrite_redoes_the_video(media, small_model, monkeypatch):
    use_colour_tracker(monkeypatch)  # what is redone is the question here, not the masks
    first = run(media, small_model, formats=["yolo", "coco"])
    output = Path(first.output_dir)
    kept = ("labels/clips/street/000003.txt", "mot/clips__street/gt/gt.txt", "mot/clips__street/seqinfo.ini",
            "mot/clips__street/img1/000004.jpg", "tracks/clips__street.txt",
            ".auto_annotate/vis/clips/street.jsonl")  # fmt: skip
    before = {name: (output / name).stat().st_mtime_ns for name in kept}
    vis = (output / "vis.json").read_text()
    detector = ColourDetector()
    second = run(media, small_model, det_model=detector, formats=["yolo", "coco"])
    assert detector.calls == 0 and second.skipped == 2 and second.videos == []
    assert {name: (output / name).stat().st_mtime_ns for name in kept} == before  # nothing rewritten
    assert (
        json.loads(Path(second.coco_json).read_text())["images"]
        == json.loads(Path(first.coco_json).read_text())["images"]
    )
    assert (output / "vis.json").read_text() == vis  # rebuilt from the parts, the same
    third = run(media, small_model, det_model=detector, overwrite=True)
    assert detector.calls > 0 and third.videos[0]["frames"] == FRAMES


def test_a_killed_run_leaves_no_half_written_file_and_the_rerun_finishes(media, small_model):
    class Killed(ColourDetector):
        def __call__(self, image):
            if self.calls == 3:  # the photo, keyframes 0 and 4, then stopped at keyframe 8
                raise KeyboardInterrupt
            return super().__call__(image)

    with pytest.raises(KeyboardInterrupt):
        run(media, small_model, det_model=Killed(), formats=["yolo", "coco"], preview=True)
    output = media.parent / "media_auto_annotate_labels"
    assert not [p for p in output.rglob("*") if p.name.startswith(".") and p.is_file()]  # no staging file
    assert not (output / "tracks" / "clips" / "street.txt").exists()
    assert not (output / ".auto_annotate" / "videos").exists()  # not marked done
    assert not (output / "images" / "clips").exists()  # the dataset never shows a frame without its label
    staged = list((output / ".auto_annotate" / "frames").rglob("*.jpg"))
    assert staged and all(cv2.imread(str(frame)) is not None for frame in staged)  # every frame written is whole
    summary = run(media, small_model, formats=["yolo", "coco"])
    assert summary.videos[0]["frames"] == FRAMES and summary.videos[0]["failure"] is None


def test_a_corrupt_video_is_skipped_and_reported_and_the_run_goes_on(media, small_model):
    (media / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(500))
    good = (media / "clips" / "street.mp4").read_bytes()
    (media / "cut.mov").write_bytes(good[: len(good) // 2])  # truncated midway
    summary = run(media, small_model)
    by_key = {v["key"]: v for v in summary.videos}
    assert by_key["clips/street"]["failure"] is None
    assert "Could not read the video" in by_key["broken"]["failure"]
    assert summary.failed_videos >= 1
    failed = dict(summary.failures)
    assert str(media / "broken.mp4") in failed
    assert "cut.mov" in by_key["cut"]["failure"]  # its index is at the end: unreadable, said by name
    records = Path(summary.output_dir) / ".auto_annotate" / "videos"
    assert sorted(p.name for p in records.rglob("*.json")) == ["street.json"]  # failures are not marked done
    assert (Path(summary.output_dir) / "labels" / "photo.txt").is_file()


def test_a_video_that_breaks_midway_fails_alone_and_leaves_nothing(media, small_model, monkeypatch):
    from annotate import video_stream

    real = video_stream.VideoStream._decode_next

    def corrupt_at_nine(self):
        if self._next_video_frame == 9:
            raise ValueError(f"Could not decode frame 9 of {self.source}: InvalidDataError")
        return real(self)

    monkeypatch.setattr(video_stream.VideoStream, "_decode_next", corrupt_at_nine)
    summary = run(media, small_model, formats=["yolo", "coco", "masks"])
    (video,) = summary.videos
    assert "Could not decode frame 9" in video["failure"] and "street.mp4" in video["failure"]
    output = Path(summary.output_dir)
    for folder in ("images", "labels", "masks", "tracks", "mot", ".auto_annotate/frames", ".auto_annotate/videos"):
        assert not list((output / folder).rglob("*street*")), folder
    assert (output / "labels" / "photo.txt").is_file() and summary.processed == 1


def test_a_single_video_file_and_frame_stride(media, small_model, tmp_path):
    summary = run(media / "clips" / "street.mp4", small_model, frame_stride=3, output_dir=tmp_path / "out")
    names = sorted(p.name for p in (tmp_path / "out" / "images" / "street").iterdir())
    assert names == [f"{i:06d}.jpg" for i in range(0, FRAMES, 3)]  # named by their number in the video
    assert summary.videos[0]["frames"] == len(names) == 5
    sequence = tmp_path / "out" / "mot" / "street"
    mot_frames = {int(line.split(",")[0]) for line in (sequence / "gt" / "gt.txt").read_text().splitlines()}
    assert mot_frames <= {1, 2, 3, 4, 5}  # MOT frames: the written frames, from 1
    assert (
        "seqLength=5\n" in (sequence / "seqinfo.ini").read_text()
        and "frameRate=3\n" in (sequence / "seqinfo.ini").read_text()
    )
    for n in range(1, 6):  # frame N of the sequence is written frame N: video frame 3 * (N - 1)
        assert os.path.samefile(
            sequence / "img1" / f"{n:06d}.jpg", tmp_path / "out" / "images" / "street" / f"{3 * (n - 1):06d}.jpg"
        )


def test_max_tracks_bounds_the_tracks_and_the_summary_says_so(media, small_model):
    summary = run(media, small_model, max_tracks=1)  # the clip has a red and a green square
    (video,) = summary.videos
    assert video["tracks_started"] <= 1 and video["untracked_detections"] > 0
    assert f"{video['untracked_detections']} detections not tracked (max_tracks reached)" in str(summary)
    written = json.loads((Path(summary.output_dir) / "summary.json").read_text())
    assert written["videos"][0]["untracked_detections"] == video["untracked_detections"]
    assert "not tracked" not in str(run(media, small_model, overwrite=True))  # no cap: every object tracked


def test_video_settings_are_validated_before_any_work(media, small_model):
    for bad in ({"keyframe_interval": 0}, {"frame_stride": 0}, {"match_iou": 0}, {"reprompt_iou": 2.0}):
        with pytest.raises(ValueError, match="must be"):
            run(media, small_model, **bad)
    with pytest.raises(ValueError, match="one video file"):
        run(media / "photo.png", small_model)


def test_memory_is_flat_in_the_video_length(tmp_path, small_model, monkeypatch):
    """The same scene at two lengths: what the tracker holds (session tensors, stored masks, decoded frames)
    peaks at the same size, because final frames are forgotten and frames are decoded as they are read."""
    from annotate.sam2_tracker import Sam2FrameTracker

    class FirstFrameOnly(ColourDetector):  # one object, found once: the state depends only on the window
        def __call__(self, image):
            found = super().__call__(image)
            return found[found.class_id == 0] if self.calls == 1 else sv.Detections.empty()

    peaks: dict[str, int] = {}
    real_forward = Sam2FrameTracker.forward

    def measured(self, start, stop):
        for frame, masks in real_forward(self, start, stop):
            stored = sum(len(track.masks) for track in self.session.tracks)
            for name, value in (("tensors", self.session.tensor_bytes()), ("masks", stored),
                                ("frames", self.stream.frames_in_memory)):  # fmt: skip
                peaks[name] = max(peaks.get(name, 0), value)
            yield frame, masks

    monkeypatch.setattr(Sam2FrameTracker, "forward", measured)
    measured_peaks = []
    for length in (40, 80):
        clip = tmp_path / f"clip_{length}.mp4"
        frames = [np.roll(clip_frames(1, 48, 64)[0], 2 * t, axis=1) for t in range(length)]  # a square that wraps
        write_h264(frames, clip, fps=10)
        peaks.clear()
        summary = auto_annotate(
            clip, det_model=FirstFrameOnly(), sam_model=small_model, output_dir=tmp_path / f"out_{length}",
            keyframe_interval=5, end_after=1000, progress=False,
        )  # fmt: skip
        assert summary.videos[0]["frames"] == length and summary.videos[0]["tracks"] == 1
        measured_peaks.append(dict(peaks))
    short, long = measured_peaks
    assert long == short, f"the tracker's state grew with the video: {short} -> {long}"
    assert short["frames"] <= 2 * 5 + 4 and short["masks"] <= 2 * 5 + 2


def test_cli_annotates_a_video_with_its_flags(tmp_path, capsys, monkeypatch):
    from annotate.__main__ import main as cli_main

    monkeypatch.chdir(tmp_path)  # ultralytics would look for (and download) yolo11n.pt here
    clip = tmp_path / "clip.mp4"
    write_h264(clip_frames(6, 48, 64), clip, fps=10)
    code = cli_main([
        str(clip), "--untrained", "--det-model", "yolo11n.pt", "--sam-model", "sam2.1_t.pt", "--device", "cpu",
        "--output", str(tmp_path / "out"), "--no-progress", "--keyframe-interval", "2", "--frame-stride", "2",
        "--match-iou", "0.3", "--reprompt-iou", "0.6", "--end-after", "3", "--preview",
    ])  # fmt: skip
    assert code == 0
    out = capsys.readouterr().out
    assert "1 video (3 frames)" in out
    assert sorted(p.name for p in (tmp_path / "out" / "images" / "clip").iterdir()) == [
        "000000.jpg",
        "000002.jpg",
        "000004.jpg",
    ]
    assert (tmp_path / "out" / "previews" / "clip.mp4").is_file()

    seen = {}
    monkeypatch.setattr("annotate.pipeline.auto_annotate", lambda *a, **k: seen.update(k) or AnnotationSummary())
    flags = ["--keyframe-interval", "7", "--frame-stride", "3", "--match-iou", "0.4", "--reprompt-iou", "0.8",
             "--end-after", "5", "--preview", "--val-fraction", "0.25", "--max-tracks", "4"]  # fmt: skip
    assert cli_main([str(clip), *flags]) == 0
    assert {k: seen[k] for k in ("keyframe_interval", "frame_stride", "match_iou", "reprompt_iou", "end_after",
                                 "preview", "val_fraction", "max_tracks")} == {"keyframe_interval": 7,
                                 "frame_stride": 3, "match_iou": 0.4, "reprompt_iou": 0.8, "end_after": 5,
                                 "preview": True, "val_fraction": 0.25, "max_tracks": 4}  # fmt: skip
    assert cli_main([str(clip)]) == 0 and seen["val_fraction"] == 0.1  # the default
