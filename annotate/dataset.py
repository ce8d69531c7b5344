"""`open_dataset`: a segmentation dataset read back for a person to review and correct, edit by undoable edit.

>>> from annotate.dataset import open_dataset
>>> dataset = open_dataset("photos_auto_annotate_labels")   # or a data.yaml, or a COCO .json
>>> entry = dataset.needs_a_look()[0]                        # the item a person should see first
>>> dataset.delete_instance(entry.key, 0); dataset.mark_reviewed(entry.key)
>>> dataset.undo()                                           # the most recent edit first
>>> print(dataset.save())                                    # reviewed, edited, untouched

Opening reads the index only; an item's instances are parsed when asked for (`instances`), their masks decoded when
drawn. Edits change the dataset in memory; `save` writes the edited items back in every format it holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from sam2_model import ImagePredictor, VideoPredictor

from .dataset_classes import AddedClasses, class_id_of
from .dataset_items import Annotation, Edit, Item, ItemState, TrackEdit, Video, check_instance_index, checked_mask
from .dataset_readers import DatasetSource, image_size, load_annotations, read_source
from .dataset_save import ReviewSummary, save_dataset
from .dataset_save_tracks import patch_coco_tracks, save_video_tracks
from .dataset_stamps import DatasetChangedOnDisk as DatasetChangedOnDisk  # raised by save: importable from here
from .dataset_stamps import FileStamps, item_files, replaced_files, video_files
from .dataset_tracks import Box, TrackIndex, read_track_index, video_track_boxes, with_track_ids
from .images import read_image, read_image_at
from .refine import prompted_instance, refined_instance
from .review import LookEntry, LookThresholds, look_entry, look_order
from .run_record import ReviewRecord
from .track_edits import Frames, change_track_class, delete_track, merge_tracks, swap_tracks, track_class
from .track_propagate import FramePropagator, frame_range, propagate_track, replace_track
from .track_review import VideoLookEntry, videos_look
from .video_outputs import VIS_FILE


class NothingToUndo(RuntimeError):
    """`Dataset.undo` with no edit left to undo."""


def open_dataset(path: str | Path, images: str | Path | None = None) -> Dataset:
    """Open a dataset: the folder `auto_annotate` writes, an ultralytics YOLO-seg dataset (its data.yaml, or a folder
    with images/ and labels/), or a COCO instances .json (its images in ``images/`` beside it or beside its folder,
    in its own folder, or in `images`). ValueError naming what was expected for anything else."""
    return Dataset(read_source(path, images))


class Dataset:
    """An opened dataset: its items (images, frames of videos), their instances, and one undo stack.

    Frames of videos are read and can be marked reviewed; their instances are edited with track edits
    (`change_track_class`, `delete_track`, `merge_tracks`, `swap_tracks`, `correct_track`): instance edits on a
    frame raise ValueError.
    """

    def __init__(self, source: DatasetSource) -> None:
        self.source = source
        self._record = ReviewRecord(source.review_path)
        self._stamps = FileStamps(source.root)  # what `save` checks before replacing a file (`dataset_stamps`)
        self._stamps.record([source.review_path, *(p for p in (source.coco_path, source.names_file) if p is not None)])
        self._recorded = {key: flags for key, flags in self._record.read().items() if key in source.items}
        self._sizes: dict[str, tuple[int, int]] = {}
        self._loaded: dict[str, ItemState] = {}  # as the files hold it (set on first load, and by save)
        self._current: dict[str, ItemState] = {}
        self._history: list[Edit | TrackEdit] = []  # oldest first
        self._tracks: TrackIndex | None = None
        self._track_boxes: dict[str, dict[int, list[tuple[int, Box]]]] = {}
        self._classes = AddedClasses(source)  # classes a person named (`add_class`)

    # ----------------------------------------------------------------------------------------------- reading
    @property
    def root(self) -> Path:
        return self.source.root

    @property
    def formats(self) -> tuple[str, ...]:
        """The formats the dataset holds and `save` writes: "yolo", "coco", "masks" (and "vis", "mot": videos)."""
        return self.source.formats

    @property
    def names(self) -> dict[int, str]:
        """Class names by class id (0-based)."""
        return dict(self.source.names)

    @property
    def videos(self) -> tuple[Video, ...]:
        return self.source.videos

    def __len__(self) -> int:
        return len(self.source.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.source.items.values())

    @property
    def keys(self) -> tuple[str, ...]:
        """Item keys in dataset order."""
        return tuple(self.source.items)

    def item(self, key: str) -> Item:
        try:
            return self.source.items[key]
        except KeyError:
            raise ValueError(f"No item {key!r} in the dataset; its keys are in dataset.keys.") from None

    def resolution_wh(self, key: str) -> tuple[int, int]:
        """An item's (width, height) in pixels: from the index, else from its image file's header."""
        if key not in self._sizes:
            item = self.item(key)
            self._sizes[key] = item.resolution_wh or image_size(item.image_path)
        return self._sizes[key]

    def image(self, key: str) -> np.ndarray:
        """An item's image, HxWx3 uint8 RGB (`annotate.images.read_image`: EXIF rotation applied)."""
        return read_image(self.item(key).image_path)

    def state(self, key: str) -> ItemState:
        """An item's current instances and review flag (its label parsed on first use)."""
        if key not in self._current:
            item = self.item(key)
            self._stamps.record(item_files(self.source, item))
            instances = load_annotations(self.source, item, self.resolution_wh(key))
            if item.kind == "frame" and item.video is not None and item.frame_index is not None:
                instances = with_track_ids(instances, self._frame_tracks(item.video).get(item.frame_index, []))
            state = ItemState(instances, self._recorded.get(key, {}).get("reviewed", False))
            self._loaded[key] = self._current[key] = state
        return self._current[key]

    def instances(self, key: str) -> tuple[Annotation, ...]:
        return self.state(key).instances

    def is_reviewed(self, key: str) -> bool:
        return self.state(key).reviewed if key in self._current else self._recorded.get(key, {}).get("reviewed", False)

    def is_changed(self, key: str) -> bool:
        """Whether an item's instances differ from its files (unsaved edits)."""
        if key not in self._current:
            return False
        now, then = self._current[key].instances, self._loaded[key].instances
        return len(now) != len(then) or any(a is not b for a, b in zip(now, then, strict=True))

    def is_edited(self, key: str) -> bool:
        """Whether a person changed an item's instances: unsaved now, or saved earlier (the review record)."""
        return self.is_changed(key) or self._recorded.get(key, {}).get("edited", False)

    @property
    def track_index(self) -> TrackIndex:
        """The dataset's vis.json tracks (read once)."""
        if self._tracks is None:
            self._stamps.record([self.root / VIS_FILE])  # stamped as it is read: `save` checks it before writing
            self._tracks = read_track_index(self.root)
        return self._tracks

    def video(self, key: str) -> Video:
        """The video `key` (`Video.key`); ValueError naming the videos for another key."""
        for video in self.videos:
            if video.key == key:
                return video
        raise ValueError(f"No video {key!r} in the dataset; its videos: {[v.key for v in self.videos]}.")

    def _frame_tracks(self, video: str) -> dict[int, list[tuple[int, Box]]]:
        if video not in self._track_boxes:
            self._stamps.record(video_files(self.source, self.video(video)))
            self._track_boxes[video] = video_track_boxes(self.root, self.video(video), self.track_index)
        return self._track_boxes[video]

    @property
    def added_classes(self) -> tuple[str, ...]:
        """The names of the classes added since the dataset was opened (`add_class`), oldest first."""
        return self._classes.names

    # ------------------------------------------------------------------------------------------------- edits
    def add_class(self, name: str) -> int:
        """The id of the class `name` (spaces at its ends dropped): a new class with the next id when the dataset has
        none of that name, which `save` writes in every format the dataset holds (`annotate.dataset_classes`). Not
        an edit: undo leaves it. ValueError for a name no format reads back the same, or a dataset naming no class."""
        return self._classes.add(name)

    def delete_instance(self, key: str, index: int) -> Edit:
        """Remove instance `index` of an image."""
        instances = list(self._editable(key, "delete_instance"))
        check_instance_index(key, instances, index)
        del instances[index]
        return self._apply(key, "delete", instances)

    def change_class(self, key: str, index: int, new_class: int | str) -> Edit:
        """Give instance `index` of an image another class (an id or a name of `names`); its region is kept."""
        instances = list(self._editable(key, "change_class"))
        check_instance_index(key, instances, index)
        class_id = class_id_of(self.source.names, new_class)
        instances[index] = instances[index].with_class(class_id, self.source.names[class_id])
        return self._apply(key, "change_class", instances)

    def add_instance(self, key: str, mask: np.ndarray, new_class: int | str, score: float | None = None) -> Edit:
        """Add an instance to an image from an HxW bool mask at the image's size."""
        instances = list(self._editable(key, "add_instance"))
        mask, class_id = checked_mask(mask, key, self.resolution_wh(key)), class_id_of(self.source.names, new_class)
        instances.append(Annotation.from_mask(mask, class_id, self.source.names[class_id], score))
        return self._apply(key, "add", instances)

    def add_instance_with_sam2(
        self,
        key: str,
        predictor: ImagePredictor,
        new_class: int | str,
        point_coords: Any = None,
        point_labels: Any = None,
        box: Any = None,
        multimask_output: bool = False,
    ) -> Edit:
        """Add an instance to an image from SAM 2 (`predictor`) prompted by clicks (Nx2 (x, y) pixels of the image,
        N labels: 1 add, 0 remove) and/or a box ((4,) xyxy pixels), as `add_instance` would add its mask: one
        undoable "add" edit. It keeps SAM 2's predicted IoU (``sam2_iou``) and logits (a later `refine_instance`
        starts from them). `multimask_output`: keep the best of three candidates (a single ambiguous click).
        ValueError when SAM 2 finds nothing there."""
        instances = list(self._editable(key, "add_instance_with_sam2"))
        class_id = class_id_of(self.source.names, new_class)
        image = read_image_at(self.item(key).image_path, self.resolution_wh(key), key)
        instances.append(prompted_instance(predictor, image, class_id, self.source.names[class_id], point_coords,
                                           point_labels, box, multimask_output))  # fmt: skip
        return self._apply(key, "add", instances)

    def refine_instance(
        self, key: str, index: int, predictor: ImagePredictor, point_coords: Any = None, point_labels: Any = None
    ) -> Edit:
        """Refine instance `index` of an image with SAM 2: its mask as ``mask_input`` (its last refinement's logits
        when it has them; `annotate.refine`) plus clicks, Nx2 (x, y) pixels with N labels (1 add, 0 remove).
        ValueError when the result is empty (delete the instance instead)."""
        instances = list(self._editable(key, "refine_instance"))
        check_instance_index(key, instances, index)
        image = read_image_at(self.item(key).image_path, instances[index].resolution_wh, key)
        instances[index] = refined_instance(predictor, image, instances[index], point_coords, point_labels)
        return self._apply(key, "refine", instances)

    def replace_mask(self, key: str, index: int, mask: np.ndarray, low_res_logits: np.ndarray | None = None) -> Edit:
        """Give instance `index` of an image a region refined elsewhere (the app's SAM 2 tasks): an HxW bool mask at
        the image's size, and its 1xMxM logits when known (the next `refine_instance`'s prompt). Class, score and
        track are kept; recorded as a "refine" edit. ValueError for an empty mask or another size."""
        instances = list(self._editable(key, "replace_mask"))
        check_instance_index(key, instances, index)
        old, mask = instances[index], checked_mask(mask, key, self.resolution_wh(key))
        instances[index] = Annotation.from_mask(mask, old.class_id, old.class_name, old.score, old.track_id,
                                                low_res_logits)  # fmt: skip
        return self._apply(key, "refine", instances)

    def mark_reviewed(self, key: str, reviewed: bool = True) -> Edit | TrackEdit:
        """Record that a person looked at an item and accepts it (an image, a frame; a `Video.key`: each of its
        frames, undone together); undoable."""
        if key not in self.source.items and key in {video.key for video in self.videos}:
            return self._track_edit(key, "reviewed", lambda frames: frames, reviewed)
        state = self.state(key)
        return self._push(Edit(key, "reviewed", state, replace(state, reviewed=reviewed)))

    # ------------------------------------------------------------------------------------------- track edits
    def change_track_class(self, video: str, track: int, new_class: int | str) -> TrackEdit:
        """Give every instance of `track` in `video` (a `Video.key`) another class (an id or a name of `names`)."""
        class_id = class_id_of(self.source.names, new_class)
        name = self.source.names[class_id]
        return self._track_edit(video, "track_class", lambda f: change_track_class(f, track, class_id, name))

    def delete_track(self, video: str, track: int, from_frame: int = 0) -> TrackEdit:
        """Remove `track` from `video`'s frame `from_frame` on (0-based among its frames; 0: the whole track)."""
        return self._track_edit(video, "delete_track", lambda f: delete_track(f, track, from_frame))

    def merge_tracks(self, video: str, keep: int, absorb: int, from_frame: int = 0) -> TrackEdit:
        """Undo an id switch: track `absorb` becomes track `keep` (and takes its class) from frame `from_frame` on.
        ValueError when a frame from then on holds both."""
        return self._track_edit(video, "merge_tracks", lambda f: merge_tracks(f, keep, absorb, from_frame))

    def swap_tracks(self, video: str, first: int, second: int, from_frame: int = 0) -> TrackEdit:
        """Tracks `first` and `second` exchange ids (and classes) from frame `from_frame` on."""
        return self._track_edit(video, "swap_tracks", lambda f: swap_tracks(f, first, second, from_frame))

    def correct_track(
        self,
        video: str,
        track: int,
        frame: int,
        mask: np.ndarray,
        predictor: VideoPredictor | FramePropagator,
        forward: int | None = 0,
        backward: int | None = 0,
    ) -> TrackEdit:
        """Give `track` the HxW bool `mask` on `frame` and re-propagate that track only with SAM 2 (`predictor`):
        `forward` frames after it and `backward` before it (0: none; None: to the video's end / start; to the next
        keyframe: the count of frames to it; `predictor` may be a `FramePropagator`, as the app's GPU task). The
        track's masks in that range are replaced (removed where SAM 2 finds nothing); other tracks and frames are
        untouched. One undoable edit."""
        keys = self.video(video).frame_keys
        span = frame_range(len(keys), frame, forward, backward)
        mask = checked_mask(mask, keys[frame], self.resolution_wh(keys[frame]))
        class_id, name = track_class(self._frames(self.video(video)), track)
        masks = propagate_track(predictor, lambda i: self.image(keys[i]), span, frame, mask)
        return self._track_edit(video, "correct_track", lambda f: replace_track(f, track, masks, class_id, name))

    def undo(self) -> Edit | TrackEdit:
        """Undo the most recent edit not yet undone (an item's, or a video's track edit: all its frames), and return
        it; NothingToUndo when there is none."""
        if not self._history:
            raise NothingToUndo("Nothing to undo: no edit since the dataset was opened.")
        entry = self._history.pop()
        for edit in reversed(entry.edits if isinstance(entry, TrackEdit) else (entry,)):
            self._current[edit.key] = edit.before
        return entry

    @property
    def history(self) -> list[Edit | TrackEdit]:
        """The edits that `undo` would undo, most recent first."""
        return self._history[::-1]

    # ------------------------------------------------------------------------------------------ review, save
    def needs_a_look(self, thresholds: LookThresholds | None = None) -> list[LookEntry]:
        """Every item in the order a person should see them (`annotate.review`: not yet reviewed first; no
        instances, then flagged instances, then the rest; worst quality first); a video frame is flagged by its
        tracks' concerns too (`annotate.track_review`). Decodes every mask."""
        limits = thresholds or LookThresholds()
        _, frames = videos_look(self.videos, self.instances, self.is_reviewed, limits)
        return look_order(frames[key] if key in frames else look_entry(key, self.instances(key),
                          self.is_reviewed(key), limits) for key in self.keys)  # fmt: skip

    def videos_needing_a_look(self, thresholds: LookThresholds | None = None) -> list[VideoLookEntry]:
        """Every video in the order a person should see them (`annotate.track_review`: not fully reviewed first; no
        tracks, then concerns — a track that ends early away from the border, a class switch, its frames' flagged
        instances — then the rest; worst quality first). Decodes every mask of the videos."""
        videos, _ = videos_look(self.videos, self.instances, self.is_reviewed, thresholds)
        return look_order(videos)

    def save(self, force: bool = False) -> ReviewSummary:
        """Write the changed items back in every format the dataset holds (atomically, file by file; unchanged items'
        files are not touched) and the review record; the summary counts reviewed, edited and untouched items.
        `DatasetChangedOnDisk`, writing nothing and keeping every edit, when a file it would replace changed on disk
        since the dataset read it (another program saved this dataset); `force`: replace it all the same."""
        changed = [key for key in self.keys if self.is_changed(key)]
        videos = [v for v in self.videos if any(k in changed for k in v.frame_keys)]
        flags = dict(self._recorded)
        for key in self._current:
            flags[key] = {"reviewed": self._current[key].reviewed, "edited": self.is_edited(key)}
        kept = {k: v for k, v in flags.items() if v["reviewed"] or v["edited"]}
        record, items = self._record.path if kept != self._recorded else None, [self.item(key) for key in changed]
        files = replaced_files(self.source, items, videos, record, bool(self._classes.unsaved))
        if not force:
            self._stamps.check(files)
        names_written = self._classes.write()  # before the items: a COCO file holds both
        for video in videos:
            patch_coco_tracks(self.source, video, self._frames(video))
        summary = save_dataset(self.source, {key: self._loaded[key] for key in changed},
                               {key: self._current[key] for key in changed}, flags,
                               {g: local for g, (_, local) in self.track_index.local_ids.items()})  # fmt: skip
        index = self.track_index
        tracks_written = [p for v in videos for p in save_video_tracks(self.source, v, self._frames(v), index)]
        summary = replace(summary, written=(*names_written, *summary.written, *tracks_written))
        if kept != self._recorded:
            self._record.write(kept)
            summary = replace(summary, written=(*summary.written, str(self._record.path)))
        self._stamps.refresh(files)
        self._recorded = kept
        self._loaded.update({key: self._current[key] for key in changed})
        return summary

    # -------------------------------------------------------------------------------------------- internals
    def _editable(self, key: str, action: str) -> tuple[Annotation, ...]:
        item = self.item(key)
        if item.kind == "frame":
            raise ValueError(f"{key!r} is a frame of the video {item.video!r}: its instances are a track's and are "
                             f"not edited one frame at a time ({action}); mark_reviewed works on frames.")  # fmt: skip
        return self.instances(key)

    def _frames(self, video: Video) -> Frames:
        return [self.instances(key) for key in video.frame_keys]

    def _track_edit(
        self, video: str, action: str, change: Callable[[Frames], Frames], reviewed: bool | None = None
    ) -> TrackEdit:
        """One undoable edit of `video`'s frames: their instances as `change` makes them, their flags `reviewed`."""
        states = [self.state(key) for key in self.video(video).frame_keys]
        new = change([state.instances for state in states])
        flags = [state.reviewed if reviewed is None else reviewed for state in states]
        edits = tuple(Edit(key, action, state, replace(state, instances=after, reviewed=flag))
                      for key, state, after, flag in zip(self.video(video).frame_keys, states, new, flags, strict=True)
                      if after is not state.instances or flag != state.reviewed)  # fmt: skip
        entry = TrackEdit(video, action, edits)
        if edits:  # an edit that changes nothing is not one to undo
            self._current.update({edit.key: edit.after for edit in edits})
            self._history.append(entry)
        return entry

    def _apply(self, key: str, action: str, instances: list[Annotation]) -> Edit:
        before = self.state(key)
        return self._push(Edit(key, action, before, replace(before, instances=tuple(instances))))

    def _push(self, edit: Edit) -> Edit:
        self._current[edit.key] = edit.after
        self._history.append(edit)
        return edit
