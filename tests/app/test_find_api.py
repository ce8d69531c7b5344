"""Find through the Image tab's handlers and through the named API's /find (gradio_client against a launched app),
on an untrained YOLOE with test-made text embeddings (see test_find.py)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
from gradio_client import Client, handle_file

from app.demo import build_demo
from app.detector_pool import DetectorPool
from app.settings import Limits
from app.studio import Studio
from sam2_model.rle import rle_to_mask

from .conftest import free_port, request
from .test_find import NOISE, embeddings_file, yoloe_pool


@pytest.fixture(scope="module")
def finders(tmp_path_factory) -> DetectorPool:
    return yoloe_pool(tmp_path_factory.mktemp("find_api"))


@pytest.fixture(scope="module")
def noise_path(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("find_api") / "noise.png"
    cv2.imwrite(str(path), NOISE[:, :, ::-1])
    return str(path)


def test_the_tab_lists_found_objects_by_name_and_the_slider_hides_them(small_model, finders, noise_path):
    studio = Studio(small_model, Limits(max_objects=4), finders=finders)
    studio.open_session(request())
    studio.image.upload(noise_path, request(), progress=lambda *a, **k: None)
    view = studio.image.find.find_by_name("person, red car", "yoloe-11s-seg.pt", 0.0, request(), lambda *a, **k: None)
    labels = [label for label, _ in view.objects["choices"]]
    assert len(labels) == 4 and all(("· person" in x or "· red car" in x) and "found 0.00" in x for x in labels)
    assert view.canvas is not None and view.canvas.shape[:2] == NOISE.shape[:2]
    view = studio.image.find.set_confidence(0.5, request())  # untrained scores are ~0.0002: all hidden
    assert [label for label, _ in view.objects["choices"]] == ["Object 1 — no prompt yet"]
    view = studio.image.find.set_confidence(0.0, request())
    assert len(view.objects["choices"]) == 4


@pytest.fixture(scope="module")
def server(small_model, yolo_detector, finders):
    detectors = DetectorPool(["yolo11n.pt"], loader=lambda name: yolo_detector)
    demo = build_demo(small_model, Limits(max_sessions=8, max_objects=3), detectors, finders=finders)
    port = free_port()
    demo.queue().launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, show_error=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()


def test_find_endpoint_by_name_and_by_example(server, noise_path):
    client = Client(server, verbose=False)
    overlay_file, found = client.predict(handle_file(noise_path), "person, red car", "", "", 0.0, api_name="/find")
    assert cv2.imread(overlay_file).shape == NOISE.shape
    objects = found["objects"]
    assert len(objects) == 3 and {o["name"] for o in objects} <= {"person", "red car"}
    for obj in objects:
        mask = rle_to_mask(obj["mask"])
        assert mask.shape == NOISE.shape[:2] and mask.any() and len(obj["box"]) == 4
        assert 0 <= obj["confidence"] <= 1 and isinstance(obj["score"], float)
    _, similar = client.predict(handle_file(noise_path), "", json.dumps([40, 40, 200, 180]), "", 0.0, api_name="/find")
    assert 0 < len(similar["objects"]) <= 3 and {o["name"] for o in similar["objects"]} == {"similar"}


def test_find_endpoint_answers_an_empty_list_when_nothing_scores_high_enough(server, noise_path):
    """ "None found" is an answer a program can use, not an error (the browser shows it as a warning)."""
    client = Client(server, verbose=False)
    overlay_file, found = client.predict(handle_file(noise_path), "person", "", "", 0.5, api_name="/find")
    assert found == {"objects": []}  # untrained scores are ~0.0002
    assert np.array_equal(cv2.imread(overlay_file), NOISE[:, :, ::-1])  # the image as sent, nothing drawn


@pytest.mark.parametrize(
    ("phrases", "box", "error"),
    [
        ("person", "[1, 2, 30, 40]", "either names to find"),
        ("", "", "either names to find"),
        (", ".join(f"n{i}" for i in range(17)), "", "at most 16 at once"),
        ("forklift", "", "has no embedding"),  # offline: no text encoder, and not in the server's file
    ],
)
def test_find_endpoint_refuses_with_the_reason(server, noise_path, phrases, box, error):
    with pytest.raises(Exception, match=error):
        Client(server, verbose=False).predict(handle_file(noise_path), phrases, box, "", 0.0, api_name="/find")


def test_the_named_api_lists_find(server):
    endpoints = Client(server, verbose=False).view_api(return_format="dict", print_info=False)["named_endpoints"]
    assert "/find" in endpoints
    assert np.all([name in endpoints for name in ("/segment_image", "/track_video", "/auto_annotate")])


def test_the_text_embeddings_flag_names_a_file_that_exists(tmp_path):
    from app.settings import parse_settings

    npz = embeddings_file(tmp_path / "names.npz", ["person"])
    assert parse_settings(["--text-embeddings", str(npz)], environ={}).text_embeddings == str(npz)
    assert parse_settings([], environ={"SAM2_TEXT_EMBEDDINGS": str(npz)}).text_embeddings == str(npz)
    assert parse_settings([], environ={}).text_embeddings is None
    with pytest.raises(SystemExit):
        parse_settings(["--text-embeddings", str(tmp_path / "missing.npz")], environ={})


def dataset_names(archive: str) -> dict:
    import zipfile

    import yaml

    with zipfile.ZipFile(archive) as zipped:
        [data] = [n for n in zipped.namelist() if n.endswith("data.yaml")]
        return yaml.safe_load(zipped.read(data))["names"]


def test_auto_annotate_takes_free_text_classes_with_an_open_vocabulary_detector(small_model, finders, noise_path):
    studio = Studio(small_model, Limits(max_objects=4), finders=finders)
    studio.open_session(request())
    assert studio.annotate.class_names("yoloe-11s-seg.pt")["allow_custom_value"] is True  # names are typed
    _, archive, _ = studio.annotate.run([noise_path], "yoloe-11s-seg.pt", ["red car", "person"], 0.25, request(),
                                        progress=lambda *a, **k: None)  # fmt: skip
    assert dataset_names(archive) == {0: "red car", 1: "person"}  # the phrases, in the order typed


def test_auto_annotate_endpoint_with_names(server, noise_path):
    client = Client(server, verbose=False)
    photos = [handle_file(noise_path)]
    archive = client.predict(photos, "yoloe-11s-seg.pt", "person, red car", api_name="/auto_annotate")
    assert dataset_names(archive) == {0: "person", 1: "red car"}
    with pytest.raises(Exception, match="comma-separated class ids"):
        client.predict(photos, "yolo11n.pt", "person", api_name="/auto_annotate")
