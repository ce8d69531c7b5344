"""The exporters: each format's files, its round trip back to masks, "done" per image, and the registry."""

from __future__ import annotations

import json
from collections.abc import Sequence

import cv2
import numpy as np
import pytest
from pycocotools.coco import COCO

from annotate.exporters import Exporter, ImageEntry, Instance, exporter_class, formats
from annotate.exporters.base import EXPORTERS, DatasetIndex, VideoEntry
from annotate.exporters.coco import CocoExporter, instance_to_coco_annotation
from annotate.exporters.mask_png import MaskPngExporter, mask_to_png
from annotate.exporters.yolo import YoloExporter
from annotate.polygons import polygon_to_mask, yolo_line_to_polygon
from sam2_model.rle import mask_to_rle, rle_to_mask

WIDTH, HEIGHT = 64, 48


def coco_mask(annotation: dict) -> np.ndarray:
    return rle_to_mask(annotation["segmentation"])


def disc(cx: int, cy: int, r: int) -> np.ndarray:
    yy, xx = np.mgrid[:HEIGHT, :WIDTH]
    return (xx - cx) ** 2 + (yy - cy) ** 2 <= r**2


@pytest.fixture
def instances() -> list[Instance]:
    return [
        Instance.from_mask(3, disc(20, 20, 8), score=0.9),
        Instance.from_mask(5, disc(45, 30, 10), name="ball"),
        Instance.from_mask(1, None, np.array([2.0, 2.0, 12.0, 8.0]), resolution_wh=(WIDTH, HEIGHT)),  # box only
    ]


ENTRY = ImageEntry("sub/photo", "sub/photo.jpg", WIDTH, HEIGHT)


def test_registry_lists_every_format_yolo_first():
    assert formats()[0] == "yolo" and set(formats()) >= {"yolo", "coco", "masks"}
    assert exporter_class("coco") is CocoExporter
    with pytest.raises(ValueError, match="Unknown output format 'tiff': choose from yolo"):
        exporter_class("tiff")


def test_a_new_format_is_one_subclass(tmp_path, instances):
    class CountExporter(Exporter):
        format = "count-test"

        def write(self, image: ImageEntry, instances: Sequence[Instance]) -> None:
            (self.output / f"{image.key.replace('/', '_')}.n").write_text(str(len(instances)))

        def is_done(self, key: str) -> bool:
            return (self.output / f"{key.replace('/', '_')}.n").exists()

    try:
        exporter = exporter_class("count-test")(tmp_path)
        assert not exporter.is_done(ENTRY.key)
        exporter.write(ENTRY, instances)
        assert exporter.is_done(ENTRY.key) and (tmp_path / "sub_photo.n").read_text() == "3"
        assert exporter.finish([ENTRY.key], {}) is None
        with pytest.raises(ValueError, match="Two exporters claim"):
            type("Again", (CountExporter,), {"format": "count-test"})
    finally:
        EXPORTERS.pop("count-test", None)


def test_yolo_labels_round_trip_to_the_masks(tmp_path, instances):
    exporter = YoloExporter(tmp_path)
    assert not exporter.is_done(ENTRY.key)
    exporter.write(ENTRY, instances)
    assert exporter.is_done(ENTRY.key)
    lines = (tmp_path / "labels" / "sub" / "photo.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["3", "5", "1"]
    for line, instance in zip(lines, instances, strict=True):
        _, polygon = yolo_line_to_polygon(line, (WIDTH, HEIGHT))
        back = polygon_to_mask(polygon, (WIDTH, HEIGHT))
        union = (back | instance.mask).sum()
        assert (back & instance.mask).sum() / union > 0.85  # a polygon outline of the same region
    data = exporter.finish([ENTRY.key], {3: "cat", 5: "ball"})
    assert data.name == "data.yaml" and "names:\n  3: cat\n  5: ball\n" in data.read_text()
    assert "train: images\nval: images\n" in data.read_text()  # no index: the images folder


def test_empty_image_writes_an_empty_label(tmp_path):
    exporter = YoloExporter(tmp_path)
    exporter.write(ENTRY, [])
    assert exporter.is_done(ENTRY.key) and exporter.label_path(ENTRY.key).read_text() == ""


def test_coco_round_trips_every_instance_and_skips_unwritten_images(tmp_path, instances):
    exporter = CocoExporter(tmp_path)
    exporter.write(ENTRY, instances)
    other = ImageEntry("other", "other.png", WIDTH, HEIGHT)
    path = exporter.finish(["missing", ENTRY.key, other.key], {3: "cat"})
    assert path == tmp_path / "annotations.json" and not exporter.is_done(other.key)
    coco = COCO(str(path))
    assert [img["file_name"] for img in coco.loadImgs(coco.getImgIds())] == ["sub/photo.jpg"]
    assert coco.getImgIds() == [2]  # image ids follow the dataset order, whatever was written
    annotations = coco.loadAnns(coco.getAnnIds())
    for annotation, instance in zip(annotations, instances, strict=True):
        np.testing.assert_array_equal(coco.annToMask(annotation).astype(bool), instance.mask)
        assert annotation["category_id"] == instance.class_id + 1  # 0 is background to Datumaro and CVAT
    assert annotations[0]["score"] == 0.9 and "score" not in annotations[1]
    categories = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
    assert categories == {2: "class_1", 4: "cat", 6: "class_5"}
    assert "videos" not in coco.dataset  # images only: plain COCO
    assert json.loads(path.read_text())["info"]["description"].startswith("auto_annotate")
    bare = CocoExporter(tmp_path, "plain.json", description=None)
    assert "info" not in json.loads(bare.finish([ENTRY.key], {}).read_text())


@pytest.mark.parametrize(
    "mask", [disc(20, 20, 8), disc(0, 0, 5), np.eye(HEIGHT, WIDTH, dtype=bool), np.ones((HEIGHT, WIDTH), bool)]
)
def test_coco_annotation_of_a_mask(mask):
    annotation = instance_to_coco_annotation(Instance(3, mask_to_rle(mask)))
    ys, xs = np.nonzero(mask)
    assert annotation["category_id"] == 4 and annotation["area"] == mask.sum()  # class 3: category 4
    assert annotation["bbox"] == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    np.testing.assert_array_equal(coco_mask(annotation), mask)


def test_mask_pngs_round_trip_and_are_written_whole(tmp_path, instances):
    exporter = MaskPngExporter(tmp_path)
    exporter.write(ENTRY, instances)
    folder = tmp_path / "masks" / "sub" / "photo"
    assert sorted(p.name for p in folder.iterdir()) == ["0.png", "2.png", "ball.png"]
    for name, instance in zip(["0.png", "ball.png", "2.png"], instances, strict=True):
        png = cv2.imread(str(folder / name), cv2.IMREAD_UNCHANGED)
        assert png.dtype == np.uint8 and set(np.unique(png)) <= {0, 255}
        np.testing.assert_array_equal(png == 255, instance.mask)
    exporter.write(ENTRY, instances[:1])  # rewriting replaces the folder, nothing stale stays
    assert sorted(p.name for p in folder.iterdir()) == ["0.png"]
    assert not [p for p in folder.parent.iterdir() if p.name.endswith(".tmp")]
    assert mask_to_png(np.zeros((2, 3), bool))[:4] == b"\x89PNG"


def test_instances_fall_back_to_their_box(instances):
    from_box = instances[2]
    assert from_box.mask.sum() == 11 * 7  # the box's pixels, corners included
    tiny = Instance.from_mask(0, disc(20, 20, 1), np.array([10.0, 10.0, 30.0, 30.0]), min_area=50)
    assert tiny.mask.sum() > 300  # smaller than min_area: the box
    assert Instance(0, mask_to_rle(disc(20, 20, 8))).outline().shape[1] == 2  # an outline derived on demand
    with pytest.raises(ValueError, match="empty mask needs a box"):
        Instance.from_mask(0, np.zeros((4, 4), bool))
    with pytest.raises(ValueError, match="needs a mask, or a box"):
        Instance.from_mask(0, None)


def test_yolo_lists_train_and_val_images_from_the_index(tmp_path, instances):
    exporter = YoloExporter(tmp_path)
    entries = [ImageEntry(f"k{i}", f"sub/k{i}.png", WIDTH, HEIGHT) for i in range(3)]
    for entry in entries[:2]:
        exporter.write(entry, instances)
    files = {e.key: e.file_name for e in entries}
    exporter.finish([e.key for e in entries], {}, DatasetIndex(files, val_keys=frozenset({"k1"})))
    assert (tmp_path / "train.txt").read_text() == "./images/sub/k0.png\n"  # k2 has no label: in no list
    assert (tmp_path / "val.txt").read_text() == "./images/sub/k1.png\n"
    data = exporter.finish([e.key for e in entries], {}, DatasetIndex(files))  # no split: val is train
    assert "train: train.txt\nval: train.txt\n" in data.read_text() and not (tmp_path / "val.txt").exists()


def test_coco_gives_frames_their_video_and_tracks_unique_ids(tmp_path):
    exporter = CocoExporter(tmp_path)
    square = np.zeros((HEIGHT, WIDTH), bool)
    square[4:10, 4:10] = True
    videos = []
    for video_id, key in ((1, "clips/a"), (2, "clips/b")):
        frames = (f"{key}/000000", f"{key}/000002")
        for frame in frames:
            exporter.write(
                ImageEntry(frame, f"{frame}.jpg", WIDTH, HEIGHT), [Instance(0, mask_to_rle(square), track_id=1)]
            )
        videos.append(VideoEntry(video_id, key, key.replace("/", "__"), frames, (0, 2), 5.0, WIDTH, HEIGHT))
    exporter.write(ENTRY, [Instance(1, mask_to_rle(square))])
    keys = [ENTRY.key, *videos[0].frame_keys, *videos[1].frame_keys]
    coco = json.loads(exporter.finish(keys, {0: "person"}, DatasetIndex({}, tuple(videos))).read_text())
    assert [(v["id"], v["name"], v["length"]) for v in coco["videos"]] == [
        (1, "clips__a", 2), (2, "clips__b", 2), (3, "sub/photo.jpg", 1),
    ]  # fmt: skip
    assert [(i["video_id"], i["frame_id"], i["frame_index"]) for i in coco["images"]] == [
        (3, 0, 0), (1, 0, 0), (1, 1, 2), (2, 0, 0), (2, 1, 2),
    ]  # fmt: skip  # frame_id: position among the written frames; frame_index: number in the video
    tracked = [a for a in coco["annotations"] if "track_id" in a]
    assert [(a["video_id"], a["track_id"], a["instance_id"], a["attributes"]["track_id"]) for a in tracked] == [
        (1, 1, 1, 1), (1, 1, 1, 1), (2, 2, 2, 2), (2, 2, 2, 2),
    ]  # fmt: skip  # track 1 of each video: unique in the file
    assert coco["tracks"] == [{"id": 1, "category_id": 1, "video_id": 1}, {"id": 2, "category_id": 1, "video_id": 2}]
    assert coco["categories"] == [{"id": 1, "name": "person"}, {"id": 2, "name": "class_1"}]
