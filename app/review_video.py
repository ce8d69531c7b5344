"""Reviewing a dataset's videos, Gradio-free: a video is opened at a frame, its instances are the editor's objects
(each named by its track id and class), and its tracks are edited from that frame on.

A correction is drawn with clicks on a track's instance, as on an image (SAM 2 refines from the stored mask), then
re-propagated over a chosen range, forward and/or backward, with `Dataset.correct_track`: the other tracks and frames
are untouched. Delete from this frame on, merge, swap and change of class are `Dataset` track edits too, made at
once (one undo each). The frame's unapplied clicks are dropped by a track edit or another frame: they are a mask
being drawn, not yet the dataset's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from annotate.review import CLASS_SWITCH, TRACK_ENDS_EARLY
from annotate.track_review import TrackConcern

from .media import preview_scale, to_preview
from .refusals import Refusal
from .review_filters import ALL, ANY_CLASS, NEEDS_A_LOOK, check_filters, item_status, reason_words, status_matches
from .review_workflow import ReviewWorkflow, fill_frame, require_dataset
from .sessions import ImageState, ReviewState

TO_THE_END = None  # a range count: to the video's last (forward) or first (backward) frame


CONCERN_WORDS = {TRACK_ENDS_EARLY: "ends early", CLASS_SWITCH: "switches class"}
CONCERNS_SHOWN = 2  # a caption names this many track concerns, then counts the others


@dataclass(frozen=True)
class VideoRow:
    """One video as the list shows it: its key, its frame count, its track ids, whether every frame was reviewed and
    any was edited, its tracked instances' class names (first seen first), and why it needs a look (`reasons`,
    `annotate.review` names; `concerns`, its tracks', by frame: `annotate.track_review`; both empty in dataset
    order)."""

    key: str
    frames: int
    tracks: tuple[int, ...]
    reviewed: bool
    edited: bool
    classes: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    concerns: tuple[TrackConcern, ...] = ()

    @property
    def status(self) -> str:
        """What the list says (`item_status`): reviewed, edited, nothing found, or to review."""
        return item_status(self.reviewed, self.edited, not self.tracks)

    @property
    def why(self) -> str:
        """Why it needs a look, in words: its first track concerns ("track 3 ends early (frame 5)") and its frames'
        other reasons ("thin masks"); "" when nothing is flagged."""
        shown = [f"track {c.track} {CONCERN_WORDS[c.reason]} (frame {c.frame})" for c in self.concerns]
        more = len(shown) - CONCERNS_SHOWN
        words = shown[:CONCERNS_SHOWN] + [f"{more} more track concern{'s' * (more > 1)}"] * (more > 0)
        return ", ".join(words + reason_words(self.reasons))


@dataclass(frozen=True)
class TrackRow:
    """A track of the open video: its id, its class name (on its first frame) and the frames that hold it (0-based,
    in order)."""

    track: int
    class_name: str
    present: tuple[int, ...]

    @property
    def first(self) -> int:
        return self.present[0]

    @property
    def last(self) -> int:
        return self.present[-1]


class VideoReview:
    """Open a video of the dataset at a frame and edit its tracks; every method works on a user's `ReviewState` (the
    caller holds the user's lock) and raises `Refusal` for what it will not do."""

    def __init__(self, reviewing: ReviewWorkflow) -> None:
        self.reviewing = reviewing
        self.services = reviewing.services

    # -------------------------------------------------------------------------------------------------- list
    def rows(self, state: ReviewState, class_name: str = ANY_CLASS, status: str = ALL,
             order: str = NEEDS_A_LOOK) -> list[VideoRow]:  # fmt: skip
        """The dataset's videos holding a track of `class_name` (an instance of that class with a track id;
        `ANY_CLASS`: every video) with the status asked (`STATUSES`; a video is reviewed when every frame is), in
        `order` (`ORDERS`: `Dataset.videos_needing_a_look`, which decodes every mask, or the dataset's)."""
        dataset = require_dataset(state)
        check_filters(status, order)
        if order == NEEDS_A_LOOK:
            looks = [(dataset.video(e.key), e.reasons, e.concerns) for e in dataset.videos_needing_a_look()]
        else:
            looks = [(video, (), ()) for video in dataset.videos]
        rows = []
        for video, reasons, concerns in looks:
            tracked = [a for k in video.frame_keys for a in dataset.instances(k) if a.track_id is not None]
            tracks = tuple(sorted({int(a.track_id) for a in tracked if a.track_id is not None}))
            classes = tuple(dict.fromkeys(a.class_name for a in tracked))
            reviewed = bool(video.frame_keys) and all(dataset.is_reviewed(k) for k in video.frame_keys)
            edited = any(dataset.is_edited(k) for k in video.frame_keys)
            row = VideoRow(video.key, len(video.frame_keys), tracks, reviewed, edited, classes, reasons, concerns)
            if status_matches(status, reviewed, edited, not tracks) and class_name in (ANY_CLASS, *classes):
                rows.append(row)
        return rows

    def track_rows(self, state: ReviewState) -> list[TrackRow]:
        """The open video's tracks, by id."""
        dataset, video = require_dataset(state), require_video(state)
        names: dict[int, str] = {}
        present: dict[int, list[int]] = {}
        for frame, key in enumerate(dataset.video(video).frame_keys):
            for a in dataset.instances(key):
                if a.track_id is not None:
                    names.setdefault(a.track_id, a.class_name)
                    present.setdefault(a.track_id, []).append(frame)
        return [TrackRow(t, names[t], tuple(sorted(set(present[t])))) for t in sorted(present)]

    def object_names(self, state: ReviewState) -> list[str]:
        """The frame's instances as the object list names them: "track 3: car"."""
        require_video(state)
        return [f"track {t}: {o.class_name}" for t, o in zip(state.tracks, state.originals, strict=True)]

    # ------------------------------------------------------------------------------------------------ frames
    def open(self, state: ReviewState, video: str, frame: int = 0) -> None:
        """Commit the image item in the editor, then show `video` (a `Video.key`) at `frame`."""
        dataset = require_dataset(state)
        try:
            dataset.video(video)
        except ValueError as error:
            raise Refusal(str(error)) from error
        self.reviewing.commit(state)
        state.video = video
        self.show(state, frame)

    def show(self, state: ReviewState, frame: int) -> None:
        """Show frame `frame` (0-based) of the open video: its picture and its instances as objects (clicks not
        applied are dropped)."""
        dataset, video = require_dataset(state), state.video
        if video is None:
            raise Refusal("Open a video of the grid first.")
        keys = dataset.video(video).frame_keys
        if not 0 <= int(frame) < len(keys):
            raise Refusal(f"Frame {frame} is not a frame of {video}: choose 0 to {len(keys) - 1}.")
        key = keys[int(frame)]
        image = self.services.open_image(str(dataset.item(key).image_path))
        if (image.shape[1], image.shape[0]) != dataset.resolution_wh(key):
            raise Refusal(f"{key}'s image is {image.shape[1]}x{image.shape[0]} but its labels are for another size: "
                          "fix the dataset's sizes.")  # fmt: skip
        gpu = self.services.gpu
        embedded = gpu.embed_image(image)
        scale = preview_scale(*image.shape[:2])
        state.key, state.frame = key, int(frame)
        state.image = ImageState(image=image, preview=to_preview(image, scale), scale=scale, name=key,
                                 mode=state.image.mode, features=embedded if gpu.portable else None)  # fmt: skip
        fill_frame(state, dataset, key)

    def select_track(self, state: ReviewState, track: int) -> None:
        """Track `track`'s instance on this frame becomes the active object (the one clicks correct)."""
        require_video(state)
        if int(track) not in state.tracks:
            raise Refusal(f"Track {track} is not on this frame: its tracks are {state.tracks}.")
        state.image.active = state.tracks.index(int(track))

    def click(self, state: ReviewState, index: Any) -> None:
        """A click on the frame, as on an image: on a track's instance it refines that instance's mask (the
        correction `repropagate` then carries over the range)."""
        require_video(state)
        if not state.originals:
            raise Refusal("No track on this frame to correct: choose a frame where the object is tracked.")
        self.reviewing.click(state, index)

    # ----------------------------------------------------------------------------------------------- tracks
    def repropagate(self, state: ReviewState, forward: int | None, backward: int | None) -> int:
        """The active track's corrected mask on this frame, re-propagated by SAM 2 `forward` frames after it and
        `backward` before it (0: none; `TO_THE_END`: to the video's end / start); the other tracks are untouched.
        Returns how many frames changed."""
        dataset, video = require_dataset(state), require_video(state)
        image, forward, backward = state.image, _count(forward), _count(backward)
        if not state.originals:
            raise Refusal("No track on this frame to correct.")
        obj = image.objects[image.active]
        if not obj.points and obj.box is None:
            raise Refusal("Correct the track first: click on its instance (negative clicks take parts away).")
        if obj.mask is None or not obj.mask.any():
            raise Refusal("The corrected mask is empty: undo the last click, or delete the track from this frame on.")
        track = state.tracks[image.active]
        predictor, mask = self.services.gpu.propagate_mask, obj.mask  # a GPU task (ZeroGPU: another process)
        edit = self._edit(lambda: dataset.correct_track(video, track, state.frame, mask, predictor, forward, backward))
        self.show(state, state.frame)
        return len(edit.edits)

    def delete_track(self, state: ReviewState, track: int) -> int:
        """Remove `track` from this frame on. Returns how many frames changed."""
        dataset, video = require_dataset(state), require_video(state)
        return self._done(state, self._edit(lambda: dataset.delete_track(video, int(track), state.frame)))

    def merge_tracks(self, state: ReviewState, keep: int, absorb: int) -> int:
        """Track `absorb` becomes track `keep` from this frame on (an id switch undone)."""
        dataset, video = require_dataset(state), require_video(state)
        if int(keep) == int(absorb):
            raise Refusal("Choose two different tracks to merge.")
        return self._done(state, self._edit(lambda: dataset.merge_tracks(video, int(keep), int(absorb), state.frame)))

    def swap_tracks(self, state: ReviewState, first: int, second: int) -> int:
        """Tracks `first` and `second` exchange ids from this frame on."""
        dataset, video = require_dataset(state), require_video(state)
        if int(first) == int(second):
            raise Refusal("Choose two different tracks to swap.")
        return self._done(state, self._edit(lambda: dataset.swap_tracks(video, int(first), int(second), state.frame)))

    def change_class(self, state: ReviewState, track: int, class_name: str | None) -> int:
        """Every instance of `track` (on every frame) gets class `class_name`, one of the dataset's."""
        dataset, video = require_dataset(state), require_video(state)
        name = self.reviewing.class_named(state, class_name)
        return self._done(state, self._edit(lambda: dataset.change_track_class(video, int(track), name)))

    def accept(self, state: ReviewState) -> None:
        """Mark every frame of the open video reviewed (one edit: one Undo takes it back)."""
        require_dataset(state).mark_reviewed(require_video(state))

    def undo(self, state: ReviewState) -> str:
        """Take back the frame's last click when there is one, else the dataset's most recent edit (a track edit:
        all its frames; an image's: that image is opened), as `ReviewWorkflow.undo`; returns what it says."""
        require_video(state)
        return self.reviewing.undo(state)

    # --------------------------------------------------------------------------------------------- internals
    @staticmethod
    def _edit(change: Any) -> Any:
        try:
            return change()
        except ValueError as error:  # the dataset says what was wrong (a track not there, a frame holding both)
            raise Refusal(str(error)) from error

    def _done(self, state: ReviewState, edit: Any) -> int:
        self.show(state, state.frame)
        return len(edit.edits)


def require_video(state: ReviewState) -> str:
    if state.video is None or state.key is None:
        raise Refusal("Open a video of the grid first.")
    return state.video


def _count(value: Any) -> int | None:
    """A range count from a widget: None (to the end), or a whole number of frames >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not float(value).is_integer() or value < 0:
        raise Refusal(f"Give a whole number of frames (0 or more), not {value!r}.")
    return int(value)
