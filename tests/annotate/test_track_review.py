"""Where to look first in videos: a track that ends early away from the border, a class switch, the frames they show
on, and the order of `Dataset.videos_needing_a_look`.

Each dataset is a COCO file written by hand: videos of 100x80 frames whose tracks are squares (a polygon and its box).
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from annotate.dataset import open_dataset
from annotate.review import CLASS_SWITCH, LOW_SCORE, NO_DETECTIONS, TRACK_ENDS_EARLY, LookThresholds
from annotate.track_review import TrackConcern, touches_border

WIDTH, HEIGHT = 100, 80
CAR, PERSON = 1, 2  # category ids (class ids 0 and 1)
MIDDLE = (40, 30)  # a 20x20 square's corner: far from every border
RIGHT_EDGE = (80, 30)  # a square whose right side is the picture's


def square(corner: tuple[int, int], size: int = 20) -> tuple[list[float], list[float]]:
    """(a COCO polygon segmentation, its xywh box) of a square of side `size` at `corner` (x, y pixels)."""
    x, y = corner
    return [x, y, x + size, y, x + size, y + size, x, y + size], [x, y, size, size]


def write_videos(root: Path, videos: dict[str, list[list[tuple[int, int, tuple[int, int], float]]]]) -> Path:
    """A COCO file over `videos`: name -> frames, each a list of (track id, category id, square corner, score)."""
    categories = [{"id": CAR, "name": "car"}, {"id": PERSON, "name": "person"}]
    coco: dict = {"images": [], "annotations": [], "videos": [], "categories": categories}
    picture = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
    for video_id, (name, frames) in enumerate(videos.items(), 1):
        coco["videos"].append({"id": video_id, "name": name.replace("/", "__")})
        for frame, instances in enumerate(frames):
            file_name = f"{name}/{frame:06d}.png"
            (root / "images" / name).mkdir(parents=True, exist_ok=True)
            cv2.imwrite(str(root / "images" / file_name), picture)
            image_id = len(coco["images"]) + 1
            coco["images"].append({"id": image_id, "file_name": file_name, "width": WIDTH, "height": HEIGHT,
                                   "video_id": video_id, "frame_id": frame})  # fmt: skip
            for track, category, corner, score in instances:
                polygon, box = square(corner)
                coco["annotations"].append({"id": len(coco["annotations"]) + 1, "image_id": image_id, "iscrowd": 0,
                                            "category_id": category, "segmentation": [polygon], "bbox": box,
                                            "area": 400, "score": score, "track_id": track})  # fmt: skip
    path = root / "annotations.json"
    path.write_text(json.dumps(coco))
    return path


def moving(track: int, frames: int, score: float = 0.9, category: int = CAR) -> list[tuple[int, int, tuple, float]]:
    """A track on every one of `frames` frames, moving right through the middle."""
    return [(track, category, (10 + 5 * f, 30), score) for f in range(frames)]


@pytest.fixture
def dataset(tmp_path):
    a = moving(1, 6)  # track 1 on every frame; track 2 vanishes mid-picture after frame 2; track 3 leaves at the right
    lost = [[(2, CAR, MIDDLE, 0.9)]] * 3 + [[]] * 3
    leaving = [[]] + [[(3, PERSON, (60, 30), 0.9)]] * 2 + [[(3, PERSON, RIGHT_EDGE, 0.9)]] + [[]] * 2
    switch = [CAR, CAR, PERSON, CAR]  # track 5 changes class on frames 2 and 3
    late = [[]] + [[(6, CAR, MIDDLE, 0.8)]] * 3  # starts late in the middle: an object from behind another
    path = write_videos(tmp_path, {
        "clips/a": [[i, *lo, *le] for i, lo, le in zip(a, lost, leaving, strict=True)],
        "clips/b": [[(5, category, MIDDLE, 0.6)] for category in switch],
        "clips/c": [[], [], []],
        "clips/d": late,
        "clips/e": [[(7, CAR, MIDDLE, 0.9)], []],  # ends early too, but every frame is reviewed
    })  # fmt: skip
    opened = open_dataset(path)
    for key in opened.video("clips/e").frame_keys:
        opened.mark_reviewed(key)
    return opened


def test_videos_in_order_no_tracks_then_concerns_worst_first_then_the_rest_reviewed_last(dataset):
    order = dataset.videos_needing_a_look()
    assert [e.key for e in order] == ["clips/c", "clips/b", "clips/a", "clips/d", "clips/e"]
    # b (quality 0.6) before a (0.9) though a comes first in the dataset: worst first within the flagged group
    by_key = {e.key: e for e in order}
    assert by_key["clips/c"].reasons == (NO_DETECTIONS,) and by_key["clips/c"].quality == 1.0
    assert by_key["clips/b"].reasons == (CLASS_SWITCH,) and by_key["clips/b"].quality == pytest.approx(0.6, abs=0.01)
    assert by_key["clips/a"].reasons == (TRACK_ENDS_EARLY,) and by_key["clips/d"].reasons == ()
    assert by_key["clips/e"].reviewed and by_key["clips/e"].reasons == (TRACK_ENDS_EARLY,)
    assert [e.reviewed for e in order] == [False] * 4 + [True]
    assert by_key["clips/a"].concerns == (TrackConcern(2, TRACK_ENDS_EARLY, 2),)  # not track 3: it left the picture
    assert by_key["clips/b"].concerns == (TrackConcern(5, CLASS_SWITCH, 2), TrackConcern(5, CLASS_SWITCH, 3))
    assert by_key["clips/d"].concerns == ()  # starting late in the middle is not a concern
    strict = dataset.videos_needing_a_look(LookThresholds(min_score=0.95))  # every instance is flagged now
    assert [e.key for e in strict][:4] == ["clips/c", "clips/b", "clips/d", "clips/a"]  # d's 0.8 before a's 0.9
    assert strict[2].reasons == (LOW_SCORE,)


def test_a_frame_where_a_concern_shows_carries_its_reason_in_needs_a_look(dataset):
    reasons = {e.key: e.reasons for e in dataset.needs_a_look()}
    a, b = dataset.video("clips/a").frame_keys, dataset.video("clips/b").frame_keys
    assert [reasons[k] for k in a] == [(), (), (TRACK_ENDS_EARLY,), (), (), ()]
    assert [reasons[k] for k in b] == [(), (), (CLASS_SWITCH,), (CLASS_SWITCH,)]
    c, d = dataset.video("clips/c").frame_keys, dataset.video("clips/d").frame_keys
    assert [e.key for e in dataset.needs_a_look()[:4]] == [*c, d[0]]  # frames with nothing on them first
    flagged = [e.key for e in dataset.needs_a_look() if e.reasons and e.reasons != (NO_DETECTIONS,)]
    assert flagged == [b[2], b[3], a[2], dataset.video("clips/e").frame_keys[0]]  # 0.6 before 0.9; reviewed last


def test_the_border_margin_decides_whether_a_track_left_the_picture(dataset):
    wide = dataset.videos_needing_a_look(LookThresholds(border_margin=0.45))  # every mask is near a border now
    assert {e.key: e.concerns for e in wide}["clips/a"] == ()
    mask = np.zeros((HEIGHT, WIDTH), bool)
    for column, touches in ((0, True), (1, True), (2, False), (97, False), (98, True), (99, True)):
        mask[:] = False
        mask[40, column] = True  # 2% of 100 columns: two columns on each side
        assert touches_border(mask, 0.02) is touches, column
    mask[:] = False
    mask[0, 50] = True
    assert touches_border(mask, 0.0)  # the outermost row always counts
    mask[0, 50], mask[1, 50] = False, True
    assert not touches_border(mask, 0.0) and touches_border(mask, 0.02)  # 2% of 80 rows: 1.6, so row 1 is in
    assert not touches_border(np.zeros((4, 4), bool), 0.5)
    with pytest.raises(ValueError, match="border_margin"):
        LookThresholds(border_margin=0.5)
