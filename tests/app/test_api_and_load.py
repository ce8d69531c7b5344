"""The named API through gradio_client against a launched app, and many clients at once."""

from __future__ import annotations

import json
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from gradio_client import Client, handle_file

from app.settings import Limits

EXAMPLES = Path(__file__).resolve().parents[2] / "app" / "examples"


@pytest.fixture(scope="module")
def server(launch):
    # the "eight clients" below all connect from 127.0.0.1: a per-client share of 8 model requests lets them in
    return launch(Limits(max_sessions=16, max_model_requests_per_client=8), show_error=True)


@pytest.fixture(scope="module")
def image_path(tmp_path_factory, scene_image) -> str:
    path = tmp_path_factory.mktemp("api") / "scene.png"
    cv2.imwrite(str(path), scene_image[:, :, ::-1])
    return str(path)


def test_api_lists_only_the_named_endpoints(server):
    _, url = server
    endpoints = set(Client(url, verbose=False).view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert endpoints == {"/segment_image", "/find", "/track_video", "/auto_annotate"}


def test_segment_image_endpoint(server, image_path, scene_image):
    _, url = server
    client = Client(url, verbose=False)
    mask_file, overlay_file, scores = client.predict(
        handle_file(image_path), json.dumps([[80, 90, 1]]), "null", api_name="/segment_image"
    )
    mask = cv2.imread(mask_file, cv2.IMREAD_UNCHANGED)
    assert mask.shape == scene_image.shape[:2] and set(np.unique(mask)) <= {0, 255}
    assert cv2.imread(overlay_file).shape == scene_image.shape
    assert len(scores["scores"]) == 3


def test_track_video_endpoint(server):
    _, url = server
    client = Client(url, verbose=False)
    prompts = [
        {"frame": 0, "obj_id": 1, "points": [[240, 230, 1]]},
        {"frame": 5, "obj_id": 2, "box": [60, 160, 180, 250]},
    ]
    video, masks = client.predict(
        handle_file(str(EXAMPLES / "video.mp4")), json.dumps(prompts), api_name="/track_video"
    )
    import av

    with av.open(video) as container:
        assert container.streams.video[0].codec_context.name == "h264"
        assert sum(1 for _ in container.decode(video=0)) == 24
    with zipfile.ZipFile(masks) as archive:
        assert len([n for n in archive.namelist() if n.endswith(".png")]) == 24 * 2  # and the 24 frames as JPEG


def test_auto_annotate_endpoint(server, image_path):
    _, url = server
    client = Client(url, verbose=False)
    dataset = client.predict([handle_file(image_path)], "yolo11n.pt", "", api_name="/auto_annotate")
    with zipfile.ZipFile(dataset) as archive:
        assert "data.yaml" in archive.namelist()


def test_auto_annotate_endpoint_takes_a_video(server):
    _, url = server
    client = Client(url, verbose=False)
    dataset = client.predict([handle_file(str(EXAMPLES / "video.mp4"))], "yolo11n.pt", "", api_name="/auto_annotate")
    with zipfile.ZipFile(dataset) as archive:
        names = set(archive.namelist())
    assert {"data.yaml", "vis.json", "tracks/video.txt", "previews/video.mp4"} <= names
    assert sum(n.startswith("labels/video/") for n in names) == 24  # one label file per frame


def test_eight_clients_at_once(server, image_path, small_model):
    """8 concurrent sessions segmenting: all answered, each gets the mask of its own prompt, memory stays bounded."""
    demo, url = server
    prompts = [[[40 + 25 * i, 50 + 15 * i, 1]] for i in range(8)]

    def segment(points):
        client = Client(url, verbose=False)
        mask_file, _, scores = client.predict(
            handle_file(image_path), json.dumps(points), "null", api_name="/segment_image"
        )
        return cv2.imread(mask_file, cv2.IMREAD_UNCHANGED), scores

    alone = [segment(p) for p in prompts[:2]]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(segment, prompts))
    assert len(together) == 8
    for i in range(2):  # concurrency changes no one's result
        np.testing.assert_array_equal(together[i][0], alone[i][0])
        assert together[i][1] == alone[i][1]
    cache = small_model.embedding_cache
    assert cache.nbytes <= cache.max_bytes
    assert len(demo.studio.sessions) == 0  # API calls (these and the tracking ones above) leave no session behind
