"""Reviewing and correcting a dataset, Gradio-free: the Review tab calls it on the user's `ReviewState`.

A dataset is opened from the folder the studio was started with (`sam2-studio --dataset PATH`, on one's own
machine: saved in place) or from an uploaded zip (hosted: extracted into the session's folder, saved as a download
named after the upload); never from a path typed in a browser. An item is loaded into an `ImageState` whose objects
are its instances (mask and class name), so the Image tab's operations (clicks, boxes, candidates, undo, objects)
work on it unchanged; a click on an instance refines it from its stored mask (SAM 2's ``mask_input``,
`annotate.refine`). Leaving the item (another item, Accept, Save) commits what changed to the `Dataset` as its
edits: delete, refine (`replace_mask`), change of class, add, and reviewed.

Videos are reviewed frame by frame, their instances edited track by track: `app.review_video`.
"""

from __future__ import annotations

import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotate.dataset import Dataset, DatasetChangedOnDisk, NothingToUndo, open_dataset
from annotate.dataset_items import TrackEdit

from .image_workflow import ImageWorkflow, preview_size, to_image
from .media import preview_scale, to_preview
from .prompts import POSITIVE, click_position
from .refusals import Refusal
from .review_classes import class_named, dataset_classes, pending_classes
from .review_filters import ALL, ANY_CLASS, NEEDS_A_LOOK, check_filters, item_status, reason_words, status_matches
from .review_prefetch import item_picture, prefetch_next
from .services import Services
from .sessions import ImageObject, ImageState, ReviewEdit, ReviewState
from .uploads import extract_dataset

UNDONE = {  # what an undone edit was, as the status line names it (`Edit.action`, `TrackEdit.action`)
    "reviewed": "Accept", "delete": "a delete", "change_class": "a change of class", "add": "an added instance",
    "refine": "a correction", "delete_track": "a track delete", "track_class": "a track's change of class",
    "merge_tracks": "a track merge", "swap_tracks": "a track swap", "correct_track": "a track correction",
}  # fmt: skip


@dataclass(frozen=True)
class ItemRow:
    """One item as the grid lists it: its key, its instances' class names (one per instance), whether it was
    reviewed and edited, and why it needs a look (`annotate.review` reason names)."""

    key: str
    classes: tuple[str, ...]
    reviewed: bool
    edited: bool
    reasons: tuple[str, ...]

    @property
    def status(self) -> str:
        """What the grid says (`item_status`): reviewed, edited, nothing found, or to review."""
        return item_status(self.reviewed, self.edited, not self.classes)

    @property
    def why(self) -> str:
        """Why it needs a look, in words ("thin masks, low scores"); "" when nothing is flagged."""
        return ", ".join(reason_words(self.reasons))


class ReviewWorkflow:
    """Open, list, edit, commit and save a dataset; every method works on a user's `ReviewState` (the caller holds
    the user's lock) and raises `Refusal` for what it will not do."""

    def __init__(self, services: Services, images: ImageWorkflow, dataset: str | Path | None = None) -> None:
        self.services = services
        self.images = images
        self.local_dataset = None if dataset is None else Path(dataset)

    # -------------------------------------------------------------------------------------------------- open
    def open_local(self, state: ReviewState) -> ReviewState:
        """The dataset the studio was started with (`--dataset`), saved in place; Refusal when there is none."""
        if self.local_dataset is None:
            raise Refusal("No dataset was given when the studio started: upload a dataset zip, or start it with "
                          "sam2-studio --dataset PATH on your own machine.")  # fmt: skip
        return self._opened(self.local_dataset, self.local_dataset.stem, hosted=False)

    def open_upload(self, path: str | None, workdir: Path) -> ReviewState:
        """An uploaded dataset zip, extracted into `workdir` (the session's folder) within the upload limits; its
        download will be named after it."""
        if not path:
            raise Refusal("Upload a dataset zip first.")
        target = workdir / "review_dataset"
        shutil.rmtree(target, ignore_errors=True)  # the dataset uploaded before
        root = extract_dataset(path, target, self.services.limits)
        state = self._opened(dataset_in(root), Path(path).stem, hosted=True)
        dataset, limit = require_dataset(state), self.services.limits.max_image_pixels
        for key in dataset.keys:  # masks are decoded at these sizes: a stated size is checked as an image's is
            width, height = dataset.resolution_wh(key)
            if width * height > limit:
                raise Refusal(f"{key} is {width}x{height} pixels; the limit is {limit:,} pixels an image.")
        return state

    def _opened(self, path: Path, name: str, hosted: bool) -> ReviewState:
        try:
            dataset = open_dataset(path)
        except ValueError as error:  # the readers say what they expected; the path is the user's own or ours
            raise Refusal(str(error).replace(str(path), name)) from error
        return ReviewState(dataset=dataset, name=name, hosted=hosted)

    # -------------------------------------------------------------------------------------------------- list
    def rows(self, state: ReviewState, class_name: str = ANY_CLASS, status: str = ALL,
             order: str = NEEDS_A_LOOK) -> list[ItemRow]:  # fmt: skip
        """The images of the dataset with a class among their instances (`ANY_CLASS`: every image) and the status
        asked (`STATUSES`), in `order` (`ORDERS`: needs-a-look first, or the dataset's). They become the items
        Next and Previous go through."""
        dataset = require_dataset(state)
        check_filters(status, order)
        if order == NEEDS_A_LOOK:
            looks = [(e.key, e.reasons) for e in dataset.needs_a_look()]
        else:
            looks = [(key, ()) for key in dataset.keys]
        rows = []
        for key, reasons in looks:
            if dataset.item(key).kind != "image":
                continue
            classes = tuple(a.class_name for a in dataset.instances(key))
            row = ItemRow(key, classes, dataset.is_reviewed(key), dataset.is_edited(key), tuple(reasons))
            wanted = status_matches(status, row.reviewed, row.edited, not classes)
            if wanted and (class_name == ANY_CLASS or class_name in classes):
                rows.append(row)
        state.listed = [row.key for row in rows]
        return rows

    def class_names(self, state: ReviewState) -> list[str]:
        """The dataset's class names, by class id."""
        return dataset_classes(require_dataset(state))

    def class_choices(self, state: ReviewState) -> list[str]:
        """What the class list offers: the dataset's classes, then the new ones the editor's objects have."""
        dataset = require_dataset(state)
        return [*dataset_classes(dataset), *pending_classes(dataset, state.image.objects)]

    # ------------------------------------------------------------------------------------------------- items
    def load(self, state: ReviewState, key: str) -> None:
        """Commit the item in the editor, then show `key`: its image (prefetched when it was the next one) and its
        instances as objects; the item after it in the list starts being prepared."""
        dataset = require_dataset(state)
        dataset.item(key)  # ValueError for an unknown key: a bug of the caller, not the user's
        if dataset.item(key).kind != "image":
            raise Refusal(f"{key} is a video frame: open its video (videos are reviewed track by track).")
        self.commit(state)
        self._show(state, key)

    def _show(self, state: ReviewState, key: str) -> None:
        dataset = require_dataset(state)
        state.video = None
        image, features = item_picture(self.services, dataset, state, key)
        if (image.shape[1], image.shape[0]) != dataset.resolution_wh(key):
            stated = "x".join(map(str, dataset.resolution_wh(key)))
            raise Refusal(f"{key}'s image is {image.shape[1]}x{image.shape[0]} but its labels are for {stated}: "
                          "fix the dataset's sizes.")  # fmt: skip
        scale = preview_scale(*image.shape[:2])
        state.key = key
        state.image = ImageState(image=image, preview=to_preview(image, scale), scale=scale, name=key,
                                 mode=state.image.mode, features=features)  # fmt: skip
        self._fill(state)
        prefetch_next(self.services, dataset, state)

    def step(self, state: ReviewState, delta: int) -> bool:
        """Load the next (`delta` 1) or previous (-1) item of the list; False, loading nothing, at its end."""
        require_dataset(state)
        if not state.listed:
            return False
        if state.key not in state.listed:
            target = 0 if delta > 0 else len(state.listed) - 1
        else:
            target = state.listed.index(state.key) + delta
        if not 0 <= target < len(state.listed):
            return False
        self.load(state, state.listed[target])
        return True

    def accept(self, state: ReviewState) -> bool:
        """Commit the item in the editor, mark it reviewed, and go on to the next (False at the list's end)."""
        dataset, key = require_dataset(state), require_item(state)
        self.commit(state)
        dataset.mark_reviewed(key)
        return self.step(state, 1)

    # ------------------------------------------------------------------------------------------------- edits
    def click(self, state: ReviewState, index: Any) -> None:
        """A click on the editor's picture, as the Image tab's: a positive click on an instance (not the active
        object) first makes that instance active, so clicking an instance refines it; an empty new object keeps
        its clicks (it is being drawn, even over another instance)."""
        require_item(state)
        image = state.image
        active = image.objects[image.active] if image.objects else None
        fresh = active is not None and active.prior is None and not active.points and active.box is None
        if image.mode == POSITIVE and image.box_corner is None and not fresh:
            x, y = to_image(image, *click_position(index, preview_size(image)))
            hits = [i for i, o in enumerate(image.objects) if o.mask is not None and _covers(o.mask, x, y)]
            if hits and image.active not in hits:
                image.active = hits[-1]  # the one drawn on top
        self.images.click(image, index)

    def drag_box(self, state: ReviewState, xyxy_preview: tuple[float, float, float, float]) -> bool:
        """A box dragged on the editor's picture (xyxy preview pixels) becomes the active instance's box: SAM 2
        refines it from its stored mask and the box, as a two-click box. False, changing nothing, for no area."""
        require_item(state)
        return self.images.drag_box(state.image, xyxy_preview)

    def add_object(self, state: ReviewState, class_name: str | None = None) -> None:
        """A new instance to draw (clicks or a box), of `class_name` (else the active object's class; a new name is
        a new class, as in `relabel`)."""
        require_item(state)
        _not_on_a_frame(state)
        image = state.image
        current = image.objects[image.active].class_name if image.objects else ""
        name = self.class_named(state, class_name or current, allow_new=True)  # a refused name adds nothing
        self.images.add_object(image)
        image.objects[image.active].class_name = name

    def delete(self, state: ReviewState) -> None:
        """Delete the active object (undoable)."""
        require_item(state)
        _not_on_a_frame(state)
        image = state.image
        if not image.objects:
            raise Refusal("There is no instance to delete on this item.")
        obj = image.objects[image.active]
        state.edits.append(ReviewEdit("remove", obj, image.active, obj.class_name, len(image.edits)))
        self.images.remove_object(image)

    def relabel(self, state: ReviewState, number: Any, class_name: str | None) -> None:
        """Object `number` (1-based, as listed) gets class `class_name`: one of the dataset's, or a new one, added to
        the dataset when the object is committed (undoable until then)."""
        require_item(state)
        _not_on_a_frame(state)
        image = state.image
        if not image.objects or number is None:
            return
        self.images.select_object(image, number)
        obj = image.objects[image.active]
        name = self.class_named(state, class_name, allow_new=True)
        if name != obj.class_name:
            state.edits.append(ReviewEdit("class", obj, image.active, obj.class_name, len(image.edits)))
            obj.class_name = name

    def undo(self, state: ReviewState) -> str:
        """Take back the most recent change: the open item's own while it has one (a click or box: the Image tab's
        undo; a delete, a class change), else the dataset's last edit, whichever item it was on (Accept's reviewed
        mark, an edit committed when the user moved on, a video's track edit), showing that item so the user sees
        what was taken back. Returns what the status line says ("" for the open item's own); Refusal when there is
        nothing left to undo."""
        dataset, image = require_dataset(state), state.image
        if state.key is not None and (state.edits or any(e.obj in image.objects for e in image.edits)):
            if state.edits and state.edits[-1].mark >= len(image.edits):
                edit = state.edits.pop()
                if edit.kind == "remove":
                    image.objects.insert(min(edit.index, len(image.objects)), edit.obj)
                else:
                    edit.obj.class_name = edit.previous_class
                image.active = image.objects.index(edit.obj)
            else:
                self.images.undo(image)
            return ""
        try:
            entry = dataset.undo()
        except NothingToUndo as error:
            raise Refusal("Nothing to undo: every change since the dataset was opened has been taken back.") from error
        what = UNDONE.get(entry.action, entry.action)
        video = entry.video if isinstance(entry, TrackEdit) else dataset.item(entry.key).video
        if video is None and not isinstance(entry, TrackEdit):  # an image's edit: shown with the editor refilled
            if entry.key == state.key and state.video is None:
                self._fill(state)
            else:
                self._show(state, entry.key)  # nothing to commit: the open item had no change left
            return f"Undone: {what} on {entry.key}."
        if state.video == video and state.key is not None:
            fill_frame(state, dataset, state.key)
            return f"Undone: {what} on the video {video}."
        return f"Undone: {what} on the video {video} (open it to see it)."

    def commit(self, state: ReviewState) -> int:
        """Write the editor's changes of its item into the dataset as edits (delete, refine, change of class, add),
        and start the editor again from what the dataset now holds. Returns how many edits were made; Refusal,
        changing nothing, when an edited instance's mask is empty. A video frame's changes are track edits, made
        at once (`app.review_video`): nothing to commit."""
        if state.dataset is None or state.key is None or state.video is not None:
            return 0
        dataset, key, objects = state.dataset, state.key, state.image.objects
        kept = [o for o in state.originals if o in objects]
        for number, obj in enumerate(objects, 1):
            if (obj.points or obj.box is not None) and (obj.mask is None or not obj.mask.any()):
                raise Refusal(f"Object {number}'s mask is empty: undo its last click, or delete it.")
        made = 0
        for index in reversed([i for i, o in enumerate(state.originals) if o not in objects]):
            dataset.delete_instance(key, index)
            made += 1
        for index, obj in enumerate(kept):
            if (obj.points or obj.box is not None) and obj.mask is not None:
                dataset.replace_mask(key, index, obj.mask)
                made += 1
            if obj.class_name and obj.class_name != dataset.instances(key)[index].class_name:
                dataset.change_class(key, index, dataset.add_class(obj.class_name))  # a new class is added first
                made += 1
        for obj in objects:
            if obj not in state.originals and obj.mask is not None and obj.mask.any():
                dataset.add_instance(key, obj.mask, dataset.add_class(self.class_named(state, obj.class_name, True)))
                made += 1
        if made:
            self._fill(state)
        return made

    # -------------------------------------------------------------------------------------------------- save
    def save(self, state: ReviewState, folder: Path) -> tuple[str, Path | None]:
        """Commit the item in the editor and save the dataset: in place (`--dataset`), or, for an upload, into its
        copy and then as a zip named after the upload in `folder`. Returns (what was saved, the zip or None)."""
        dataset = require_dataset(state)
        self.commit(state)
        try:
            summary = dataset.save()
        except DatasetChangedOnDisk as error:  # local only: an upload's copy is the session's own
            names = ", ".join(path.name for path in error.paths)
            raise Refusal(f"Nothing was saved: {names} changed on disk since you opened this dataset (saved from "
                          "another browser tab or program?), and saving would overwrite those changes. Your edits "
                          "are kept here, unsaved. To keep both, open the dataset again (it drops the edits here) "
                          "and redo yours.") from error  # fmt: skip
        text = (f"Saved: {summary.reviewed} reviewed, {summary.edited} edited, {summary.untouched} untouched; "
                f"{len(summary.written)} files written.")  # fmt: skip
        if not state.hosted:
            return text, None
        folder.mkdir(parents=True, exist_ok=True)
        archive = folder / f"{state.name}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
            for path in sorted(dataset.root.rglob("*")):
                if path.is_file():
                    out.write(path, path.relative_to(dataset.root).as_posix())
        return text, archive

    # --------------------------------------------------------------------------------------------- internals
    def _fill(self, state: ReviewState) -> None:
        """The editor's objects from the dataset's instances of its item (prompts and undo start again)."""
        dataset, key = require_dataset(state), require_item(state)
        state.originals = [
            ImageObject(candidates=a.mask[None], scores=[] if a.score is None else [float(a.score)],
                        class_name=a.class_name, prior=a.mask)
            for a in dataset.instances(key)
        ]  # fmt: skip
        image = state.image
        image.objects = list(state.originals) or [ImageObject(class_name=self.class_named(state, None))]
        image.active, image.box_corner, image.edits, state.edits = 0, None, [], []

    def class_named(self, state: ReviewState, name: str | None, allow_new: bool = False) -> str:
        """`name` when it is one of the dataset's classes, the first class for None or ""; a new class's name where
        `allow_new` (checked, `review_classes.class_named`); Refusal otherwise."""
        return class_named(require_dataset(state), state.image.objects, name, allow_new, state.hosted)


def fill_frame(state: ReviewState, dataset: Dataset, key: str) -> None:
    """The editor's objects from a video frame's instances (those of a track), their track ids in `state.tracks`
    and every track id of its video in `state.video_tracks` (their colours)."""
    instances = [a for a in dataset.instances(key) if a.track_id is not None]
    state.originals = [ImageObject(candidates=a.mask[None], scores=[] if a.score is None else [float(a.score)],
                                   class_name=a.class_name, prior=a.mask) for a in instances]  # fmt: skip
    state.tracks = [int(a.track_id) for a in instances if a.track_id is not None]
    video = dataset.video(dataset.item(key).video or "")
    state.video_tracks = sorted({int(a.track_id) for k in video.frame_keys for a in dataset.instances(k)
                                 if a.track_id is not None})  # fmt: skip
    image = state.image
    image.objects, image.active, image.box_corner, image.edits, state.edits = list(state.originals), 0, None, [], []


def dataset_in(root: Path) -> Path:
    """What to open in an extracted zip: the folder when it is a dataset, else a COCO file in it (at its top, or in
    annotations/ as CVAT and Datumaro write it) that opens; the folder when none does (its error says why)."""
    for candidate in (root, *sorted(root.glob("*.json")), *sorted(root.glob("annotations/*.json"))):
        try:
            open_dataset(candidate)  # the index only: cheap
        except ValueError:
            continue
        return candidate
    return root


def require_dataset(state: ReviewState) -> Dataset:
    if state.dataset is None:
        raise Refusal("Open a dataset first: upload its zip (or start the studio with --dataset PATH).")
    return state.dataset


def require_item(state: ReviewState) -> str:
    if state.key is None or state.image.image is None:
        raise Refusal("Choose an item in the grid first.")
    return state.key


def _covers(mask: Any, x: int, y: int) -> bool:
    return 0 <= y < mask.shape[0] and 0 <= x < mask.shape[1] and bool(mask[y, x])


def _not_on_a_frame(state: ReviewState) -> None:
    if state.video is not None:
        raise Refusal("A video frame's instances are its tracks': use the Videos section (delete from this frame on, "
                      "change the track's class).")  # fmt: skip
