"""Track edits on one video's frames, as pure functions: a video's instances frame by frame in, the edited ones out.

`frames` is the video's frames in order, each a tuple of `Annotation` (in file order); each function returns a new
list of the same length whose unchanged frames are the same tuples (so that only changed frames are saved). Frame
indices are 0-based positions among the video's frames; "from a frame on" includes that frame.
A track's class is one class: instances that move to another track take that track's class (an id switch means the
region was that object all along).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .dataset_items import Annotation

Frames = Sequence[tuple[Annotation, ...]]


def track_ids(frames: Frames) -> list[int]:
    """The track ids on `frames`, sorted."""
    return sorted({a.track_id for frame in frames for a in frame if a.track_id is not None})


def track_class(frames: Frames, track: int, before: int | None = None) -> tuple[int, str]:
    """(class id, class name) of `track`: of its first instance before frame `before` when it has one, else of its
    first instance anywhere. ValueError when the track is on no frame."""
    found = [a for frame in frames for a in frame if a.track_id == track]
    if before is not None:
        earlier = [a for frame in frames[:before] for a in frame if a.track_id == track]
        found = earlier or found
    if not found:
        raise ValueError(f"No track {track} on this video; its tracks: {track_ids(frames)}.")
    return found[0].class_id, found[0].class_name


def change_track_class(frames: Frames, track: int, class_id: int, class_name: str) -> list[tuple[Annotation, ...]]:
    """Every instance of `track` under class `class_id` (named `class_name`)."""
    track_class(frames, track)
    return _map(frames, 0, lambda a: a.with_class(class_id, class_name) if a.track_id == track and
                (a.class_id, a.class_name) != (class_id, class_name) else a)  # fmt: skip


def delete_track(frames: Frames, track: int, from_frame: int = 0) -> list[tuple[Annotation, ...]]:
    """`track` removed from frame `from_frame` on (0: the whole track)."""
    track_class(frames, track)
    _check_frame(frames, from_frame)
    return [frame if i < from_frame or all(a.track_id != track for a in frame) else
            tuple(a for a in frame if a.track_id != track) for i, frame in enumerate(frames)]  # fmt: skip


def merge_tracks(frames: Frames, keep: int, absorb: int, from_frame: int = 0) -> list[tuple[Annotation, ...]]:
    """An id switch undone: track `absorb` becomes track `keep` from frame `from_frame` on (with `keep`'s class).
    ValueError when a frame from then on holds both (delete one of them there first)."""
    if keep == absorb:
        raise ValueError(f"Merging track {keep} into itself: give two different tracks.")
    new_class = track_class(frames, keep)
    track_class(frames, absorb)
    _check_frame(frames, from_frame)
    both = [i for i, frame in enumerate(frames) if i >= from_frame and {keep, absorb} <= {a.track_id for a in frame}]
    if both:
        raise ValueError(
            f"Tracks {keep} and {absorb} are both on frames {both}: one object cannot be two regions of a frame; "
            f"delete track {absorb} on those frames first, or merge from frame {both[-1] + 1}."
        )
    return _map(frames, from_frame, lambda a: _moved(a, keep, new_class) if a.track_id == absorb else a)


def swap_tracks(frames: Frames, first: int, second: int, from_frame: int = 0) -> list[tuple[Annotation, ...]]:
    """Tracks `first` and `second` exchange ids from frame `from_frame` on (each region takes its new track's
    class)."""
    if first == second:
        raise ValueError(f"Swapping track {first} with itself: give two different tracks.")
    _check_frame(frames, from_frame)
    classes = {first: track_class(frames, first, from_frame), second: track_class(frames, second, from_frame)}
    other = {first: second, second: first}

    def swap(annotation: Annotation) -> Annotation:
        if annotation.track_id not in other:
            return annotation
        new = other[annotation.track_id]
        return _moved(annotation, new, classes[new])

    return _map(frames, from_frame, swap)


def _moved(annotation: Annotation, track: int, new_class: tuple[int, str]) -> Annotation:
    moved = annotation.with_track(track)
    return moved if moved.class_id == new_class[0] else moved.with_class(*new_class)


def _map(frames: Frames, start: int, change: Callable[[Annotation], Annotation]) -> list[tuple[Annotation, ...]]:
    """`change` applied to every instance of the frames from `start` on; a frame nothing changed on stays as it is."""
    result = []
    for i, frame in enumerate(frames):
        new = tuple(change(a) for a in frame) if i >= start else frame
        result.append(frame if all(a is b for a, b in zip(new, frame, strict=True)) else new)
    return result


def _check_frame(frames: Frames, index: int) -> None:
    if not 0 <= index < len(frames):
        raise ValueError(f"Frame {index} is not a frame of this video: give 0 to {len(frames) - 1}.")
