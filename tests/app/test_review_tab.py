"""The Review tab's handlers called as plain functions (the browser walk is in test_browser_review.py), and the tab
and its keys in the built demo."""

from __future__ import annotations

import gradio as gr
import numpy as np
import pytest

from annotate.dataset import open_dataset
from app.demo import build_demo
from app.prompts import BOX, NEGATIVE, POSITIVE
from app.refusals import Refusal
from app.review_filters import ALL, ANY_CLASS, NEEDS_A_LOOK
from app.review_tab import GRID_MAX, KEYBOARD_JS

from .conftest import request
from .test_review_workflow import INSIDE_GREEN, A, studio, yolo_folder  # noqa: F401 (fixtures)

FILTERS = (ANY_CLASS, ALL, NEEDS_A_LOOK)


def test_open_pick_click_accept_and_save_through_the_handlers(studio, yolo_folder):  # noqa: F811
    studio.open_session(request())
    view = studio.review.open_local(*FILTERS, request())
    canvas, box_canvas, _, _, hint, _, grid, status, classes = view
    assert grid["selected_index"] is None  # no item open yet
    grid = grid["value"]
    assert canvas is None and box_canvas is None and "Open a dataset" in hint
    assert [caption for _, caption in grid] == ["b · 0 instances · nothing found", "a · 2 instances · to review",
                                                "c · 1 instance · to review"]  # fmt: skip
    assert all(picture.shape[2] == 3 and max(picture.shape[:2]) <= 160 for picture, _ in grid)
    assert classes["choices"] == [ANY_CLASS, "red", "green"] and "3 items listed" in status

    view = studio.review.pick_item(*FILTERS, gr.SelectData(None, {"index": 1, "value": None}), request())
    assert view.canvas.shape == (72, 96, 3) and "item 2 of 3" in view.status
    assert [label for label, _ in view.objects["choices"]] == ["Instance 1 · red — as saved",
                                                               "Instance 2 · green — as saved"]  # fmt: skip
    green = np.array(view.canvas[INSIDE_GREEN[1], INSIDE_GREEN[0]], int)
    view = studio.review.click(POSITIVE, gr.SelectData(None, {"index": list(INSIDE_GREEN), "value": None}), request())
    assert view.objects["value"] == "2" and view.objects["choices"][1][0] == "Instance 2 · green — edited"
    assert view.grid == gr.skip()  # a click does not send the grid again
    assert not np.array_equal(view.canvas[INSIDE_GREEN[1], INSIDE_GREEN[0]], green)  # the click's mark is drawn

    view = studio.review.relabel("2", "red", request())
    assert view.class_name["value"] == "red"
    view = studio.review.accept(*FILTERS, request())
    assert "item 3 of 3" in view.status and view.grid["value"][1][1].startswith("a · 2 instances · reviewed, edited")
    assert view.grid["selected_index"] == 2  # the grid marks the item in the editor
    *view, download = studio.review.save(*FILTERS, request())
    assert download is None and "Saved: 1 reviewed, 1 edited" in view[-1]
    saved = open_dataset(yolo_folder)
    assert saved.is_reviewed(A) and [a.class_name for a in saved.instances(A)] == ["red", "red"]


def test_a_box_dragged_and_a_new_class_typed_through_the_handlers(studio, yolo_folder):  # noqa: F811
    studio.open_session(request())
    studio.review.open_local(*FILTERS, request())
    studio.review.pick_item(*FILTERS, gr.SelectData(None, {"index": 1, "value": None}), request())  # a
    canvas, box_canvas, hint = studio.review.set_mode(BOX, request())
    assert canvas["visible"] is False and box_canvas["visible"] is True and "drag a box around it" in hint
    assert box_canvas["value"]["image"].shape == (72, 96, 3) and box_canvas["value"]["boxes"] == []
    studio.review.select_object("2", request())
    redraw = {"image": box_canvas["value"]["image"], "boxes": []}  # the canvas reports our own redraws too
    assert all(part == gr.skip() for part in studio.review.draw_box(redraw, request()))
    dragged = {"image": None, "boxes": [{"xmin": 58, "ymin": 38, "xmax": 90, "ymax": 68, "label": "", "color": ""}]}
    view = studio.review.draw_box(dragged, request())
    assert view.objects["choices"][1][0] == "Instance 2 · green — edited" and view.objects["value"] == "2"
    assert view.box_canvas["boxes"] == [] and view.box_canvas["image"].shape == (72, 96, 3)  # the box is drawn in

    canvas, box_canvas, _ = studio.review.set_mode(NEGATIVE, request())  # back to clicks: the work stays
    assert canvas["visible"] is True and box_canvas["visible"] is False
    view = studio.review.click(NEGATIVE, gr.SelectData(None, {"index": [60, 40], "value": None}), request())
    assert view.box_canvas == gr.skip() and view.objects["value"] == "2"

    view = studio.review.relabel("2", "bicycle", request())  # typed: a new class
    assert view.class_name["value"] == "bicycle" and view.class_name["choices"] == ["red", "green", "bicycle"]
    grid_filter, video_filter, track_class = studio.review_videos.follow_classes(request())
    assert grid_filter["choices"] == [ANY_CLASS, "red", "green"]  # not committed yet: not the dataset's
    studio.review.accept(*FILTERS, request())  # committed: the dataset has the class, the class lists offer it
    grid_filter, video_filter, track_class = studio.review_videos.follow_classes(request())
    assert grid_filter == video_filter == {"__type__": "update", "choices": [ANY_CLASS, "red", "green", "bicycle"]}
    assert track_class == {"__type__": "update", "choices": ["red", "green", "bicycle"]}  # values kept: not sent
    studio.review.save(*FILTERS, request())
    saved = open_dataset(yolo_folder)
    assert saved.names[2] == "bicycle" and [a.class_name for a in saved.instances(A)] == ["red", "bicycle"]


def test_the_editor_keeps_working_after_its_last_instance_is_deleted_or_a_name_is_refused(studio, yolo_folder):  # noqa: F811
    """Deleting an item's only instance leaves an editor with no object: it is drawn, and the next click works;
    Add object with a refused class name adds nothing; a dataset opened in Box (drag) stays in Box (drag)."""
    studio.open_session(request())
    studio.review.open_local(*FILTERS, request())
    studio.review.set_mode(BOX, request())
    studio.review.open_local(*FILTERS, request())  # opened again: the mode the user chose stays
    with studio.user_session(request()) as user:
        assert user.review.image.mode == BOX
    studio.review.set_mode(POSITIVE, request())
    view = studio.review.pick_item(*FILTERS, gr.SelectData(None, {"index": 2, "value": None}), request())  # c
    assert [label for label, _ in view.objects["choices"]] == ["Instance 1 · red — as saved"]
    view = studio.review.delete(request())
    assert view.objects["choices"] == [] and view.canvas.shape == (72, 96, 3) and "click" in view.hint
    view = studio.review.click(POSITIVE, gr.SelectData(None, {"index": list(INSIDE_GREEN), "value": None}), request())
    assert [label for label, _ in view.objects["choices"]] == ["Instance 1 · no class — edited"]  # the click works
    with studio.user_session(request()) as user:
        before = len(user.review.image.objects)
    with pytest.raises(Refusal, match="only in case"):
        studio.review.add_object("Red", request())  # differs from "red" only in case
    with studio.user_session(request()) as user:
        assert len(user.review.image.objects) == before  # nothing hidden was added


def test_the_demo_has_the_review_tab_after_auto_annotate_and_its_keys(small_model, yolo_folder):  # noqa: F811
    demo = build_demo(small_model, dataset=yolo_folder)
    tabs = [block.label for block in demo.blocks.values() if isinstance(block, gr.Tab)]
    assert tabs == ["Image", "Video", "Auto-annotate", "Review"]
    assert any(dependency.js == KEYBOARD_JS for dependency in demo.fns.values())
    for element in ("review_next", "review_prev", "review_accept", "review_delete", "review_undo"):
        assert element in KEYBOARD_JS
    assert GRID_MAX > 3


def test_the_lists_follow_each_track_edit_and_each_commit_in_the_demo(small_model, yolo_folder):  # noqa: F811
    demo = build_demo(small_model, dataset=yolo_folder)
    ids = {block._id: getattr(block, "elem_id", None) for block in demo.blocks.values()}
    follows = [d for d in demo.fns.values() if getattr(d.fn, "__name__", "") == "follow_classes"]
    assert follows and all([ids[o._id] for o in d.outputs] == ["review_filter_class", "review_video_class",
                                                               "review_track_class"] for d in follows)  # fmt: skip
    after = {ids[target] for d in follows for target, _ in demo.fns[d.trigger_after].targets}
    assert after == {"review_items", "review_prev", "review_next", "review_accept", "review_undo", "review_save",
                     "review_video"}  # fmt: skip
    edits = ("review_propagate", "review_cut", "review_merge", "review_swap", "review_relabel", "review_track_undo",
             "review_accept_video")  # fmt: skip
    for edit in edits:  # each redraws the video list (its captions say the edit) with the editor
        (dependency,) = [d for d in demo.fns.values() if [ids.get(t) for t, _ in d.targets] == [edit]]
        assert ids[dependency.outputs[-1]._id] == "review_video"
