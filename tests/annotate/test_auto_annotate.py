"""auto_annotate end to end on small folders: the dataset, COCO, resume, crash safety, bad files, detectors, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
import torch
import yaml

from annotate import AnnotationSummary, auto_annotate
from annotate import writers as writers_module
from annotate.__main__ import main as cli_main


class SquareAndDiscDetector:
    """A deterministic detector: two boxes on 'busy' images (top-left pixel not black), none on black ones."""

    def __init__(self) -> None:
        self.names = {0: "square", 1: "disc"}
        self.calls = 0

    def __call__(self, image: np.ndarray) -> sv.Detections:
        self.calls += 1
        if not image[0, 0].any():
            return sv.Detections.empty()
        h, w = image.shape[:2]
        return sv.Detections(
            xyxy=np.array([[w * 0.1, h * 0.1, w * 0.5, h * 0.6], [w * 0.55, h * 0.4, w * 0.95, h * 0.95]]),
            class_id=np.array([0, 1]),
            confidence=np.array([0.9, 0.8]),
        )


def make_folder(root: Path, scene_image: np.ndarray) -> Path:
    """photos/: 2 busy images (same pixels: one SAM 2 encoding), a black one, a nested one, a stem clash, a note."""
    folder = root / "photos"
    (folder / "nested" / "deeper").mkdir(parents=True)
    bgr = scene_image[:, :, ::-1]
    cv2.imwrite(str(folder / "a.jpg"), bgr, [cv2.IMWRITE_JPEG_QUALITY, 100])
    cv2.imwrite(str(folder / "a.png"), bgr)  # same stem as a.jpg: must get its own label file
    cv2.imwrite(str(folder / "black.png"), np.zeros((64, 96, 3), np.uint8))
    cv2.imwrite(str(folder / "nested" / "deeper" / "b.png"), bgr)
    (folder / "notes.txt").write_text("not an image")
    return folder


@pytest.fixture
def folder(tmp_path, scene_image) -> Path:
    return make_folder(tmp_path, scene_image)


def label_files(output: Path) -> dict[str, list[str]]:
    return {
        p.relative_to(output / "labels").as_posix(): p.read_text().splitlines()
        for p in sorted((output / "labels").rglob("*.txt"))
    }


def test_dataset_layout_and_one_line_per_instance(folder, tiny_model):
    summary = auto_annotate(folder, det_model=SquareAndDiscDetector(), sam_model=tiny_model, progress=False)
    output = folder.parent / "photos_auto_annotate_labels"
    labels = label_files(output)
    assert set(labels) == {"a_jpg.txt", "a_png.txt", "black.txt", "nested/deeper/b.txt"}
    assert labels["black.txt"] == []  # processed, nothing found: an empty file
    for name in ("a_jpg.txt", "a_png.txt", "nested/deeper/b.txt"):
        assert [line.split()[0] for line in labels[name]] == ["0", "1"]
        for line in labels[name]:
            values = [float(v) for v in line.split()[1:]]
            assert len(values) >= 6 and len(values) % 2 == 0 and all(0 <= v <= 1 for v in values)
    assert (output / "images" / "a_jpg.jpg").resolve() == (folder / "a.jpg").resolve()
    assert (output / "images" / "nested" / "deeper" / "b.png").exists()
    data = yaml.safe_load((output / "data.yaml").read_text())
    assert data["names"] == {0: "square", 1: "disc"}
    assert "path" not in data and (data["train"], data["val"]) == ("train.txt", "val.txt")  # relative: it can move
    train, val = ((output / name).read_text().splitlines() for name in ("train.txt", "val.txt"))
    assert len(val) == 1 and sorted(train + val) == [  # 4 images, 0.1 of them: one held out
        "./images/a_jpg.jpg", "./images/a_png.png", "./images/black.png", "./images/nested/deeper/b.png",
    ]  # fmt: skip
    assert summary.split == {"val_fraction": 0.1, "train": 3, "val": 1, "train_videos": 0, "val_videos": 0,
                             "val_is_train": False}  # fmt: skip

    assert isinstance(summary, AnnotationSummary)
    assert (summary.images, summary.labelled, summary.no_detections, summary.skipped, summary.failed) == (4, 3, 1, 0, 0)
    assert summary.instances == {"square": 3, "disc": 3}
    assert json.loads((output / "summary.json").read_text())["labelled"] == 3


def test_labels_pass_ultralytics_checker_and_loader(folder, tiny_model):
    from ultralytics.data.dataset import YOLODataset
    from ultralytics.data.utils import check_det_dataset, verify_image_label

    output = folder.parent / "dataset"
    auto_annotate(folder, det_model=SquareAndDiscDetector(), sam_model=tiny_model, output_dir=output, progress=False)
    for image in sorted((output / "images").rglob("*.*")):
        label = output / "labels" / image.relative_to(output / "images").with_suffix(".txt")
        # (im_file, lb_file, prefix, keypoint, num_cls, nkpt, ndim, single_cls)
        result = verify_image_label((str(image), str(label), "", False, 2, 0, 0, False))
        message = result[-1]
        assert "ignoring corrupt" not in message and "WARNING" not in message, message
        _, rows, _, segments, _, missing, found, empty, corrupt, _ = result
        expected = 0 if image.name == "black.png" else 2
        assert (missing, corrupt) == (0, 0)
        assert len(rows) == len(segments) == expected  # the label rows ultralytics keeps
        assert (found, empty) == (1, int(expected == 0))  # an empty file reads as "processed, nothing found"

    moved = shutil.copytree(output, folder.parent / "moved" / "dataset", symlinks=True)  # a dataset moves whole
    data = check_det_dataset(str(moved / "data.yaml"))
    assert Path(data["train"]) == (moved / "train.txt").resolve()
    counts = {}
    for side in ("train", "val"):
        dataset = YOLODataset(img_path=data[side], data=data, task="segment", augment=False, imgsz=160, cache=False)
        counts.update({Path(label["im_file"]).name: len(label["cls"]) for label in dataset.labels})
        assert all(len(label["segments"]) == len(label["cls"]) for label in dataset.labels)
    assert counts == {"a_jpg.jpg": 2, "a_png.png": 2, "black.png": 0, "b.png": 2}


def test_coco_json_loads_with_pycocotools(folder, tiny_model):
    from pycocotools.coco import COCO

    summary = auto_annotate(
        folder, det_model=SquareAndDiscDetector(), sam_model=tiny_model, formats=["yolo", "coco"], progress=False
    )
    coco = COCO(summary.coco_json)
    assert {c["name"] for c in coco.loadCats(coco.getCatIds())} == {"square", "disc"}
    assert len(coco.getImgIds()) == 4 and len(coco.getAnnIds()) == 6
    for annotation in coco.loadAnns(coco.getAnnIds()):
        image = coco.loadImgs(annotation["image_id"])[0]
        mask = coco.annToMask(annotation)
        assert mask.shape == (image["height"], image["width"])
        assert annotation["area"] == int(mask.sum()) > 0
        assert (Path(summary.output_dir) / "images" / image["file_name"]).exists()  # relative to images/


def test_resume_skips_finished_images_and_overwrite_redoes_them(folder, tiny_model):
    detector = SquareAndDiscDetector()
    first = auto_annotate(folder, det_model=detector, sam_model=tiny_model, progress=False)
    output = Path(first.output_dir)
    before = label_files(output)
    calls = detector.calls
    (output / "labels" / "black.txt").unlink()

    second = auto_annotate(folder, det_model=detector, sam_model=tiny_model, progress=False)
    assert (second.skipped, second.no_detections, second.labelled) == (3, 1, 0)
    assert detector.calls == calls + 1  # only black.png was detected again
    assert label_files(output) == before

    third = auto_annotate(folder, det_model=detector, sam_model=tiny_model, overwrite=True, progress=False)
    assert (third.skipped, third.labelled, third.no_detections) == (0, 3, 1)
    # asking for COCO later redoes images that have no COCO part yet
    fourth = auto_annotate(folder, det_model=detector, sam_model=tiny_model, formats=["coco"], progress=False)
    assert fourth.skipped == 0 and fourth.coco_json


def test_a_crash_mid_run_leaves_no_partial_file_and_the_rerun_finishes(folder, tiny_model):
    class CrashingDetector(SquareAndDiscDetector):
        def __call__(self, image):
            if self.calls == 2:
                raise KeyboardInterrupt  # the process is stopped in the middle of the run
            return super().__call__(image)

    with pytest.raises(KeyboardInterrupt):
        auto_annotate(folder, det_model=CrashingDetector(), sam_model=tiny_model, batch_size=1, progress=False)
    output = folder.parent / "photos_auto_annotate_labels"
    written = label_files(output)
    assert 0 < len(written) < 4
    assert not list(output.rglob("*.tmp"))
    for lines in written.values():
        assert all(len(line.split()) >= 7 for line in lines)  # complete lines only

    summary = auto_annotate(folder, det_model=SquareAndDiscDetector(), sam_model=tiny_model, progress=False)
    assert summary.skipped == len(written) and summary.skipped + summary.processed == 4


def test_a_failing_write_keeps_the_old_file_whole(tmp_path, monkeypatch):
    target = tmp_path / "labels" / "x.txt"
    writers_module.write_atomic(target, "0 0.1 0.1 0.2 0.2 0.3 0.1\n")

    def disk_full(_fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writers_module.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space"):
        writers_module.write_atomic(target, "1 " * 10_000)
    assert target.read_text() == "0 0.1 0.1 0.2 0.2 0.3 0.1\n"
    assert [p.name for p in target.parent.iterdir()] == ["x.txt"]


def test_bad_files_are_skipped_reported_and_the_run_goes_on(folder, tiny_model):
    (folder / "truncated.jpg").write_bytes((folder / "a.jpg").read_bytes()[:400])
    (folder / "empty.png").write_bytes(b"")
    (folder / "text_named.jpg").write_text("I am not a JPEG")
    summary = auto_annotate(folder, det_model=SquareAndDiscDetector(), sam_model=tiny_model, progress=False)
    failed = {Path(path).name: reason for path, reason in summary.failures}
    assert set(failed) == {"truncated.jpg", "empty.png", "text_named.jpg"}
    assert "empty" in failed["empty.png"]
    assert summary.failed == 3 and summary.processed == 4
    text = str(summary)
    for name in failed:
        assert name in text
    assert not (Path(summary.labels_dir) / "truncated.txt").exists()  # not processed: no label


def test_a_detector_that_breaks_on_one_image_fails_only_that_image(folder, tiny_model):
    class Picky(SquareAndDiscDetector):
        def __call__(self, image):
            if image.shape[:2] == (64, 96):
                return "not detections"  # the black image gets a wrong type back
            return super().__call__(image)

    summary = auto_annotate(folder, det_model=Picky(), sam_model=tiny_model, progress=False)
    assert summary.failed == 1 and "supervision.Detections" in summary.failures[0][1]
    assert summary.labelled == 3


def test_classes_filter_and_class_names(folder, tiny_model):
    summary = auto_annotate(
        folder, det_model=SquareAndDiscDetector(), sam_model=tiny_model, classes=[1], progress=False,
        class_names=["box", "ball"],
    )  # fmt: skip
    assert summary.instances == {"ball": 3}
    labels = label_files(Path(summary.output_dir))
    assert all(line.startswith("1 ") for lines in labels.values() for line in lines)


def test_yolo_detector_path_and_thread_count(folder, tiny_model, yolo_detector):
    threads = torch.get_num_threads()
    summary = auto_annotate(
        folder, det_model=yolo_detector, sam_model=tiny_model, conf=0.0, max_det=3, progress=False, batch_size=2
    )
    assert torch.get_num_threads() == threads  # ultralytics must not leave SAM 2 on fewer threads
    labels = label_files(Path(summary.output_dir))
    assert {name: len(lines) for name, lines in labels.items()} == {
        "a_jpg.txt": 3, "a_png.txt": 3, "black.txt": 3, "nested/deeper/b.txt": 3,
    }  # fmt: skip
    data = yaml.safe_load((Path(summary.output_dir) / "data.yaml").read_text())
    assert len(data["names"]) == 80  # the detector's classes


def test_missing_and_empty_folders(tmp_path, tiny_model):
    with pytest.raises(FileNotFoundError, match="Input not found"):
        auto_annotate(tmp_path / "nope", det_model=SquareAndDiscDetector(), sam_model=tiny_model)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no images here")
    with pytest.raises(ValueError, match="No images or videos found"):
        auto_annotate(tmp_path / "empty", det_model=SquareAndDiscDetector(), sam_model=tiny_model)
    with pytest.raises(ValueError, match="Unknown output format"):
        auto_annotate(tmp_path / "empty", det_model=SquareAndDiscDetector(), sam_model=tiny_model, formats=["voc"])


def test_cli(folder, tmp_path, checkpoints, yolo_detector, capsys):
    detector_file = tmp_path / "detector.pt"
    yolo_detector.save(detector_file)
    output = tmp_path / "cli_dataset"
    code = cli_main([
        str(folder), "--det-model", str(detector_file), "--sam-model", str(checkpoints.meta), "--device", "cpu",
        "--conf", "0", "--max-det", "2", "--output", str(output), "--format", "yolo", "coco", "--no-progress",
    ])  # fmt: skip
    assert code == 0
    assert "4 images" in capsys.readouterr().out
    assert (output / "annotations.json").exists() and len(label_files(output)) == 4

    assert cli_main([str(tmp_path / "missing")]) == 2
    assert "Input not found" in capsys.readouterr().err


def test_cli_untrained_runs_offline_and_says_so(folder, tmp_path, capsys, monkeypatch):
    """`--untrained`: random SAM 2 weights for --sam-model's architecture, a YOLO built from its yaml; no download."""
    monkeypatch.chdir(tmp_path)  # ultralytics would look for (and download) yolo11n.pt here
    output = tmp_path / "offline"
    code = cli_main([
        str(folder), "--untrained", "--det-model", "yolo11n.pt", "--sam-model", "sam2.1_t.pt", "--device", "cpu",
        "--output", str(output), "--no-progress",
    ])  # fmt: skip
    assert code == 0
    assert "WARNING: untrained (random) weights" in capsys.readouterr().err
    assert len(label_files(output)) == 4 and not (tmp_path / "yolo11n.pt").exists()


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli_main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for flag in ("--det-model", "--sam-model", "--output", "--format", "--overwrite", "--min-mask-area", "--simplify"):
        assert flag in out


def test_output_inside_the_input_folder_is_not_read_as_input(folder, tiny_model):
    first = auto_annotate(
        folder, det_model=SquareAndDiscDetector(), sam_model=tiny_model, output_dir=folder / "out", progress=False
    )
    second = auto_annotate(
        folder, det_model=SquareAndDiscDetector(), sam_model=tiny_model, output_dir=folder / "out", progress=False
    )
    assert first.images == second.images == 4 and second.skipped == 4
    shutil.rmtree(folder / "out")


def test_done_is_recorded_by_the_run_and_every_format_is_resumable(folder, tiny_model):
    first = auto_annotate(
        folder, det_model=SquareAndDiscDetector(), sam_model=tiny_model, formats=["masks"], progress=False
    )
    output = Path(first.output_dir)
    assert first.files["masks"] == str(output / "masks") and first.data_yaml  # yolo is always among the formats
    pngs = sorted(p.name for p in (output / "masks" / "nested" / "deeper" / "b").iterdir())
    assert pngs == ["0.png", "1.png"] and list((output / "masks" / "black").iterdir()) == []
    # a label file alone does not make an image done: the run's record does (here one is lost, as in a crash
    # between writing the formats and recording the image)
    (output / ".auto_annotate" / "done" / "a_png.done").unlink()
    detector = SquareAndDiscDetector()
    second = auto_annotate(folder, det_model=detector, sam_model=tiny_model, formats=["masks"], progress=False)
    assert (second.skipped, second.processed, detector.calls) == (3, 1, 1)
    # a format missing for some images (its folder deleted) redoes exactly those
    shutil.rmtree(output / "masks" / "nested")
    third = auto_annotate(folder, det_model=detector, sam_model=tiny_model, formats=["masks"], progress=False)
    assert (third.skipped, third.processed) == (3, 1)
    assert (output / "masks" / "nested" / "deeper" / "b" / "1.png").exists()


def test_unknown_format_is_refused_before_any_work(folder, tiny_model):
    with pytest.raises(ValueError, match="Unknown output format 'tiff': choose from yolo, coco, masks"):
        auto_annotate(folder, det_model=SquareAndDiscDetector(), sam_model=tiny_model, formats=["tiff"])
    assert not (folder.parent / "photos_auto_annotate_labels").exists()


def test_auto_models_follow_the_apps_rule_by_device():
    from annotate.detectors import resolve_auto_detector
    from annotate.settings import DetectorSettings, detector_for_device
    from app.settings import model_for_device
    from sam2_model import load_model

    assert [detector_for_device("auto", t) for t in ("cpu", "mps", "cuda")] == [
        "yolo11n.pt",
        "yolo11n.pt",
        "yolo11x.pt",
    ]
    assert [model_for_device("auto", t) for t in ("cpu", "mps", "cuda")] == [
        "sam2.1_t.pt",
        "sam2.1_t.pt",
        "sam2.1_b.pt",
    ]
    assert detector_for_device("yolo11s.pt", "cpu") == "yolo11s.pt"  # an explicit model wins
    assert resolve_auto_detector("auto", DetectorSettings(device="cpu")) == "yolo11n.pt"
    assert load_model("auto", "cpu", untrained=True).spec.asset_name == "sam2.1_t.pt"


def test_cli_defaults_are_auto_and_an_offline_failure_names_the_way_to_try_it(folder, capsys, monkeypatch):
    seen = {}

    def run(*args, **kwargs):
        seen.update(kwargs)
        return AnnotationSummary()

    monkeypatch.setattr("annotate.pipeline.auto_annotate", run)
    assert cli_main([str(folder)]) == 0
    assert (seen["det_model"], seen["sam_model"]) == ("auto", "auto")
    assert cli_main([str(folder), "--untrained", "--device", "cpu"]) == 0
    assert seen["det_model"] == "yolo11n.yaml" and seen["sam_model"].spec.asset_name == "sam2.1_t.pt"

    def offline(*args, **kwargs):
        raise ConnectionError("Could not download the SAM 2 checkpoint sam2.1_t.pt from https://...")

    monkeypatch.setattr("annotate.pipeline.auto_annotate", offline)
    capsys.readouterr()
    assert cli_main([str(folder)], prog="sam2-annotate") == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert "Could not download" in line and f"sam2-annotate {folder} --untrained" in line


def test_cli_help_states_the_auto_models_and_the_ray_extra(capsys):
    with pytest.raises(SystemExit):
        cli_main(["--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "yolo11n.pt and sam2.1_t.pt on a CPU" in out and "yolo11x.pt and sam2.1_b.pt on a CUDA GPU" in out
    assert "requirements-ray.txt" not in out and "[ray]" in out


def test_the_summary_counts_images_and_frames_as_the_progress_bar_does():
    video = {"key": "video", "frames": 24, "tracks": 1, "tracks_by_class": {}, "tracks_ended": 0, "seconds": 3.0,
             "failure": None}  # fmt: skip
    summary = AnnotationSummary(images=2, labelled=2, seconds=13.0, videos=[video])
    first = str(summary).splitlines()[0]
    assert first == "auto_annotate: 2 images and 1 video (24 frames): 26 images and frames in 13.0 s (2.00/s)"


def test_the_default_output_is_beside_the_data_but_never_inside_a_package(tmp_path, monkeypatch):
    import sysconfig

    from annotate.pipeline import default_output
    from app import examples_dir

    monkeypatch.chdir(tmp_path)
    assert default_output(tmp_path / "photos") == tmp_path / "photos_auto_annotate_labels"  # as ultralytics does
    assert default_output(examples_dir()) == tmp_path / "examples_auto_annotate_labels"  # the shipped examples
    installed = Path(sysconfig.get_paths()["purelib"]) / "somepackage" / "data"
    assert default_output(installed) == tmp_path / "data_auto_annotate_labels"
