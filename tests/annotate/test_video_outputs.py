"""vis.json: parts gathered in video order with 1-based categories of the classes used, tracks without a mask left
out, masks that round trip through pycocotools as the YouTube-VIS tools read them."""

from __future__ import annotations

import json

import numpy as np
from pycocotools import mask as mask_utils

from annotate.exporters.base import VideoEntry
from annotate.video_outputs import VisTrackWriter, finish_vis, vis_part_path
from sam2_model.rle import mask_to_rle


def entry(video_id: int, key: str) -> VideoEntry:
    return VideoEntry(video_id, key, key.replace("/", "__"), (f"{key}/000000",), (0,), 10.0, 4, 2)


def test_vis_file_gathers_parts_in_order(tmp_path):
    assert finish_vis(tmp_path, [entry(1, "x")], {}) is None  # no part: no file
    for key, tracks in (("b", 1), ("a", 2)):
        part = vis_part_path(tmp_path, key)
        part.parent.mkdir(parents=True, exist_ok=True)
        lines = [{"name": key, "width": 4, "height": 2, "length": 1, "file_names": [f"{key}/img1/000001.jpg"]}]
        lines += [{"track_id": i, "category_id": 6, "segmentations": [None]} for i in range(1, tracks + 1)]
        part.write_text("".join(f"{json.dumps(line)}\n" for line in lines))
    vis = json.loads(finish_vis(tmp_path, [entry(1, "a"), entry(2, "b")], {0: "person"}).read_text())
    assert [(v["id"], v["name"]) for v in vis["videos"]] == [(1, "a"), (2, "b")]
    assert [(a["id"], a["video_id"], a["track_id"]) for a in vis["annotations"]] == [(1, 1, 1), (2, 1, 2), (3, 2, 1)]
    assert vis["categories"] == [{"id": 6, "name": "class_5"}]  # the classes used only; "person" is not


def test_tracks_without_a_mask_are_left_out_and_masks_round_trip(tmp_path):
    masks = [np.zeros((2, 4), bool) for _ in range(3)]
    for t, mask in enumerate(masks):
        mask[:, t : t + 2] = True
    writer = VisTrackWriter()
    try:
        for t, mask in enumerate(masks):
            writer.add_frame(f"seq/img1/{t + 1:06d}.jpg", {2: mask_to_rle(mask)} if t != 1 else {})
        path = tmp_path / "part.jsonl"
        writer.write_part(
            path, {"name": "seq", "width": 4, "height": 2}, {5: {"category_id": 1}, 2: {"category_id": 3}}
        )
    finally:
        writer.close()
    video, *tracks = (json.loads(line) for line in path.read_text().splitlines())
    assert video["length"] == 3 and video["file_names"][2] == "seq/img1/000003.jpg"
    (track,) = tracks  # track 5 never had a mask: ground truth nothing could match
    assert track["track_id"] == 2 and track["category_id"] == 3 and track["segmentations"][1] is None
    for t in (0, 2):
        rle = mask_utils.frPyObjects(track["segmentations"][t], 2, 4)  # as the YouTube-VIS tools decode them
        np.testing.assert_array_equal(mask_utils.decode(rle).astype(bool), masks[t])
        assert track["areas"][t] == masks[t].sum() and track["bboxes"][t] == [t, 0, 2, 2]
