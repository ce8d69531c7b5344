"""MOTChallenge files: the row converters round trip, seqinfo.ini and labels.txt as the readers parse them, and
frames linked into a sequence atomically."""

from __future__ import annotations

import configparser
import os

import pytest

from annotate.exporters.base import category_id_to_class_id, class_id_to_category_id
from annotate.mot import labels_text, mot_gt_line, mot_line_to_row, mot_result_line, seqinfo_text
from annotate.writers import hard_link


@pytest.mark.parametrize(
    ("frame", "track_id", "box", "class_id", "score", "gt", "results"),
    [
        (1, 3, (10.0, 20.5, 30.25, 40.0), 0, 0.87654, "1,3,10,20.5,30.25,40,1,1,1\n",
         "1,3,10,20.5,30.25,40,0.8765,-1,-1,-1\n"),
        (14, 1, (0.0, 0.0, 96.0, 72.0), 79, 1.0, "14,1,0,0,96,72,1,80,1\n", "14,1,0,0,96,72,1.0000,-1,-1,-1\n"),
        (2, 7, (1.234, 5.678, 9.0, 1.0), 2, 0.5, "2,7,1.23,5.68,9,1,1,3,1\n", "2,7,1.23,5.68,9,1,0.5000,-1,-1,-1\n"),
    ],
)  # fmt: skip
def test_ground_truth_and_results_rows(frame, track_id, box, class_id, score, gt, results):
    assert mot_gt_line(frame, track_id, box, class_id) == gt
    assert mot_result_line(frame, track_id, box, score) == results
    rounded = tuple(round(v, 2) for v in box)
    assert mot_line_to_row(gt) == (frame, track_id, rounded, 1.0, class_id + 1)  # consider 1, class 1-based
    assert mot_line_to_row(results) == (frame, track_id, rounded, round(score, 4), -1)
    with pytest.raises(ValueError, match="Not a MOT row"):
        mot_line_to_row("1,2,3")


def test_class_ids_are_category_ids_minus_one():
    assert [class_id_to_category_id(c) for c in (0, 1, 79)] == [1, 2, 80]
    assert [category_id_to_class_id(class_id_to_category_id(c)) for c in range(5)] == list(range(5))
    with pytest.raises(ValueError, match="start at 1"):
        category_id_to_class_id(0)
    with pytest.raises(ValueError, match="start at 0"):
        class_id_to_category_id(-1)


@pytest.mark.parametrize(("fps", "written"), [(10.0, 10), (29.97, 30), (10 / 3, 3), (0.4, 1)])
def test_seqinfo_has_mots_keys_and_an_integer_frame_rate(fps, written):
    parser = configparser.ConfigParser()
    parser.optionxform = str  # keep MOT's camelCase keys
    parser.read_string(seqinfo_text("clips__north", fps, 14, 96, 72))
    assert dict(parser["Sequence"]) == {
        "name": "clips__north", "imDir": "img1", "frameRate": str(written), "seqLength": "14", "imWidth": "96",
        "imHeight": "72", "imExt": ".jpg",
    }  # fmt: skip
    with pytest.raises(ValueError, match="needs a length"):
        seqinfo_text("x", fps, 3, 0, 72)


def test_labels_name_every_class_in_order():
    assert labels_text({0: "person", 2: "car"}) == "person\nclass_1\ncar\n"  # line N is class N - 1: no gaps
    assert labels_text({0: "a"}, [3]) == "a\nclass_1\nclass_2\nclass_3\n"  # a used class beyond the names
    assert labels_text({0: "two\nlines "}) == "two lines\n"
    assert labels_text({}) == ""


def test_frames_are_hard_links_else_copies_and_replace_atomically(tmp_path, monkeypatch):
    source = tmp_path / "images" / "000000.jpg"
    source.parent.mkdir()
    source.write_bytes(b"frame 0")
    target = tmp_path / "mot" / "seq" / "img1" / "000001.jpg"
    hard_link(source, target)
    assert os.path.samefile(source, target)
    other = tmp_path / "images" / "000001.jpg"
    other.write_bytes(b"frame 1")
    monkeypatch.setattr(os, "link", lambda *a: (_ for _ in ()).throw(OSError("links not allowed")))
    hard_link(other, target)  # an existing target is replaced, by a copy where links are impossible
    assert target.read_bytes() == b"frame 1" and not os.path.samefile(other, target)
    assert sorted(p.name for p in target.parent.iterdir()) == ["000001.jpg"]  # no temporary file left
