"""auto_annotate on a local Ray with 2 workers: the same files as the local backend, and a killed worker loses and
duplicates nothing. Ray comes from requirements-ray.txt, which .ci/run installs."""

from __future__ import annotations

import builtins
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import supervision as sv

from annotate import auto_annotate

if os.environ.get("CI") != "true":  # on a developer machine without Ray, say how to get it; in CI, fail
    pytest.importorskip("ray", reason="pip install -r requirements-ray.txt")
import ray


@pytest.fixture(scope="module")
def local_ray():
    env_vars = {"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "YOLO_OFFLINE": "1"}
    # num_gpus=0: on a machine with a GPU the CPU runs below must neither hold it nor wait for it
    ray.init(
        num_cpus=2,
        num_gpus=0,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env_vars},
        _system_config={"worker_niceness": 0},
    )  # as annotate's local Ray: workers not starved on a busy machine
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def photos(tmp_path_factory, scene_image) -> Path:
    folder = tmp_path_factory.mktemp("ray") / "photos"
    (folder / "nested").mkdir(parents=True)
    bgr = scene_image[:, :, ::-1]
    cv2.imwrite(str(folder / "a.png"), bgr)
    cv2.imwrite(str(folder / "b.png"), np.ascontiguousarray(bgr[::-1]))
    cv2.imwrite(str(folder / "nested" / "c.png"), np.ascontiguousarray(bgr[:, ::-1]))
    cv2.imwrite(str(folder / "black.png"), np.zeros((40, 60, 3), np.uint8))
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 30)
    return folder


def dataset_files(output: Path) -> dict[str, bytes]:
    """Every file of a dataset folder but the summary (it has times)."""
    return {
        p.relative_to(output).as_posix(): p.read_bytes()
        for p in sorted(output.rglob("*"))
        if p.is_file() and not p.is_symlink() and p.name != "summary.json"
    }


class Boxes:
    """A detector that kills its worker process the first time it runs in a run (marker file), then behaves."""

    names = {0: "thing"}  # noqa: RUF012 - read only

    def __init__(self, kill_marker: str | None = None) -> None:
        self.kill_marker = kill_marker

    def __call__(self, image: np.ndarray) -> sv.Detections:
        if self.kill_marker is not None:
            try:
                os.close(os.open(self.kill_marker, os.O_CREAT | os.O_EXCL))
                os._exit(1)  # the worker dies in the middle of its batch
            except FileExistsError:
                pass
        if not image.any():
            return sv.Detections.empty()
        h, w = image.shape[:2]
        return sv.Detections(
            xyxy=np.array([[w * 0.1, h * 0.2, w * 0.5, h * 0.7], [w * 0.5, h * 0.3, w * 0.9, h * 0.9]]),
            class_id=np.array([0, 0]),
            confidence=np.array([0.9, 0.7]),
        )


COMMON = {"device": "cpu", "formats": ["yolo", "coco"], "batch_size": 2, "progress": False}


def test_ray_writes_the_same_files_as_the_local_backend(local_ray, photos, checkpoints, tmp_path):
    local = auto_annotate(
        photos, det_model=Boxes(), sam_model=checkpoints.meta, output_dir=tmp_path / "local", **COMMON
    )
    on_ray = auto_annotate(
        photos, det_model=Boxes(), sam_model=checkpoints.meta, output_dir=tmp_path / "ray", backend="ray", workers=2,
        **COMMON,
    )  # fmt: skip
    expected = dataset_files(tmp_path / "local")
    assert sum(name.startswith("labels/") for name in expected) == 4
    assert dataset_files(tmp_path / "ray") == expected  # byte for byte
    for field in ("images", "labelled", "no_detections", "skipped", "failed", "instances"):
        assert getattr(on_ray, field) == getattr(local, field), field
    assert [Path(p).name for p, _ in on_ray.failures] == ["broken.png"]

    again = auto_annotate(
        photos, det_model=Boxes(), sam_model=checkpoints.meta, output_dir=tmp_path / "ray", backend="ray", workers=2,
        **COMMON,
    )  # fmt: skip
    assert again.skipped == 4 and again.processed == 0  # resume works the same way


def test_a_killed_worker_loses_and_duplicates_nothing(local_ray, photos, checkpoints, tmp_path):
    reference = auto_annotate(
        photos, det_model=Boxes(), sam_model=checkpoints.meta, output_dir=tmp_path / "reference", **COMMON
    )
    marker = tmp_path / "killed-once"
    summary = auto_annotate(
        photos, det_model=Boxes(kill_marker=str(marker)), sam_model=checkpoints.meta, output_dir=tmp_path / "ray",
        backend="ray", workers=2, **COMMON,
    )  # fmt: skip
    assert marker.exists(), "no worker was killed"
    assert dataset_files(tmp_path / "ray") == dataset_files(tmp_path / "reference")
    assert (summary.labelled, summary.no_detections, summary.failed) == (
        reference.labelled, reference.no_detections, reference.failed,
    )  # fmt: skip
    assert summary.instances == reference.instances  # counted once, though a batch ran twice


def test_videos_are_spread_over_workers_with_the_same_files_as_local(local_ray, checkpoints, tmp_path):
    from annotate.previews import write_h264

    clips = tmp_path / "clips"
    for name, shift in (("one", 0), ("two", 9)):
        frames = []
        for t in range(3):
            frame = np.full((48, 64, 3), 50, np.uint8)
            frame[8:30, 4 + 3 * t + shift : 24 + 3 * t + shift] = 220
            frames.append(frame)
        write_h264(frames, clips / f"{name}.mp4", fps=10)
    video = {"keyframe_interval": 2, "preview": True}
    local = auto_annotate(
        clips, det_model=Boxes(), sam_model=checkpoints.meta, output_dir=tmp_path / "local", **COMMON, **video
    )
    on_ray = auto_annotate(
        clips, det_model=Boxes(), sam_model=checkpoints.meta, output_dir=tmp_path / "ray", backend="ray", workers=2,
        **COMMON, **video,
    )  # fmt: skip
    expected = dataset_files(tmp_path / "local")
    assert {"vis.json", "tracks/one.txt", "tracks/two.txt", "previews/one.mp4", "labels/two/000002.txt"} <= set(
        expected
    )
    assert dataset_files(tmp_path / "ray") == expected  # byte for byte
    untimed = [sorted(({**v, "seconds": 0} for v in run.videos), key=lambda v: v["key"]) for run in (local, on_ray)]
    assert untimed[0] == untimed[1]
    assert on_ray.instances == local.instances


def test_a_model_built_in_process_cannot_go_to_ray(photos, small_model):
    with pytest.raises(ValueError, match="checkpoint path"):
        auto_annotate(photos, det_model=Boxes(), sam_model=small_model, backend="ray", progress=False)


def test_missing_ray_says_how_to_install(photos, checkpoints, monkeypatch):
    real_import = builtins.__import__

    def without_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", without_ray)
    with pytest.raises(ImportError, match=r"pip install 'ray\[data\]>=2\.40' \(the package's \[ray\] extra"):
        auto_annotate(photos, det_model=Boxes(), sam_model=checkpoints.meta, backend="ray", progress=False)


def test_a_local_ray_runs_its_workers_at_the_callers_priority():
    """Ray starts workers at nice 15; the run's local Ray must not (beside two busy loops a worker got ~4% of a
    core). Checked on the call that starts it, with a recording stand-in for `ray` (no second Ray here)."""
    from types import SimpleNamespace

    from annotate.ray_backend import RayBackend

    started: list[dict] = []
    fake = SimpleNamespace(
        is_initialized=lambda: False,
        init=lambda **options: started.append(options),
        data=SimpleNamespace(DataContext=SimpleNamespace(get_current=lambda: SimpleNamespace())),
    )
    backend = RayBackend.__new__(RayBackend)
    backend.ray = fake
    backend._start(None)
    assert started and started[0]["_system_config"]["worker_niceness"] == 0
