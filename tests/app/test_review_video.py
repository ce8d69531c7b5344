"""`VideoReview`: a dataset's videos listed, opened at a frame (instances named by track and class), and their tracks
edited from the review workflow — corrected with clicks and re-propagated by SAM 2 over a range, deleted from a
frame on, merged, swapped, relabelled, undone — each changing only what it should, read back after save.

The dataset is an `auto_annotate` run (every format) over two clips of `tests/annotate/clips`: north (7 frames, a red
square tracked as track 1 on every frame, a green one as track 2 from frame 2) and south (5 frames: tracks 3 and 4).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from annotate import auto_annotate
from annotate.dataset import open_dataset
from annotate.previews import write_h264
from annotate.review import CLASS_SWITCH, LOW_FILL, TRACK_ENDS_EARLY
from annotate.track_review import TrackConcern
from app.canvas import colour_slots
from app.media import color_of
from app.refusals import Refusal
from app.review_filters import (
    ALL,
    ANY_CLASS,
    DATASET_ORDER,
    EDITED,
    NEEDS_A_LOOK,
    NOTHING_FOUND,
    REVIEWED,
    STATUSES,
    TO_REVIEW,
)
from app.review_tab import ReviewView
from app.review_video import TO_THE_END, TrackRow, VideoReview, VideoRow
from app.sessions import ImageObject, ReviewState
from app.studio import Studio
from sam2_model import VideoPredictor

from ..annotate.clips import ColourDetector, clip_frames, colour_masks, use_colour_tracker
from .conftest import IN_PROCESS, ZERO_GPU, request, runner_for

NORTH, SOUTH, RED, GREEN = "clips/north", "clips/south", 1, 2
INSIDE_GREEN = (74, 52)  # image pixels of frame 2 on: green x 60..88, y 40..66


@pytest.fixture(scope="module")
def annotated(tmp_path_factory, small_model) -> Path:
    data = tmp_path_factory.mktemp("review_video") / "data"
    for name, count in {"clips/north.mp4": 7, "clips/south.mp4": 5}.items():
        write_h264(clip_frames(count, green_from=2), data / name, fps=10)
    with pytest.MonkeyPatch.context() as patch:
        use_colour_tracker(patch)
        auto_annotate(data, det_model=ColourDetector(), sam_model=small_model, output_dir=data.parent / "all",
                      formats=["yolo", "coco", "masks"], keyframe_interval=2, progress=False)  # fmt: skip
    return data.parent / "all"


@pytest.fixture
def folder(annotated, tmp_path) -> Path:
    target = tmp_path / "all"
    shutil.copytree(annotated, target, symlinks=True)
    return target


@pytest.fixture
def review(small_model, folder) -> tuple[VideoReview, ReviewState]:
    studio = Studio(small_model, dataset=folder)
    return studio.reviewing_videos, studio.reviewing.open_local(ReviewState())


def tracks_of(folder: Path, video: str = NORTH) -> list[dict[int, str]]:
    """Each frame's {track id: class name}, as the saved dataset reads back."""
    dataset = open_dataset(folder)
    return [{a.track_id: a.class_name for a in dataset.instances(k)} for k in dataset.video(video).frame_keys]


def saved(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


ORIGINAL = [{RED: "red"}] * 2 + [{RED: "red", GREEN: "green"}] * 5


def north_open_at(small_model, folder: Path, frame: int) -> Studio:
    """A studio reviewing `folder` (`--dataset`), its video list listed and north open at `frame`."""
    studio = Studio(small_model, dataset=folder)
    studio.open_session(request())
    studio.review.open_local(ANY_CLASS, ALL, NEEDS_A_LOOK, request())
    studio.review_videos.list_videos(request())
    studio.review_videos.open(NORTH, request())
    studio.review_videos.move(frame, request())
    return studio


# ------------------------------------------------------------------------------------------------ list and open
def test_videos_are_listed_and_a_video_opens_at_a_frame_with_its_tracks_as_objects(review):
    videos, state = review
    assert videos.reviewing.rows(state) == []  # the image grid leaves frames out
    both = ("red", "green")
    assert videos.rows(state) == [VideoRow(NORTH, 7, (RED, GREEN), False, False, both),
                                  VideoRow(SOUTH, 5, (3, 4), False, False, both)]  # fmt: skip
    assert videos.rows(state)[0].status == "to review"
    videos.open(state, NORTH, 3)
    assert (state.video, state.frame, state.key) == (NORTH, 3, state.dataset.video(NORTH).frame_keys[3])
    assert state.image.image is not None and state.image.image.shape == (72, 96, 3)
    assert videos.object_names(state) == ["track 1: red", "track 2: green"]
    red, green = colour_masks(clip_frames(7, green_from=2)[3])
    for obj, square in zip(state.image.objects, (red, green), strict=True):
        assert obj.mask is not None and (obj.mask == square).mean() > 0.97
    assert videos.track_rows(state) == [
        TrackRow(RED, "red", tuple(range(7))),
        TrackRow(GREEN, "green", (2, 3, 4, 5, 6)),
    ]
    assert (videos.track_rows(state)[1].first, videos.track_rows(state)[1].last) == (2, 6)
    for edit in (videos.reviewing.delete, videos.reviewing.add_object):  # an image's edits, not a track's
        with pytest.raises(Refusal, match="use the Videos section"):
            edit(state)
    videos.show(state, 0)
    assert videos.object_names(state) == ["track 1: red"]
    with pytest.raises(Refusal, match="choose 0 to 6"):
        videos.show(state, 7)
    with pytest.raises(Refusal, match="No video 'clips/east'"):
        videos.open(state, "clips/east")
    videos.accept(state)
    assert [(r.key, r.status) for r in videos.rows(state)] == [(SOUTH, "to review"), (NORTH, "reviewed")]  # last


def test_the_video_list_is_filtered_by_class_and_status_in_the_needs_a_look_order(review):
    videos, state = review
    assert [r.key for r in videos.rows(state)] == [NORTH, SOUTH]  # nothing flagged: dataset order
    videos.open(state, SOUTH, 3)
    assert videos.delete_track(state, 4) == 2  # the green square now vanishes mid-picture after frame 2
    rows = videos.rows(state)
    assert [r.key for r in rows] == [SOUTH, NORTH]  # a track that ends early comes first
    assert rows[0].concerns == (TrackConcern(4, TRACK_ENDS_EARLY, 2),) and rows[0].reasons == (TRACK_ENDS_EARLY,)
    assert rows[0].why == "track 4 ends early (frame 2)" and rows[1].why == ""
    unordered = videos.rows(state, order=DATASET_ORDER)
    assert [r.key for r in unordered] == [NORTH, SOUTH] and unordered[1].concerns == ()
    assert videos.change_class(state, 3, "green") == 5  # south holds green tracks only
    assert [r.key for r in videos.rows(state, "red")] == [NORTH]
    assert [r.key for r in videos.rows(state, "green")] == [SOUTH, NORTH]
    videos.accept(state)  # every frame of south reviewed: it goes last, flagged or not
    assert [r.key for r in videos.rows(state)] == [NORTH, SOUTH]
    listed = {status: [r.key for r in videos.rows(state, ANY_CLASS, status)] for status in STATUSES}
    assert listed == {ALL: [NORTH, SOUTH], TO_REVIEW: [NORTH], REVIEWED: [SOUTH], EDITED: [SOUTH], NOTHING_FOUND: []}
    with pytest.raises(Refusal, match="Choose a status"):
        videos.rows(state, ANY_CLASS, "Lost")


def test_a_video_rows_caption_names_its_first_track_concerns_then_counts_the_others_then_other_reasons():
    concerns = tuple(TrackConcern(t, r, f) for t, r, f in ((3, TRACK_ENDS_EARLY, 5), (2, CLASS_SWITCH, 6),
                                                          (4, TRACK_ENDS_EARLY, 8), (5, CLASS_SWITCH, 8)))  # fmt: skip
    row = VideoRow("v", 9, (2, 3, 4, 5), False, False, ("car",), (LOW_FILL, TRACK_ENDS_EARLY, CLASS_SWITCH), concerns)
    named = "track 3 ends early (frame 5), track 2 switches class (frame 6)"
    assert row.why == f"{named}, 2 more track concerns, thin masks"
    assert VideoRow("v", 9, (2,), False, False, ("car",), (), concerns[:3]).why.endswith(", 1 more track concern")


def test_a_track_keeps_its_colour_on_every_frame(small_model, folder):
    """A track's instance is drawn in its track's colour whatever else the frame holds, so an id switch shows as a
    change of colour; an object that is not a track's takes the colours after the tracks'."""
    studio = north_open_at(small_model, folder, 3)
    tab = studio.review_videos
    with studio.user_session(request()) as user:
        assert user.review.video_tracks == [RED, GREEN] and colour_slots(user.review) == [0, 1]
    tab.cut("1", ANY_CLASS, ALL, NEEDS_A_LOOK, request())  # frames 3 to 6 hold the green track alone
    *view, _, tracks, _, _ = tab.move(5, request())
    with studio.user_session(request()) as user:
        state = user.review
        assert state.tracks == [GREEN] and colour_slots(state) == [1]
        x, y = INSIDE_GREEN
        frame = state.image.image[y, x].astype(int)
    drawn = view[0][y, x].astype(int)  # the canvas: half the frame, half the track's colour
    near_track, near_first = (np.abs(drawn - (frame + color_of(i).as_rgb()) / 2).max() for i in (1, 0))
    assert near_track <= 10 < 40 < near_first
    assert f'style="color:{color_of(1).as_hex()}">■ track 2' in tracks  # the timeline's bar, the same colour
    with studio.user_session(request()) as user:
        user.review.image.objects.append(ImageObject())
        assert colour_slots(user.review) == [1, 2]


# ------------------------------------------------------------------------------------------------ track edits
def test_delete_from_a_frame_on_merge_swap_and_class_change_are_saved_as_such(review, folder):
    videos, state = review
    south = {k: v for k, v in saved(folder).items() if "south" in k}
    videos.open(state, NORTH, 4)
    assert videos.delete_track(state, RED) == 3  # frames 4, 5, 6
    assert videos.object_names(state) == ["track 2: green"]  # the frame shown again
    assert videos.merge_tracks(state, RED, GREEN) == 3
    assert videos.object_names(state) == ["track 1: red"]
    videos.show(state, 2)
    assert videos.swap_tracks(state, RED, GREEN) == 5  # frames 2 to 6 (4 to 6: the merged track alone)
    assert videos.change_class(state, GREEN, "green") == 0  # already green: no edit
    assert videos.change_class(state, RED, "green") == 4  # track 1 is on frames 0 to 3 now
    with pytest.raises(Refusal, match="both on frames"):
        videos.merge_tracks(state, RED, GREEN)
    with pytest.raises(Refusal, match="not one of the dataset's classes"):
        videos.change_class(state, RED, "blue")
    assert videos.rows(state)[0].status == "edited"
    videos.reviewing.save(state, folder / "unused")
    assert tracks_of(folder) == [{RED: "green"}] * 2 + [{GREEN: "green", RED: "green"}] * 2 + [{GREEN: "green"}] * 3
    assert {k: v for k, v in saved(folder).items() if "south" in k} == south  # the other video, byte for byte
    assert videos.rows(state)[0].status == "edited"


def test_undo_takes_back_the_last_click_then_the_track_edits(review, folder):
    videos, state = review
    before = saved(folder)
    videos.open(state, NORTH, 4)
    videos.delete_track(state, GREEN)
    videos.swap_tracks(state, RED, GREEN)  # green is gone from frame 4 on: only red changes id (and class)
    assert videos.object_names(state) == ["track 2: green"]
    videos.click(state, [28, 20])  # inside the red square of frame 4 (x 16..40, y 10..34)
    assert state.image.objects[0].points
    videos.undo(state)  # the click
    assert not state.image.objects[0].points and videos.object_names(state) == ["track 2: green"]
    videos.undo(state)  # the swap
    assert videos.object_names(state) == ["track 1: red"]
    videos.undo(state)  # the delete
    assert videos.object_names(state) == ["track 1: red", "track 2: green"]
    with pytest.raises(Refusal, match="Nothing to undo"):
        videos.undo(state)
    videos.reviewing.save(state, folder / "unused")
    after = saved(folder)
    assert sorted(k for k in after if after[k] != before.get(k)) == []  # nothing changed, nothing written
    assert tracks_of(folder) == ORIGINAL


def test_undo_on_another_video_takes_back_the_last_edit_and_says_where_it_was(review):
    videos, state = review
    videos.open(state, NORTH, 4)
    videos.delete_track(state, GREEN)
    videos.open(state, SOUTH, 0)
    videos.accept(state)  # every frame of south reviewed: one edit
    assert all(state.dataset.is_reviewed(k) for k in state.dataset.video(SOUTH).frame_keys)
    assert videos.undo(state) == f"Undone: Accept on the video {SOUTH}."
    assert not any(state.dataset.is_reviewed(k) for k in state.dataset.video(SOUTH).frame_keys)  # all in one Undo
    assert videos.undo(state) == f"Undone: a track delete on the video {NORTH} (open it to see it)."
    dataset = state.dataset
    assert [
        {a.track_id: a.class_name for a in dataset.instances(k)} for k in dataset.video(NORTH).frame_keys
    ] == ORIGINAL
    assert state.video == SOUTH  # the south frame stays open


# ------------------------------------------------------------------------------------------ correct and propagate
@pytest.mark.parametrize("mode", [IN_PROCESS, ZERO_GPU])
def test_a_track_corrected_with_clicks_is_repropagated_over_the_range_only(folder, small_model, mode):
    studio = Studio(small_model, dataset=folder, runner=runner_for(mode))
    videos, state = studio.reviewing_videos, studio.reviewing.open_local(ReviewState())
    videos.open(state, NORTH, 4)
    with pytest.raises(Refusal, match="Correct the track first"):
        videos.repropagate(state, 1, 0)
    videos.select_track(state, GREEN)
    videos.click(state, list(INSIDE_GREEN))  # refines the green instance from its stored mask
    corrected = state.image.objects[1].mask
    assert corrected is not None and corrected.any() and state.image.objects[1].points
    dataset = state.dataset
    keys = dataset.video(NORTH).frame_keys
    loaded = [dataset.instances(k) for k in keys]
    assert videos.repropagate(state, 1, 0) >= 1  # this frame and the next
    if mode == ZERO_GPU:  # the re-propagation ran as a GPU task, in a forked worker, as on ZeroGPU
        assert "propagate_mask" in [call.task for call in studio.gpu.runner.decorator.calls]
    # what our VideoPredictor gives for that correction over frames 4 and 5, run directly
    predictor = VideoPredictor(small_model)
    session = predictor.init_state([dataset.image(k) for k in keys[4:6]])
    predictor.add_new_mask(session, 0, 1, corrected)
    direct = {4: corrected}
    for index, _, logits in predictor.propagate_in_video(session, 0, 1):
        if index != 0:
            direct[4 + index] = (logits[0, 0] > 0).cpu().numpy()
    predictor.close_state(session)
    videos.reviewing.save(state, folder / "unused")
    reopened = open_dataset(folder)
    for f, key in enumerate(keys):
        now = reopened.instances(key)
        red_now, red_then = ([a.mask.tolist() for a in i if a.track_id == RED] for i in (now, loaded[f]))
        assert red_now == red_then  # the other track untouched
        green = [a.mask for a in now if a.track_id == GREEN]
        if f in (4, 5):
            assert [g.tolist() for g in green] == ([direct[f].tolist()] if direct[f].any() else [])
        else:
            assert [g.tolist() for g in green] == [a.mask.tolist() for a in loaded[f] if a.track_id == GREEN]
    assert state.frame == 4 and not state.image.objects[-1].points  # shown again from the dataset
    with pytest.raises(Refusal, match="whole number"):
        videos.repropagate(state, -1, TO_THE_END)


# ------------------------------------------------------------------------------------------------------ the tab
def test_the_tab_lists_videos_moves_the_slider_and_cuts_a_track_through_its_handlers(small_model, folder):
    from app.review_video_tab import BACKWARD, BOTH, FORWARD, SOME, WHOLE, range_counts

    studio = Studio(small_model, dataset=folder)
    studio.open_session(request())
    studio.review.open_local(ANY_CLASS, ALL, NEEDS_A_LOOK, request())
    tab = studio.review_videos
    videos, classes, by_class, status, order = tab.list_videos(request())
    assert [key for _, key in videos["choices"]] == [NORTH, SOUTH] and classes["choices"] == ["red", "green"]
    assert by_class["choices"] == [ANY_CLASS, "red", "green"] and (status, order) == (ALL, NEEDS_A_LOOK)
    assert videos["choices"][0][0] == "clips/north · 7 frames · 2 tracks · to review"
    *view, slider, tracks, first, _ = tab.open(NORTH, request())
    assert slider["maximum"] == 6 and slider["value"] == 0 and slider["visible"]
    # the timeline: a bar per track over the 7 frames, in the track's colour, the frame shown as a line
    assert re.findall(r'class="tl-name" style="color:(#\w+)">■ ([^<]+)<', tracks) == [
        (color_of(0).as_hex(), "track 1 · red · frames 0–6 (7)"),
        (color_of(1).as_hex(), "track 2 · green · frames 2–6 (5)"),
    ]
    assert re.findall(r'class="tl-run" style="left:([\d.]+)%;width:([\d.]+)%', tracks) == [
        ("0.00", "100.00"), ("28.57", "71.43")]  # fmt: skip
    assert 'data-frame="0"' in tracks
    assert first["choices"] == ["1", "2"]
    *view, slider, _, _, _ = tab.move(5, request())
    assert view[0].shape == (72, 96, 3) and slider["value"] == 5
    assert [label for label, _ in ReviewView(*view).objects["choices"]] == [
        "Track 1 · red — as tracked",
        "Track 2 · green — as tracked",
    ]
    *view, _, tracks, _, _, listed = tab.cut("2", ANY_CLASS, ALL, NEEDS_A_LOOK, request())
    assert "frames 2–4 (3)" in tracks and "(2 frames)" in view[-1] and 'data-frame="5"' in tracks
    assert listed == tab.filter_videos(ANY_CLASS, ALL, NEEDS_A_LOOK, request())  # the list as a filter lists it
    assert tab.filter_videos(ANY_CLASS, REVIEWED, NEEDS_A_LOOK, request()) == {"__type__": "update", "choices": [],
                                                                             "value": None}  # fmt: skip
    *view, _ = studio.review.save(ANY_CLASS, ALL, NEEDS_A_LOOK, request())
    assert tracks_of(folder) == ORIGINAL[:5] + [{RED: "red"}] * 2
    assert range_counts(FORWARD, WHOLE, 3) == (TO_THE_END, 0) and range_counts(BACKWARD, SOME, 3) == (0, 3)
    assert range_counts(BOTH, SOME, 4) == (4, 4)


def test_every_track_edit_and_its_undo_redraw_the_video_list_keeping_the_open_video_chosen(small_model, folder):
    import gradio as gr

    from app.prompts import POSITIVE

    studio = north_open_at(small_model, folder, 5)
    tab, filters = studio.review_videos, (ANY_CLASS, ALL, NEEDS_A_LOOK)
    studio.review.click(POSITIVE, gr.SelectData(None, {"index": list(INSIDE_GREEN), "value": None}), request())
    *_, listed = tab.undo(*filters, request())  # a click taken back: the dataset is as it was, so is the list
    assert listed == gr.skip()
    *_, listed = tab.cut("2", *filters, request())  # north's green track ends on frame 4 now, in the middle
    assert listed["choices"][0] == ("clips/north · 7 frames · 2 tracks · edited · track 2 ends early (frame 4)", NORTH)
    assert listed["value"] == NORTH  # the open video stays chosen
    *_, listed = tab.undo(*filters, request())
    assert listed["choices"] == [("clips/north · 7 frames · 2 tracks · to review", NORTH),
                                 ("clips/south · 5 frames · 2 tracks · to review", SOUTH)]  # fmt: skip
    assert listed["value"] == NORTH
    *_, listed = tab.swap("1", "2", *filters, request())
    assert "clips/north · 7 frames · 2 tracks · edited" in listed["choices"][0][0]
    *_, listed = tab.relabel("1", "green", *filters, request())  # red's track is green from frame 0 on
    assert [key for _, key in listed["choices"]] == [NORTH, SOUTH] and "edited" in listed["choices"][0][0]
    *_, listed = tab.accept(*filters, request())
    assert listed["choices"][-1] == ("clips/north · 7 frames · 2 tracks · reviewed, edited", NORTH)
    *_, listed = tab.accept(ANY_CLASS, TO_REVIEW, NEEDS_A_LOOK, request())  # filtered: north is not listed
    assert listed == {"__type__": "update", "choices": [("clips/south · 5 frames · 2 tracks · to review", SOUTH)],
                      "value": None}  # fmt: skip


def test_the_editors_undo_key_on_a_video_frame_redraws_the_video_section(small_model, folder):
    """z presses the editor's Undo: on a video frame it may take back a track edit, and the section (timeline,
    track lists, video list) follows it, as the section's own Undo button does."""
    studio = north_open_at(small_model, folder, 4)
    tab, filters = studio.review_videos, (ANY_CLASS, ALL, NEEDS_A_LOOK)
    *_, tracks, _, _, listed = tab.cut("2", *filters, request())
    assert "frames 2–3 (2)" in tracks and "ends early" in listed["choices"][0][0]
    view = studio.review.undo(request())  # the editor's Undo: nothing on the frame, so the track delete
    assert "Undone: a track delete" in view.status
    slider, tracks, first, _, listed = tab.follow_undo(*filters, request())
    assert "frames 2–6 (5)" in tracks and slider["value"] == 4 and first["choices"] == ["1", "2"]
    assert listed["value"] == NORTH and "ends early" not in dict((k, c) for c, k in listed["choices"])[NORTH]
