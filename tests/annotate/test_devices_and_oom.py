"""GPU behaviour that the CPU can check: the detector on SAM 2's device by one name, Ray actors sized to the
cluster's GPUs, and out-of-memory in annotate (a smaller-batch retry, then a failure the summary names)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv
import torch

from annotate import auto_annotate
from annotate.batch import BatchAnnotator
from annotate.detectors import YoloDetector, yolo_device
from annotate.local_backend import LocalBackend
from annotate.ray_backend import ActorPlan, actor_plan
from annotate.settings import DetectorSettings, OutputSettings
from annotate.summary import AnnotationSummary
from sam2_model import ImagePredictor


@pytest.fixture
def two_gpus(monkeypatch):
    """As if torch saw two CUDA GPUs, cuda:0 current (nothing runs on them); set_device is recorded."""
    current = [0]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: current[0])
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: current.__setitem__(0, int(index)))
    return current


class FakeYolo:
    """Stands in for an ultralytics model: records the device it is given, and moves torch's current GPU to it as
    ultralytics' select_device does."""

    names = {0: "thing"}  # noqa: RUF012 - read only

    def __init__(self) -> None:
        self.devices: list[object] = []

    def predict(self, images, device=None, **kwargs):
        self.devices.append(device)
        if isinstance(device, torch.device) and device.type == "cuda":
            torch.cuda.set_device(device.index)
        return []


@pytest.mark.parametrize(
    ("asked", "expected"), [("1", "cuda:1"), ("cuda:1", "cuda:1"), ("cuda", "cuda:0"), ("", "cuda:0")]
)
def test_the_detector_gets_our_canonical_device_and_leaves_the_current_gpu(two_gpus, asked, expected):
    yolo = FakeYolo()
    before = dict(os.environ)
    YoloDetector(yolo, DetectorSettings(device=asked))([np.zeros((8, 8, 3), np.uint8)])
    assert yolo.devices == [torch.device(expected)]  # a torch.device: no ultralytics release rewrites the env for it
    assert two_gpus == [0]  # "cuda" still means the GPU it meant before the call
    assert dict(os.environ) == before  # CUDA_VISIBLE_DEVICES untouched


def test_the_local_backend_puts_the_detector_on_the_sam_models_device(small_model, yolo_detector, two_gpus, tmp_path):
    # SAM 2 on the CPU with a GPU present: "" (auto) must not send the detector to the GPU
    backend = LocalBackend(yolo_detector, small_model, DetectorSettings(), OutputSettings(tmp_path), 1)
    assert yolo_device(backend.annotator.detector.settings) == small_model.device == torch.device("cpu")


# ------------------------------------------------------------------------------------------------ Ray's actors
@pytest.mark.parametrize(
    ("device", "cluster", "workers", "plan"),
    [
        # a CPU run holds no GPU, whatever the cluster has
        ("cpu", {"CPU": 8, "GPU": 1}, 4, ActorPlan(4, 0, 2, "cpu")),
        ("mps", {"CPU": 8, "GPU": 1}, 2, ActorPlan(2, 0, 4, "mps")),
        ("", {"CPU": 4}, 4, ActorPlan(4, 0, 1, "")),  # auto on a cluster without GPUs
        # a GPU run: one GPU per actor, the actor's GPU is its "cuda" (cuda:0 inside it)
        ("0", {"CPU": 4, "GPU": 4}, 2, ActorPlan(2, 1, 2, "cuda")),
        ("cuda:1", {"CPU": 16, "GPU": 2}, 2, ActorPlan(2, 1, 8, "cuda")),
    ],
)
def test_actors_ask_for_gpus_only_for_cuda(device, cluster, workers, plan):
    assert actor_plan(device, cluster, workers) == plan


@pytest.mark.parametrize(("device", "gpus"), [("", 1), ("cuda", 1), ("cuda:1", 2)])
def test_a_gpu_pool_is_capped_at_the_clusters_gpus_and_says_so(device, gpus):
    plan = actor_plan(device, {"CPU": 8.0, "GPU": float(gpus)}, 4)
    assert (plan.workers, plan.num_gpus, plan.num_cpus, plan.device) == (gpus, 1, 8 // gpus, "cuda")
    assert plan.note is not None and f"4 workers were asked for, but the cluster has {gpus} GPU" in plan.note
    summary = AnnotationSummary(notes=[plan.note])
    assert f"note: {plan.note}" in str(summary)


def test_a_cuda_run_on_a_cluster_without_gpus_is_refused():
    with pytest.raises(ValueError, match=r"no GPU.*device='cpu'"):
        actor_plan("cuda", {"CPU": 8}, 2)


# ---------------------------------------------------------------------------------------------- out of memory
class OutOfMemoryAbove:
    """Wraps ImagePredictor.predict_low_res: raises torch.OutOfMemoryError for more than `limit` boxes per call,
    as a GPU would; records each call's box count."""

    def __init__(self, real, limit: int) -> None:
        self.real, self.limit, self.calls = real, limit, []

    def __call__(self, predictor, box=None, **kwargs):
        self.calls.append(len(box))
        if len(box) > self.limit:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB\nmore advice")
        return self.real(predictor, box=box, **kwargs)

    def install(self, monkeypatch) -> None:
        monkeypatch.setattr(ImagePredictor, "predict_low_res", lambda predictor, **kwargs: self(predictor, **kwargs))


BOXES = np.array([[10, 20, 120, 140], [150, 90, 300, 230], [40, 40, 90, 90]], np.float32)


def test_out_of_memory_retries_the_boxes_in_halves_with_the_same_masks(small_model, scene_image, monkeypatch, tmp_path):
    annotator = BatchAnnotator(FakeYolo(), ImagePredictor(small_model), OutputSettings(tmp_path))
    detections = sv.Detections(xyxy=BOXES, class_id=np.zeros(3, int))
    whole, whole_ious = annotator.segment(scene_image, detections)
    fake = OutOfMemoryAbove(ImagePredictor.predict_low_res, limit=1)
    fake.install(monkeypatch)
    halves, halves_ious = annotator.segment(scene_image, detections)
    assert fake.calls == [3, 1, 2, 1, 1]  # halves, each halved again until it fits
    assert halves.shape == whole.shape == (3, 64, 64) and halves_ious.shape == whole_ious.shape == (3,)
    torch.testing.assert_close(halves, whole)  # each box is decoded on its own: the same masks
    torch.testing.assert_close(halves_ious, whole_ious)  # and the same predicted IoUs, in box order


def write_photos(folder: Path, scene_image: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    cv2.imwrite(str(folder / "scene.png"), scene_image[:, :, ::-1])
    cv2.imwrite(str(folder / "black.png"), np.zeros((40, 60, 3), np.uint8))
    cv2.imwrite(str(folder / "flipped.png"), np.ascontiguousarray(scene_image[::-1, :, ::-1]))
    return folder


def two_boxes(image: np.ndarray) -> sv.Detections:
    if not image.any():
        return sv.Detections.empty()
    return sv.Detections(xyxy=BOXES[:2], class_id=np.array([0, 0]), confidence=np.array([0.9, 0.8]))


def test_an_image_that_does_not_fit_fails_and_the_run_says_so(small_model, scene_image, monkeypatch, tmp_path):
    photos = write_photos(tmp_path / "photos", scene_image)
    fake = OutOfMemoryAbove(ImagePredictor.predict_low_res, limit=0)  # not even one box fits
    fake.install(monkeypatch)
    summary = auto_annotate(photos, det_model=two_boxes, sam_model=small_model, output_dir=tmp_path / "out",
                            progress=False)  # fmt: skip
    assert fake.calls == [2, 1, 2, 1]  # each image: its two boxes, then one; then it fails
    assert (summary.images, summary.no_detections, summary.labelled, summary.failed) == (3, 1, 0, 2)
    assert not summary.ok
    assert summary.failed_by_kind() == {"out of memory": 2}
    assert sorted(Path(path).name for path, _ in summary.failures) == ["flipped.png", "scene.png"]
    assert all("SAM 2 ran out of memory" in reason and "\n" not in reason for _, reason in summary.failures)
    note = summary.failure_note()
    assert note is not None and note.startswith("2 of 3 images failed: 2 out of memory")
    assert str(summary).splitlines()[0].endswith(f"NOT ALL DONE: {note}")
    saved = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert saved["failed"] == 2 and saved["failed_by_kind"] == {"out of memory": 2}
    assert not (tmp_path / "out" / "labels" / "scene.txt").exists()  # not written: a rerun retries it


def test_failures_are_counted_by_kind():
    summary = AnnotationSummary(
        images=4,
        failed=3,
        failed_videos=1,
        failures=[
            ("a.png", "the file could not be read as an image: not an image"),
            ("b.png", "SAM 2 failed: ValueError: bad"),
            ("c.png", "detector failed: OutOfMemoryError: CUDA out of memory"),
            ("clip.mp4", "RuntimeError: Could not decode frame 9"),
        ],
        videos=[{"source": "clip.mp4"}],
    )
    assert summary.failed_by_kind() == {"unreadable": 1, "SAM 2": 1, "out of memory": 1, "video": 1}
    assert AnnotationSummary(images=2).failure_note() is None
