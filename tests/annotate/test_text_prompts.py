"""Classes by name: a YOLO keeps the classes of those names; an open-vocabulary detector (YOLOE, YOLO-World) is
prompted with them, from text embeddings the test makes (offline, no text encoder), or fails naming what to download."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from annotate import auto_annotate
from annotate.detectors import YoloDetector, load_text_embeddings, make_detector, set_text_classes
from annotate.settings import DetectorSettings


@pytest.fixture(scope="module")
def yoloe():
    from ultralytics import YOLOE

    threads = torch.get_num_threads()
    with torch.random.fork_rng():  # the same random weights whichever tests ran before (they draw from torch's RNG)
        torch.manual_seed(1)  # weights that give boxes on noise (seed 0's give two, after NMS)
        model = YOLOE("yoloe-11s-seg.yaml")  # untrained, from the yaml ultralytics ships: no download
    torch.set_num_threads(threads)
    return model


NOISE = np.random.default_rng(1).integers(0, 255, (240, 320, 3), dtype=np.uint8)  # untrained YOLOE scores ~0 on flat
# pictures; on noise it gives boxes to count


def embeddings_file(path, names, dim=512):
    """What save_text_embeddings writes, with random embeddings (the encoder cannot be downloaded here)."""
    rng = np.random.default_rng(0)
    np.savez(path, names=np.array(names), embeddings=rng.normal(size=(1, len(names), dim)).astype(np.float32))
    return path


def test_a_closed_set_yolo_keeps_the_classes_of_those_names():
    from ultralytics import YOLO

    threads = torch.get_num_threads()
    yolo = YOLO("yolo11n.yaml")
    torch.set_num_threads(threads)
    yolo.model.names = {0: "person", 1: "bicycle", 2: "car"}  # an untrained YOLO's classes are "0", "1", ...
    detector = YoloDetector(yolo, DetectorSettings(classes=["car", "Person"]))
    assert detector.class_ids == [0, 2]  # COCO ids of person and car, case-insensitively
    with pytest.raises(ValueError, match=r"no class named 'forklift'.*YOLOE"):
        YoloDetector(yolo, DetectorSettings(classes=["person", "forklift"]))


def test_yoloe_is_prompted_with_the_names_from_saved_embeddings(yoloe, tmp_path):
    names = ["forklift", "pallet", "person"]
    npz = embeddings_file(tmp_path / "classes.npz", ["person", "forklift", "pallet"])  # any order in the file
    detector = make_detector(yoloe, DetectorSettings(conf=0.0, classes=names, text_embeddings=str(npz), max_det=5))
    assert detector.names == {0: "forklift", 1: "pallet", 2: "person"}  # ids follow the names given
    (found,) = detector([NOISE])
    assert 0 < len(found) <= 5 and set(found.class_id) <= {0, 1, 2}
    expected = load_text_embeddings(npz, names)
    assert torch.equal(expected[0, 0], torch.from_numpy(np.load(npz)["embeddings"][0, 1]))  # reordered by name


def test_auto_annotate_with_text_prompts_writes_the_names(yoloe, tmp_path, small_model):
    import cv2
    import yaml

    (tmp_path / "photos").mkdir()
    cv2.imwrite(str(tmp_path / "photos" / "a.png"), NOISE)
    npz = embeddings_file(tmp_path / "classes.npz", ["person", "forklift"])
    summary = auto_annotate(
        tmp_path / "photos", det_model=yoloe, sam_model=small_model, classes=["person", "forklift"], conf=0.0,
        max_det=3, text_embeddings=npz, progress=False,
    )  # fmt: skip
    data = yaml.safe_load((tmp_path / "photos_auto_annotate_labels" / "data.yaml").read_text())
    assert data["names"] == {0: "person", 1: "forklift"}
    assert sum(summary.instances.values()) == 3 and set(summary.instances) <= {"person", "forklift"}


def test_offline_without_embeddings_the_error_names_the_file_and_the_fix(yoloe):
    from ultralytics import YOLOE

    model = YOLOE("yoloe-11s-seg.yaml")
    with pytest.raises(ConnectionError) as error:
        set_text_classes(model, ["forklift"])
    message = str(error.value)
    assert "mobileclip_blt.ts" in message and "save_text_embeddings" in message and "--text-embeddings" in message


def test_yolo_world_takes_saved_embeddings_too(tmp_path):
    from ultralytics import YOLOWorld

    threads = torch.get_num_threads()
    world = YOLOWorld("yolov8s-worldv2.yaml")
    torch.set_num_threads(threads)
    npz = embeddings_file(tmp_path / "classes.npz", ["forklift", "person"])
    detector = make_detector(world, DetectorSettings(conf=0.0, classes=["forklift", "person"], text_embeddings=npz))
    assert detector.names == {0: "forklift", 1: "person"}
    (found,) = detector([NOISE])
    assert len(found) and set(found.class_id) <= {0, 1}


def test_bad_embedding_files_name_the_problem(tmp_path):
    npz = embeddings_file(tmp_path / "classes.npz", ["person"])
    with pytest.raises(ValueError, match="no embedding for 'forklift'"):
        load_text_embeddings(npz, ["person", "forklift"])
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a text-embeddings file"):
        load_text_embeddings(tmp_path / "junk.npz", ["person"])


def test_classes_by_name_for_a_detector_function():
    import supervision as sv

    class Function:
        names = {0: "cat", 1: "dog"}  # noqa: RUF012 - read only

        def __call__(self, image):
            return sv.Detections(np.array([[0, 0, 4, 4], [1, 1, 5, 5]], np.float32), class_id=np.array([0, 1]))

    detector = make_detector(Function(), DetectorSettings(classes=["dog"]))
    (found,) = detector([np.zeros((8, 8, 3), np.uint8)])
    assert found.class_id.tolist() == [1]
    with pytest.raises(ValueError, match="no `names`"):
        make_detector(lambda image: sv.Detections.empty(), DetectorSettings(classes=["dog"]))


def test_cli_classes_by_id_or_name_and_text_embeddings(monkeypatch, tmp_path):
    from annotate import AnnotationSummary
    from annotate.__main__ import main, parse_classes

    assert parse_classes(["0", "2"]) == [0, 2]
    assert parse_classes(["person", "forklift"]) == ["person", "forklift"]
    assert parse_classes(None) is None
    seen = {}
    monkeypatch.setattr("annotate.pipeline.auto_annotate", lambda *a, **k: seen.update(k) or AnnotationSummary())
    assert main([str(tmp_path), "--classes", "person", "forklift", "--text-embeddings", "c.npz"]) == 0
    assert (seen["classes"], seen["text_embeddings"]) == (["person", "forklift"], "c.npz")
