"""The Review tab's video section: the dataset's videos listed with the image grid's filters (class, status, order:
`app.review_filters`; needs a look first, each caption saying why), a video opened at a frame (a slider), its tracks
listed, and the track edits of `VideoReview` — re-propagate a correction over a range, delete from this frame on,
merge, swap, change class, undo, accept — drawn back through the Review tab's editor (`ReviewTab.view`).

The editor's canvas, candidates and object list work on the frame as on an image: a click on a track's instance
corrects it, and *Re-propagate* carries the correction over the range chosen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from .errors import guard
from .refusals import Refusal
from .review_filters import ALL, ANY_CLASS, NEEDS_A_LOOK, ORDERS, STATUSES
from .review_tab import ReviewPanels, ReviewTab, ReviewView
from .review_video import TO_THE_END, VideoReview, VideoRow
from .sessions import ReviewState, UserSession
from .video_view import TimelineRow, timeline_bars

FORWARD, BACKWARD, BOTH = "Forward", "Backward", "Both ways"
DIRECTIONS = [FORWARD, BACKWARD, BOTH]
WHOLE, SOME = "To the end", "N frames"
EXTENTS = [WHOLE, SOME]


@dataclass
class VideoControls:
    """What a video action redraws besides the editor: the frame slider, the track list and the two track choices."""

    video: gr.Dropdown
    frame: gr.Slider
    tracks: gr.HTML
    first: gr.Dropdown
    second: gr.Dropdown

    def outputs(self) -> list[Any]:
        return [self.frame, self.tracks, self.first, self.second]


def range_counts(direction: str, extent: str, count: Any) -> tuple[int | None, int | None]:
    """(forward, backward) frame counts for `VideoReview.repropagate` from the range controls."""
    if direction not in DIRECTIONS or extent not in EXTENTS:
        raise Refusal(f"Choose a direction among {DIRECTIONS} and an extent among {EXTENTS}.")
    amount = TO_THE_END if extent == WHOLE else count
    return (amount if direction != BACKWARD else 0), (amount if direction != FORWARD else 0)


class ReviewVideoTab:
    """Handlers of the Review tab's video section; `build` lays it out under the editor and wires it."""

    def __init__(self, review: ReviewTab, videos: VideoReview) -> None:
        self.review = review
        self.services = review.services
        self.videos = videos

    def build(self, panels: ReviewPanels, opened: list[Any], events: dict[str, Any]) -> VideoControls:
        """The section (inside the tab's layout); `opened`: the events that open a dataset (the video list follows)."""
        private: dict[str, Any] = {"api_visibility": "private"}
        with gr.Accordion("Videos: review track by track", open=True, elem_id="review_videos"):
            with gr.Row():
                by_class = gr.Dropdown([ANY_CLASS], value=ANY_CLASS, label="Class", elem_id="review_video_class",
                                       min_width=100)  # fmt: skip
                status = gr.Dropdown(STATUSES, value=ALL, label="Status", elem_id="review_video_status", min_width=100)
                order = gr.Dropdown(ORDERS, value=NEEDS_A_LOOK, label="Order", elem_id="review_video_order",
                                    min_width=100)  # fmt: skip
            video = gr.Dropdown([], label="Video", elem_id="review_video")
            frame = gr.Slider(0, 1, value=0, step=1, label="Frame", elem_id="review_frame", visible=False)
            tracks = gr.HTML("", elem_id="review_tracks")
            with gr.Row():
                first = gr.Dropdown([], label="Track", elem_id="review_track_a", min_width=90)
                second = gr.Dropdown([], label="Other track (merge into the first, swap)", elem_id="review_track_b",
                                     min_width=90)  # fmt: skip
                track_class = gr.Dropdown([], label="Track's class", elem_id="review_track_class", min_width=90)
            with gr.Row():
                direction = gr.Radio(DIRECTIONS, value=FORWARD, label="Re-propagate", elem_id="review_direction")
                extent = gr.Radio(EXTENTS, value=WHOLE, label="Over", elem_id="review_extent")
                count = gr.Number(10, precision=0, minimum=0, label="N frames", elem_id="review_count", min_width=80)
            with gr.Row(elem_classes=["toolbar"]):
                propagate = gr.Button("Re-propagate the correction", size="sm", elem_id="review_propagate")
                cut = gr.Button("Delete track from this frame on", size="sm", elem_id="review_cut")
                merge = gr.Button("Merge other into track", size="sm", elem_id="review_merge")
                swap = gr.Button("Swap the two ids", size="sm", elem_id="review_swap")
                relabel = gr.Button("Change track's class", size="sm", elem_id="review_relabel")
                undo = gr.Button("Undo track edit", size="sm", elem_id="review_track_undo")
                accept = gr.Button("Accept video ✓", size="sm", elem_id="review_accept_video")
        controls = VideoControls(video, frame, tracks, first, second)
        out = [*panels.view(), *controls.outputs()]
        size = len(out)
        filters = [by_class, status, order]
        for event in opened:
            event.then(guard(self.list_videos, keep=5), None, [video, track_class, *filters], **private)
        for control in filters:
            control.input(guard(self.filter_videos, keep=1), filters, video, **private)
        opening = video.input(guard(self.open, keep=size), video, out, **events, **private)  # commits the item open
        for event in [*self.review.committing, opening]:  # a typed new class committed: the class lists offer it
            event.then(guard(self.follow_classes, keep=3), None, [panels.by_class, by_class, track_class], **private)
        frame.input(guard(self.move, keep=size), frame, out, **events, **private)  # as the Video tab: drag or type
        # the editor's Undo (and its key, z) may take back a track edit, or close the video: this section follows
        self.review.undone.then(guard(self.follow_undo, keep=5), filters, [*controls.outputs(), video], **private)
        # a track edit (and its undo) changes the video's status and concerns: the list's captions follow
        edited, keep = [*out, video], size + 1
        propagate.click(guard(self.repropagate, keep=keep), [direction, extent, count, *filters], edited, **events,
                        **private)  # fmt: skip
        cut.click(guard(self.cut, keep=keep), [first, *filters], edited, **events, **private)
        merge.click(guard(self.merge, keep=keep), [first, second, *filters], edited, **events, **private)
        swap.click(guard(self.swap, keep=keep), [first, second, *filters], edited, **events, **private)
        relabel.click(guard(self.relabel, keep=keep), [first, track_class, *filters], edited, **events, **private)
        undo.click(guard(self.undo, keep=keep), filters, edited, **events, **private)
        accept.click(guard(self.accept, keep=keep), filters, edited, **private)
        return controls

    # ----------------------------------------------------------------------------------------------- handlers
    def list_videos(self, request: gr.Request) -> tuple[Any, ...]:
        """The opened dataset's videos in the needs-a-look order (captioned: `video_choices`), its classes (the
        track's class, the class filter) and the status and order filters reset."""
        with self.services.user_session(request) as user:
            choices = video_choices(self.videos.rows(user.review))
            classes = self.review.workflow.class_names(user.review) if user.review.dataset is not None else []
            return (gr.update(choices=choices, value=None), gr.update(choices=classes, value=None),
                    gr.update(choices=[ANY_CLASS, *classes], value=ANY_CLASS), ALL, NEEDS_A_LOOK)  # fmt: skip

    def filter_videos(self, by_class: str, status: str, order: str, request: gr.Request) -> Any:
        """The videos with a track of `by_class` and the status asked, in `order` (the open one stays chosen when
        it is listed)."""
        with self.services.user_session(request) as user:
            return self._listed(user.review, by_class, status, order)

    def follow_classes(self, request: gr.Request) -> tuple[Any, Any, Any]:
        """The dataset's classes now (a typed new class is added when its instance is committed) as the choices of
        the grid's class filter, the video list's and the track's class; each keeps its value."""
        with self.services.user_session(request) as user:
            if user.review.dataset is None:
                return gr.skip(), gr.skip(), gr.skip()
            classes = self.review.workflow.class_names(user.review)
            filters = gr.update(choices=[ANY_CLASS, *classes])
            return filters, filters, gr.update(choices=classes)

    def open(self, video: str | None, request: gr.Request) -> tuple[Any, ...]:
        with self.services.user_session(request) as user:
            if video:
                self.videos.open(user.review, video, 0)
            return self._view(user)

    def move(self, frame: Any, request: gr.Request) -> tuple[Any, ...]:
        with self.services.user_session(request) as user:
            self.videos.show(user.review, int(frame or 0))
            return self._view(user)

    def repropagate(self, direction: str, extent: str, count: Any, by_class: str, status: str, order: str,
                    request: gr.Request) -> tuple[Any, ...]:  # fmt: skip
        with self.services.user_session(request) as user:
            forward, backward = range_counts(direction, extent, count)
            changed = self.videos.repropagate(user.review, forward, backward)
            return self._edited(user, f"Re-propagated: {changed} frames changed.", by_class, status, order)

    def cut(self, track: Any, by_class: str, status: str, order: str, request: gr.Request) -> tuple[Any, ...]:
        with self.services.user_session(request) as user:
            changed = self.videos.delete_track(user.review, _track(track))
            note = f"Track {track} deleted from this frame on ({changed} frames)."
            return self._edited(user, note, by_class, status, order)

    def merge(self, keep: Any, absorb: Any, by_class: str, status: str, order: str,
              request: gr.Request) -> tuple[Any, ...]:  # fmt: skip
        with self.services.user_session(request) as user:
            changed = self.videos.merge_tracks(user.review, _track(keep), _track(absorb))
            note = f"Track {absorb} merged into track {keep} ({changed} frames)."
            return self._edited(user, note, by_class, status, order)

    def swap(self, first: Any, second: Any, by_class: str, status: str, order: str,
             request: gr.Request) -> tuple[Any, ...]:  # fmt: skip
        with self.services.user_session(request) as user:
            changed = self.videos.swap_tracks(user.review, _track(first), _track(second))
            note = f"Tracks {first} and {second} swapped ({changed} frames)."
            return self._edited(user, note, by_class, status, order)

    def relabel(self, track: Any, class_name: str | None, by_class: str, status: str, order: str,
                request: gr.Request) -> tuple[Any, ...]:  # fmt: skip
        with self.services.user_session(request) as user:
            changed = self.videos.change_class(user.review, _track(track), class_name)
            note = f"Track {track} is {class_name} ({changed} frames)."
            return self._edited(user, note, by_class, status, order)

    def undo(self, by_class: str, status: str, order: str, request: gr.Request) -> tuple[Any, ...]:
        """The frame's last click taken back (the list as it is), else the dataset's last edit (the list follows)."""
        with self.services.user_session(request) as user:
            note = self.videos.undo(user.review)
            if not note:
                return (*self._view(user), gr.skip())
            return self._edited(user, note, by_class, status, order)

    def follow_undo(self, by_class: str, status: str, order: str, request: gr.Request) -> tuple[Any, ...]:
        """After the editor's Undo: the slider, timeline and track lists as the dataset now is, and the video list
        when a video is open (an undone track edit changes its captions); hidden when the undo closed the video."""
        with self.services.user_session(request) as user:
            *_, slider, tracks, first, second = self._view(user)
            listed = gr.skip() if user.review.video is None else self._listed(user.review, by_class, status, order)
            return slider, tracks, first, second, listed

    def accept(self, by_class: str, status: str, order: str, request: gr.Request) -> tuple[Any, ...]:
        with self.services.user_session(request) as user:
            self.videos.accept(user.review)
            return self._edited(user, "Every frame of the video accepted.", by_class, status, order)

    # ------------------------------------------------------------------------------------------------- views
    def _edited(self, user: UserSession, note: str, by_class: str, status: str, order: str) -> tuple[Any, ...]:
        """`_view` after an edit of the dataset, then the video list filtered again (its captions say the edit)."""
        return (*self._view(user, note), self._listed(user.review, by_class, status, order))

    def _listed(self, state: ReviewState, by_class: str, status: str, order: str) -> Any:
        """The video list's update: the videos as filtered (`VideoReview.rows`: the needs-a-look order decodes the
        masks once), the open one chosen when it is listed."""
        choices = video_choices(self.videos.rows(state, by_class, status, order))
        listed = state.video in [key for _, key in choices]
        return gr.update(choices=choices, value=state.video if listed else None)

    def _view(self, user: UserSession, note: str = "") -> tuple[Any, ...]:
        state: ReviewState = user.review
        view: ReviewView = self.review.view(user, None, note)
        if state.video is None or state.dataset is None:
            return (*view, gr.update(visible=False), "", gr.update(choices=[]), gr.update(choices=[]))
        frames = len(state.dataset.video(state.video).frame_keys)
        rows = self.videos.track_rows(state)
        # a track's colour is its place among the video's tracks, as on the frame (`canvas.colour_slots`)
        bars = [TimelineRow(f"track {r.track} · {r.class_name} · frames {r.first}–{r.last} ({len(r.present)})",
                            state.video_tracks.index(r.track) if r.track in state.video_tracks else i, r.present)
                for i, r in enumerate(rows)]  # fmt: skip
        ids = [str(r.track) for r in rows]
        slider = gr.update(minimum=0, maximum=max(frames - 1, 1), value=state.frame, visible=True)
        return (*view, slider, timeline_bars(bars, frames, state.frame), gr.update(choices=ids), gr.update(choices=ids))


def video_choices(rows: list[VideoRow]) -> list[tuple[str, str]]:
    """The video list's (caption, key) pairs: "clips/north · 7 frames · 2 tracks · to review", then why it needs a
    look when it does ("· track 3 ends early (frame 5)")."""
    captions = [f"{r.key} · {r.frames} frames · {len(r.tracks)} tracks · {r.status}" for r in rows]
    return [(caption + (f" · {r.why}" if r.why else ""), r.key) for caption, r in zip(captions, rows, strict=True)]


def _track(value: Any) -> int:
    if value is None or not str(value).isdigit():
        raise Refusal(f"Choose a track id in the list, not {value!r}.")
    return int(value)
