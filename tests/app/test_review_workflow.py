"""`ReviewWorkflow`: a dataset opened from `--dataset` or an uploaded zip, listed, its items edited with the Image
tab's operations, committed as the dataset's edits and saved (in place, or as a download named after the upload).

The dataset is an ultralytics YOLO-seg folder written here: `a` (a red and a green square), `b` (no label: nothing
found) and `c` (the red square only), 96x72 pictures of `tests/annotate/clips`.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from annotate.dataset import open_dataset
from annotate.refine import mask_side, mask_to_mask_input
from app.detector_pool import DetectorPool
from app.gpu import GpuRunner
from app.prompts import BOX, BOX_CLICKS, NEGATIVE, POSITIVE
from app.refusals import Refusal
from app.review_classes import MAX_NEW_CLASSES
from app.review_filters import ANY_CLASS, DATASET_ORDER, EDITED, NOTHING_FOUND, REVIEWED, TO_REVIEW
from app.review_workflow import ReviewWorkflow
from app.sessions import ReviewState
from app.settings import Limits, parse_settings
from app.studio import Studio
from sam2_model import ImagePredictor

from ..annotate.clips import clip_frames, colour_masks

RED, GREEN = (
    "0 0.1875 0.138889 0.4375 0.138889 0.4375 0.472222 0.1875 0.472222",
    ("1 0.625 0.555556 0.916667 0.555556 0.916667 0.916667 0.625 0.916667"),
)  # YOLO polygons of the squares of frame 5: red x 18..42, y 10..34; green x 60..88, y 40..66
INSIDE_GREEN, INSIDE_RED = (74, 52), (30, 20)
A, B, C = (f"images/train/{name}" for name in "abc")  # item keys: paths without suffix


@pytest.fixture
def yolo_folder(tmp_path) -> Path:
    folder = tmp_path / "squares"
    picture = clip_frames(6)[5]
    (folder / "images" / "train").mkdir(parents=True)
    (folder / "labels" / "train").mkdir(parents=True)
    for shade, name in enumerate("abc"):
        picture[0, 0] = shade  # three pictures (the embedding cache tells them apart), the same squares
        cv2.imwrite(str(folder / "images" / "train" / f"{name}.png"), picture[:, :, ::-1])
    (folder / "labels" / "train" / "a.txt").write_text(f"{RED}\n{GREEN}\n")
    (folder / "labels" / "train" / "c.txt").write_text(f"{RED}\n")
    (folder / "data.yaml").write_text(yaml.safe_dump({"train": "images/train", "names": {0: "red", 1: "green"}}))
    return folder


@pytest.fixture
def studio(small_model, yolo_detector, yolo_folder) -> Studio:
    detectors = DetectorPool(["yolo11n.pt"], loader=lambda name: yolo_detector)
    return Studio(small_model, Limits(max_sessions=4), detectors, dataset=yolo_folder)


@pytest.fixture
def review(studio) -> Iterator[tuple[ReviewWorkflow, ReviewState]]:
    workflow = studio.reviewing
    state = workflow.open_local(ReviewState())
    yield workflow, state
    if state.prefetch is not None and state.prefetch.thread is not None:
        state.prefetch.thread.join()  # its encoding would count in the next test's cache statistics


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------ open and list
def test_the_dataset_flag_is_a_path_on_the_machine_that_runs_the_studio(yolo_folder, tmp_path):
    assert parse_settings(["--dataset", str(yolo_folder)], environ={}).dataset == str(yolo_folder)
    assert parse_settings([], environ={}).dataset is None
    with pytest.raises(SystemExit):
        parse_settings(["--dataset", str(tmp_path / "missing")], environ={})


def test_without_a_dataset_flag_there_is_nothing_to_open_locally(small_model):
    with pytest.raises(Refusal, match="upload a dataset zip"):
        Studio(small_model).reviewing.open_local(ReviewState())


def test_items_are_listed_with_their_classes_and_status_filtered_and_in_needs_a_look_order(review):
    workflow, state = review
    rows = workflow.rows(state)
    assert rows[0].key == B  # nothing found comes first
    assert {r.key: (r.classes, r.status) for r in rows} == {
        A: (("red", "green"), "to review"), B: ((), "nothing found"), C: (("red",), "to review")
    }  # fmt: skip
    assert state.listed == [r.key for r in rows]
    assert [r.key for r in workflow.rows(state, "green")] == [A] and state.listed == [A]
    assert [r.key for r in workflow.rows(state, ANY_CLASS, NOTHING_FOUND)] == [B]
    assert [r.key for r in workflow.rows(state, order=DATASET_ORDER)] == [A, B, C]
    assert workflow.class_names(state) == ["red", "green"]

    assert [r.key for r in workflow.rows(state)] == [B, A, C]  # the rest: equal quality, dataset order
    workflow.load(state, C)
    workflow.delete(state)
    assert workflow.accept(state) is False and state.key == C  # committed, reviewed; the list's last item
    assert [r.key for r in workflow.rows(state, ANY_CLASS, REVIEWED)] == [C]
    assert [r.key for r in workflow.rows(state, ANY_CLASS, EDITED)] == [C]
    assert [r.key for r in workflow.rows(state, ANY_CLASS, TO_REVIEW)] == [B, A]
    assert workflow.rows(state, order=DATASET_ORDER)[2].status == "reviewed, edited, nothing found"


# ---------------------------------------------------------------------------------------------------- editing
def test_an_item_becomes_an_image_state_whose_objects_are_its_instances(review):
    workflow, state = review
    workflow.load(state, A)
    image = state.image
    assert image.image is not None and image.image.shape == (72, 96, 3) and image.name == A
    assert [o.class_name for o in image.objects] == ["red", "green"]
    red, green = colour_masks(clip_frames(6)[5])
    for obj, square in zip(image.objects, (red, green), strict=True):
        assert obj.mask is not None and (obj.mask == square).mean() > 0.97  # the polygon, filled
        assert obj.prior is not None and not obj.points and obj in state.originals
    workflow.load(state, B)
    assert len(state.image.objects) == 1 and state.image.objects[0].mask is None  # one to draw, of the first class
    assert state.image.objects[0].class_name == "red"


def test_a_click_on_an_instance_refines_it_from_its_stored_mask(review, small_model, yolo_folder):
    workflow, state = review
    workflow.load(state, A)
    assert state.image.active == 0
    workflow.click(state, list(INSIDE_GREEN))
    image = state.image
    assert image.active == 1 and image.objects[1].points == [(*INSIDE_GREEN, 1)]  # the instance clicked
    refined = image.objects[1].mask

    predictor = ImagePredictor(small_model)  # what Meta's API gives for that prompt: the stored mask and the click
    predictor.set_image(image.image)
    stored = open_dataset(yolo_folder).instances(A)[1].mask
    masks, _, _ = predictor.predict([INSIDE_GREEN], [1], mask_input=mask_to_mask_input(stored, mask_side(predictor)),
                                    multimask_output=False)  # fmt: skip
    np.testing.assert_array_equal(refined, masks[0] > 0)
    library = open_dataset(yolo_folder)
    library.refine_instance(A, 1, predictor, [INSIDE_GREEN], [1])  # the library's own refinement agrees
    np.testing.assert_array_equal(refined, library.instances(A)[1].mask)

    workflow.undo(state)  # no click left: the stored mask again, not nothing
    np.testing.assert_array_equal(state.image.objects[1].mask, stored)


def test_edits_are_committed_to_the_dataset_and_saved_in_place(review, yolo_folder):
    workflow, state = review
    before = snapshot(yolo_folder)
    workflow.rows(state, order=DATASET_ORDER)
    workflow.load(state, A)
    state.image.mode = NEGATIVE
    workflow.click(state, [30, 30])  # a negative click refines the active (red) instance
    refined = state.image.objects[0].mask
    workflow.relabel(state, 2, "red")  # the green square is called red
    workflow.delete(state)  # ... and then deleted
    workflow.undo(state)  # no: it comes back, still called red
    assert [o.class_name for o in state.image.objects] == ["red", "red"]
    workflow.add_object(state, "green")
    state.image.mode = BOX_CLICKS
    workflow.click(state, [60, 5])
    workflow.click(state, [90, 30])  # a box: a new instance
    added = state.image.objects[2].mask
    with pytest.raises(Refusal, match="only in case"):
        workflow.relabel(state, 3, "Green")
    assert workflow.accept(state) is True and state.key == B  # committed, reviewed, on to the next item
    dataset = state.dataset
    assert [e.action for e in dataset.history][::-1] == ["refine", "change_class", "add", "reviewed"]
    committed = dataset.instances(A)
    np.testing.assert_array_equal(committed[0].mask, refined)
    np.testing.assert_array_equal(committed[2].mask, added)
    assert snapshot(yolo_folder) == before  # nothing written before Save

    text, download = workflow.save(state, yolo_folder.parent / "downloads")
    assert download is None and "1 reviewed, 1 edited" in text
    saved = open_dataset(yolo_folder)
    instances = saved.instances(A)
    assert [a.class_name for a in instances] == ["red", "red", "green"] and saved.is_reviewed(A)
    assert instances[2].mask.any()  # YOLO keeps the added mask's outline (a polygon)
    assert snapshot(yolo_folder)["labels/train/c.txt"] == before["labels/train/c.txt"]  # untouched items stay


def test_a_box_dragged_on_an_instance_refines_it_from_its_stored_mask_and_the_next_click_works(review, small_model):
    workflow, state = review
    workflow.load(state, A)
    workflow.images.select_object(state.image, 2)  # the green instance
    workflow.images.set_mode(state.image, BOX)
    stored = state.image.objects[1].mask
    assert workflow.drag_box(state, (70.0, 50.0, 70.0, 60.0)) is False  # no area: a drag just begun
    assert state.image.objects[1].box is None and not state.image.edits
    assert workflow.drag_box(state, (58.0, 38.0, 90.0, 68.0)) is True
    green = state.image.objects[1]
    assert state.image.active == 1 and green.box == [58, 38, 90, 68]  # preview = image pixels here (96x72)

    predictor = ImagePredictor(small_model)  # Meta's API for that prompt: the stored mask and the box
    predictor.set_image(state.image.image)
    prompt = mask_to_mask_input(stored, mask_side(predictor))
    masks, _, _ = predictor.predict(box=np.array([58, 38, 90, 68], np.float32), mask_input=prompt,
                                    multimask_output=False)  # fmt: skip
    np.testing.assert_array_equal(green.mask, masks[0] > 0)

    workflow.images.set_mode(state.image, NEGATIVE)  # a mode change keeps the work, and the next click works
    assert green.box == [58, 38, 90, 68]
    workflow.click(state, [60, 40])
    assert state.image.active == 1 and green.points == [(60, 40, 0)] and green.box == [58, 38, 90, 68]
    workflow.undo(state)
    workflow.undo(state)  # the box goes: the stored mask again
    assert green.box is None
    np.testing.assert_array_equal(green.mask, stored)
    workflow.images.set_mode(state.image, BOX)
    workflow.drag_box(state, (58.0, 38.0, 90.0, 68.0))
    assert workflow.commit(state) == 1 and [e.action for e in state.dataset.history] == ["refine"]
    np.testing.assert_array_equal(state.dataset.instances(A)[1].mask, masks[0] > 0)


def test_a_typed_new_class_is_added_to_the_dataset_on_commit_and_saved(review, yolo_folder):
    workflow, state = review
    workflow.rows(state, order=DATASET_ORDER)
    workflow.load(state, A)
    workflow.relabel(state, 2, " bicycle ")  # the green square is a bicycle: a class the dataset lacks
    assert state.image.objects[1].class_name == "bicycle" and workflow.class_choices(state)[-1] == "bicycle"
    assert workflow.class_names(state) == ["red", "green"]  # not the dataset's until committed
    workflow.undo(state)
    assert state.image.objects[1].class_name == "green" and "bicycle" not in workflow.class_choices(state)
    workflow.relabel(state, 2, "bicycle")
    workflow.add_object(state, "scooter")  # a missed object of another new class, boxed by two clicks
    state.image.mode = BOX_CLICKS
    workflow.click(state, [60, 5])
    workflow.click(state, [90, 30])
    for name, refused in (("Red", "only in case"), ("tab\there", "control character"), ("x" * 65, "at most 64")):
        with pytest.raises(Refusal, match=refused):
            workflow.relabel(state, 1, name)
    assert workflow.accept(state) is True  # committed: the classes are the dataset's
    assert workflow.class_names(state) == ["red", "green", "bicycle", "scooter"]
    workflow.save(state, yolo_folder.parent / "downloads")
    saved = open_dataset(yolo_folder)
    assert [a.class_name for a in saved.instances(A)] == ["red", "bicycle", "scooter"]
    assert yaml.safe_load((yolo_folder / "data.yaml").read_text())["names"] == {0: "red", 1: "green", 2: "bicycle",
                                                                              3: "scooter"}  # fmt: skip


def test_a_hosted_review_adds_at_most_so_many_classes(review):
    workflow, state = review
    workflow.load(state, A)
    for number in range(MAX_NEW_CLASSES - 1):
        state.dataset.add_class(f"kind {number}")
    workflow.relabel(state, 1, "one more")  # the last one allowed (pending in the editor)
    state.hosted = True
    with pytest.raises(Refusal, match=f"{MAX_NEW_CLASSES} new classes"):
        workflow.relabel(state, 2, "and another")
    workflow.relabel(state, 2, "kind 3")  # classes already added stay choosable
    state.hosted = False  # on one's own machine: no cap
    workflow.relabel(state, 2, "and another")
    assert [o.class_name for o in state.image.objects] == ["one more", "and another"]


def test_undo_takes_back_deletes_class_changes_and_clicks_in_time_order(review):
    workflow, state = review
    workflow.load(state, A)
    workflow.click(state, list(INSIDE_RED))
    workflow.relabel(state, 1, "green")
    state.image.active = 1
    workflow.delete(state)
    assert [o.class_name for o in state.image.objects] == ["green"]
    workflow.undo(state)
    assert [o.class_name for o in state.image.objects] == ["green", "green"]
    workflow.undo(state)
    assert [o.class_name for o in state.image.objects] == ["red", "green"] and state.image.objects[0].points
    workflow.undo(state)
    assert not state.image.objects[0].points
    assert workflow.commit(state) == 0  # back as loaded: nothing to write


def test_an_empty_refinement_is_refused_before_anything_is_committed(review):
    workflow, state = review
    workflow.load(state, A)
    state.image.mode = POSITIVE
    workflow.click(state, list(INSIDE_RED))
    state.image.objects[0].candidates = np.zeros((1, 72, 96), bool)
    state.image.active = 1
    workflow.delete(state)  # the green one: a change that must not be committed either
    with pytest.raises(Refusal, match="Object 1's mask is empty"):
        workflow.commit(state)
    assert state.key == A and not state.dataset.history


def test_undo_goes_on_into_the_edits_committed_on_earlier_items_showing_each(review):
    workflow, state = review
    workflow.rows(state, order=DATASET_ORDER)
    workflow.load(state, A)
    workflow.delete(state)  # the red square
    assert workflow.accept(state) and state.key == B  # committed and reviewed: the dataset's edits now
    assert workflow.undo(state) == f"Undone: Accept on {A}."
    assert state.key == A and not state.dataset.is_reviewed(A)  # back on the item, to see it
    assert [o.class_name for o in state.image.objects] == ["green"]
    assert workflow.undo(state) == f"Undone: a delete on {A}."
    assert [o.class_name for o in state.image.objects] == ["red", "green"] and not state.dataset.is_changed(A)
    workflow.step(state, 1)
    workflow.relabel(state, 1, "green")  # B's new object (not drawn: not an instance), then C's edit, left by Next
    workflow.step(state, 1)
    workflow.relabel(state, 1, "green")
    workflow.step(state, -1)
    assert state.key == B and workflow.undo(state) == f"Undone: a change of class on {C}."
    assert state.key == C and [o.class_name for o in state.image.objects] == ["red"]
    with pytest.raises(Refusal, match="Nothing to undo"):
        workflow.undo(state)
    text, _ = workflow.save(state, Path("unused"))
    assert "0 reviewed, 0 edited" in text


def test_a_save_refused_because_another_tab_saved_keeps_the_edits_and_says_what_to_do(review, yolo_folder):
    workflow, state = review
    other = open_dataset(yolo_folder)  # another tab on the same folder
    workflow.load(state, A)
    other.instances(A)
    workflow.delete(state)
    other.change_class(A, 0, "green")
    other.save()
    saved = snapshot(yolo_folder)
    with pytest.raises(
        Refusal, match=r"Nothing was saved: a\.txt, review\.json changed on disk since you opened"
    ) as error:
        workflow.save(state, Path("unused"))
    assert "open the dataset again" in str(error.value) and snapshot(yolo_folder) == saved
    assert state.key == A and len(state.dataset.instances(A)) == 1  # the delete is kept, unsaved
    assert [o.class_name for o in state.image.objects] == ["green"]


# ------------------------------------------------------------------------------------------- the next item
def test_moving_to_the_next_item_finds_its_embedding_computed_while_the_user_worked(review, small_model):
    workflow, state = review
    cache = small_model.embedding_cache
    cache.clear()
    workflow.rows(state, order=DATASET_ORDER)
    workflow.load(state, A)
    assert state.prefetch is not None and state.prefetch.key == B
    state.prefetch.thread.join()  # the user took their time
    hits, misses = cache.hits, cache.misses
    assert workflow.step(state, 1) and state.key == B
    assert state.prefetch.key == C
    state.prefetch.thread.join()
    assert (cache.hits - hits, cache.misses - misses) == (1, 1)  # B's hit; the one miss is C's prefetch
    cache.clear()  # without the prefetch (the cache lost it), the move encodes the picture
    state.prefetch = None
    hits, misses = cache.hits, cache.misses
    assert workflow.step(state, 1) and state.key == C
    assert (cache.hits - hits, cache.misses - misses) == (0, 1)


# --------------------------------------------------------------------------------------------------- hosted
def test_an_uploaded_zip_is_extracted_in_the_session_and_saved_as_a_download_named_after_it(
    studio, yolo_folder, tmp_path
):
    upload = tmp_path / "my squares.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        for path in sorted(yolo_folder.rglob("*")):
            if path.is_file():
                archive.write(path, f"squares/{path.relative_to(yolo_folder).as_posix()}")
        archive.writestr("../outside.txt", "a path that leaves the folder")
        archive.writestr("squares/notes.docx", "not a dataset file")
        archive.writestr("squares/.auto_annotate/done/a.json", "{}")  # a run's working files: not the dataset's
        archive.writestr("__MACOSX/squares/._data.yaml", "macOS's copy of the file's attributes")
    workdir = tmp_path / "session"
    workdir.mkdir()
    before = snapshot(yolo_folder)
    workflow = studio.reviewing
    state = workflow.open_upload(str(upload), workdir)
    assert state.hosted and state.name == "my squares" and state.dataset.root.is_relative_to(workdir)
    assert not (tmp_path / "outside.txt").exists() and not (state.dataset.root / "notes.docx").exists()
    assert sorted(p.name for p in workdir.rglob("*") if "auto_annotate" in p.name or "MACOSX" in p.name) == []
    workflow.rows(state)
    workflow.load(state, C)
    workflow.delete(state)
    text, download = workflow.save(state, workdir / "downloads")
    assert download is not None and download.name == "my squares.zip" and "1 edited" in text
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(download) as archive:
        archive.extractall(unpacked)
    assert open_dataset(unpacked).instances(C) == () and len(open_dataset(unpacked).instances(A)) == 2
    assert snapshot(yolo_folder) == before  # the upload's copy was edited, never a server folder

    not_a_zip = tmp_path / "a.png"
    shutil.copy(yolo_folder / "images" / "train" / "a.png", not_a_zip)
    with pytest.raises(Refusal, match=r"one \.zip"):
        workflow.open_upload(str(not_a_zip), workdir)
    small = Studio(studio.model, Limits(max_zip_entries=3), studio.detectors)
    with pytest.raises(Refusal, match="entries"):
        small.reviewing.open_upload(str(upload), workdir)


def test_an_uploaded_coco_file_stating_a_huge_image_is_refused_before_a_mask_is_decoded(studio, tmp_path):
    coco = {
        "images": [{"id": 1, "file_name": "big.png", "width": 100_000, "height": 100_000}],
        "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "segmentation": [[0, 0, 9, 0, 9, 9]],
                         "area": 40, "bbox": [0, 0, 9, 9], "iscrowd": 0}],
        "categories": [{"id": 1, "name": "thing"}],
    }  # fmt: skip
    upload = tmp_path / "big.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        archive.writestr("instances.json", json.dumps(coco))
        _, png = cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))
        archive.writestr("images/big.png", png.tobytes())
    with pytest.raises(Refusal, match="100000x100000 pixels; the limit is 25,000,000"):
        studio.reviewing.open_upload(str(upload), tmp_path)


def test_under_the_zerogpu_stand_in_the_prefetch_and_a_refining_click_cross_the_process_boundary(
    small_model, yolo_detector, yolo_folder, zerogpu
):
    forked = Studio(small_model, Limits(max_sessions=4), DetectorPool(["yolo11n.pt"], loader=lambda n: yolo_detector),
                    runner=GpuRunner(zerogpu, isolated=True), dataset=yolo_folder)  # fmt: skip
    workflow = forked.reviewing
    state = workflow.open_local(ReviewState())
    workflow.rows(state, order=DATASET_ORDER)
    workflow.load(state, A)
    prefetched = state.prefetch
    prefetched.thread.join()
    assert prefetched.key == B and prefetched.features is not None  # the embedding came back from the worker
    workflow.click(state, list(INSIDE_GREEN))
    assert workflow.step(state, 1) and state.key == B and state.image.features is prefetched.features
    state.prefetch.thread.join()
    assert [call.task for call in zerogpu.calls] == ["embed_image", "embed_image", "segment_image", "embed_image"]

    library = open_dataset(yolo_folder)  # what our predictor gives in this process for the stored mask and click
    predictor = ImagePredictor(small_model)
    predictor.set_image(library.image(A))
    prompt = mask_to_mask_input(library.instances(A)[1].mask, mask_side(predictor))
    masks, _, _ = predictor.predict([INSIDE_GREEN], [1], mask_input=prompt, multimask_output=False)
    np.testing.assert_array_equal(state.dataset.instances(A)[1].mask, masks[0] > 0)  # committed on moving on
