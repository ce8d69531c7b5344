"""`VideoPredictor`: Meta's `SAM2VideoPredictor` contract and results on the shared model, in bounded memory.

Semantics are Meta's current ones: objects are tracked independently; an object can be added on any frame, also
after tracking started; a correction on a tracked frame becomes a conditioning frame and changes the later frames
when propagation runs again; propagation runs forward or backward from any frame.

Memory is bounded by design. When the model tracks frame t it attends to the conditioning (prompted) frames, to the
memories of the last `num_maskmem - 1` tracked frames and to the object pointers of the last
`max_obj_ptrs_in_encoder - 1` frames. So after each frame we keep an object's tracked-frame outputs only within
`memory_window` frames of t (16 for SAM 2), keep conditioning frames, and keep every finished frame's mask as a
compact RLE. Image features are cached for the last `feature_cache_frames` frames only.
Consequence: a correction more than `memory_window` frames away from where tracking last ran sees the conditioning
frames' memories only, where Meta's predictor would also use the stale memories of its earlier pass.

Edits during propagation: while a `propagate_in_video` generator runs on a session, prompts, removals and resets on
that session raise TrackingInProgressError (a RuntimeError), so the ids it yields always match its mask rows; reads
(`VideoSession.mask`, `objects`, ...) are always allowed. Closing the session makes a running generator raise
RuntimeError at its next frame.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Generator, Hashable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .model import Sam2Model, load_model
from .prompts import Prompt, PromptInput, as_boxes, mask_to_model_frame
from .video_frames import VideoFrames
from .video_session import FramePrompt, ObjectTrack, VideoSession
from .video_tracker import NO_OBJ_SCORE, VideoTracker

__all__ = ["NO_OBJ_SCORE", "VideoPredictor"]


class VideoPredictor:
    """Track objects through a video from clicks, boxes and masks on any frame (Meta's SAM2VideoPredictor API).

    Args:
        model: the shared `Sam2Model` (or anything `load_model` accepts).
        fill_hole_area: fill background holes up to this many low-res pixels in each mask (Meta's default 8; Meta
            does it with a CUDA kernel and skips it on the CPU, we do it everywhere; 0 turns it off).
        add_all_frames_to_correct_as_cond: a correction on a tracked frame becomes a conditioning frame, so later
            frames follow it when propagation runs again (Meta's option; Meta's default False discards the
            correction at the next propagation).
        non_overlap_masks: keep only the highest-scoring object on each pixel in the returned masks.
        memory_window: tracked-frame memories kept around the current frame (default: what the model can attend).
        feature_cache_frames: frames whose image features stay cached.
        batch_objects: track objects that share a memory layout as one batch. Default: on a GPU (it amortises the
            kernel launches of memory attention and the decoder), off on the CPU, where the same FLOPs in one batch
            measured ~3% slower (tiny model, 3 objects, 2 cores: 5.54 vs 5.36 s per frame).
    """

    def __init__(
        self,
        model: Sam2Model | str | Path,
        fill_hole_area: int = 8,
        add_all_frames_to_correct_as_cond: bool = True,
        non_overlap_masks: bool = False,
        memory_window: int | None = None,
        feature_cache_frames: int = 2,
        batch_objects: bool | None = None,
    ) -> None:
        self.model = load_model(model)
        self.tracker = VideoTracker(self.model, fill_hole_area, non_overlap_masks, feature_cache_frames)
        self.add_all_frames_to_correct_as_cond = add_all_frames_to_correct_as_cond
        attendable = self.tracker.attended_frames
        self.memory_window = attendable if memory_window is None else memory_window
        if self.memory_window < attendable:
            raise ValueError(f"memory_window must be >= {attendable} (what the model attends to).")
        self.batch_objects = self.model.device.type != "cpu" if batch_objects is None else batch_objects

    @property
    def image_size(self) -> int:
        return self.model.image_size

    @property
    def fill_hole_area(self) -> int:
        return self.tracker.fill_hole_area

    @property
    def non_overlap_masks(self) -> bool:
        return self.tracker.non_overlap_masks

    # ----------------------------------------------------------------------------------------------- sessions
    def init_state(
        self,
        video: str | Path | Sequence[np.ndarray] | VideoFrames,
        offload_video_to_cpu: bool = False,
        offload_state_to_cpu: bool = False,
        async_loading_frames: bool = False,
        max_frames: int | None = None,
        max_frame_pixels: int | None = None,
        features_from: VideoSession | None = None,
    ) -> VideoSession:
        """Open a video (file, folder of JPEG/PNG frames, or HxWx3 uint8 RGB arrays) for tracking.

        `offload_state_to_cpu` keeps memories on the CPU (less GPU memory). `offload_video_to_cpu` and
        `async_loading_frames` are Meta's ways to bound the memory of preloaded frames; here frames are never
        preloaded (each is decoded on the CPU when the tracker needs it, and only that frame goes to the device), so
        both are always in effect and the flags change nothing. `max_frames` and `max_frame_pixels` refuse longer
        videos and larger frames (ValueError, checked before decoding a video file).
        Raises ValueError naming the video when it is unreadable or empty.

        `video` may also be a `VideoFrames` the caller made (a subclass that decodes as it goes, say), to share
        between sessions: the session then leaves it open when closed, and does not warm up on frame 0 (that
        frame may be long gone from a streaming source). `features_from`: another open session on the same
        `VideoFrames`, whose cached image features the new session starts with (the frames need not be encoded
        again; e.g. a second pass over frames the first session just tracked).
        """
        shared = isinstance(video, VideoFrames)
        frames = video if isinstance(video, VideoFrames) else VideoFrames(video, max_frames, max_frame_pixels)
        if features_from is not None and features_from.frames is not frames:
            raise ValueError("features_from must be a session on the same VideoFrames object as `video`.")
        device = self.model.device
        session = VideoSession(
            frames=frames,
            device=device,
            storage_device=torch.device("cpu") if offload_state_to_cpu else device,
            owns_frames=not shared,
        )
        if features_from is not None:
            with features_from.lock:
                features_from.require_open()
                session.feature_cache.update(features_from.feature_cache)  # the tensors are shared, not copied
                session.vision_pos_enc = features_from.vision_pos_enc
        if not shared:
            self.tracker.backbone(session, 0)  # warm up on frame 0, as Meta does
        return session

    def reset_state(self, session: VideoSession) -> None:
        """Remove every object, prompt and result; the session can take new prompts."""
        with session.lock:
            session.require_editable()
            session.tracks.clear()

    def close_state(self, session: VideoSession) -> None:
        """Free the session (memories, cached features, decoded frames); later calls raise RuntimeError, and so does
        a propagation running on it, at its next frame."""
        with session.lock:
            session.tracks.clear()
            session.feature_cache.clear()
            session.vision_pos_enc = session.maskmem_pos_enc = None
            if session.owns_frames:
                session.frames.close()
            session.closed = True

    # ------------------------------------------------------------------------------------------------ prompts
    def add_new_points_or_box(
        self,
        inference_state: VideoSession,
        frame_idx: int,
        obj_id: Hashable,
        points: PromptInput | None = None,
        labels: PromptInput | None = None,
        clear_old_points: bool = True,
        normalize_coords: bool = True,
        box: PromptInput | None = None,
    ) -> tuple[int, list[Hashable], torch.Tensor]:
        """Add clicks (Nx2 (x, y) pixels, N labels 1/0) and/or a box (xyxy pixels) for `obj_id` on a frame.

        With normalize_coords=False, coordinates are fractions of the frame's width and height instead of pixels.
        A new `obj_id` adds an object, on any frame, at any time. Returns (frame_idx, obj_ids, mask logits of every
        object on that frame, Nx1xHxW float32 at the video's resolution).
        """
        session = inference_state
        session.require_editable()
        session.frames.check_index(frame_idx)
        prompt = Prompt.for_one_object(points, labels, box, clear_old_points, normalize_coords)
        video_wh = (session.video_width, session.video_height)
        prompt.warn_if_off_image(video_wh, stacklevel=2)  # the user's call
        tensors = prompt.to_model_frame((session.video_height, session.video_width), self.image_size, session.device)
        clicks, click_labels = prompt.clicks()
        pixels = clicks if normalize_coords else clicks * np.array(video_wh, np.float32)
        # the box is kept as given, also in fractions with normalize_coords=False (as it always was)
        frame_prompt = FramePrompt(pixels, click_labels, None if prompt.boxes is None else prompt.boxes[0])
        with session.lock:
            session.require_editable()
            track = session.track_for(obj_id)
            point_inputs = track.set_clicks(frame_idx, tensors.point_inputs(), frame_prompt, not clear_old_points)
            return self._run_prompt(session, track, frame_idx, point_inputs=point_inputs, mask_inputs=None)

    def add_new_points(self, *args: Any, **kwargs: Any) -> tuple[int, list[Hashable], torch.Tensor]:
        """Deprecated alias of `add_new_points_or_box` (as in Meta's predictor)."""
        warnings.warn("add_new_points is deprecated; use add_new_points_or_box", DeprecationWarning, stacklevel=2)
        return self.add_new_points_or_box(*args, **kwargs)

    def add_new_mask(
        self, inference_state: VideoSession, frame_idx: int, obj_id: Hashable, mask: PromptInput
    ) -> tuple[int, list[Hashable], torch.Tensor]:
        """Give `obj_id`'s mask (HxW bool, any size) on a frame; same return as `add_new_points_or_box`."""
        session = inference_state
        session.require_editable()
        session.frames.check_index(frame_idx)
        mask_inputs = mask_to_model_frame(mask, self.image_size, session.device)
        with session.lock:
            session.require_editable()
            track = session.track_for(obj_id)
            track.set_mask(frame_idx, mask_inputs)
            return self._run_prompt(session, track, frame_idx, point_inputs=None, mask_inputs=mask_inputs)

    def _run_prompt(
        self,
        session: VideoSession,
        track: ObjectTrack,
        frame_idx: int,
        point_inputs: dict[str, torch.Tensor] | None,
        mask_inputs: torch.Tensor | None,
    ) -> tuple[int, list[Hashable], torch.Tensor]:
        is_init_cond_frame = frame_idx not in track.tracked
        reverse = False if is_init_cond_frame else track.tracked[frame_idx]
        is_cond = is_init_cond_frame or self.add_all_frames_to_correct_as_cond
        prev_sam_mask_logits = None
        if point_inputs is not None:
            previous = track.output_at(frame_idx, is_cond)
            if previous is not None:
                prev_sam_mask_logits = previous.pred_masks.to(session.device).clamp(-32.0, 32.0)
        [(output, _)] = self.tracker.track(
            session,
            [track],
            frame_idx,
            is_init_cond_frame=is_init_cond_frame,
            reverse=reverse,
            run_mem_encoder=False,
            point_inputs=point_inputs,
            mask_inputs=mask_inputs,
            prev_sam_mask_logits=prev_sam_mask_logits,
        )
        (track.temp_cond if is_cond else track.temp_non_cond)[frame_idx] = output
        return frame_idx, session.obj_ids, self.tracker.frame_masks(session, frame_idx, is_cond)

    def clear_all_prompts_in_frame(
        self, inference_state: VideoSession, frame_idx: int, obj_id: Hashable, need_output: bool = True
    ) -> tuple[int, list[Hashable], torch.Tensor] | None:
        """Remove `obj_id`'s clicks, box and mask on a frame (its tracked result there stays until re-tracked)."""
        session = inference_state
        session.require_editable()
        session.frames.check_index(frame_idx)
        with session.lock:
            session.require_editable()
            session.track(obj_id).clear_prompts(frame_idx)  # the newest mask there is now the tracked one, if any
            is_cond = any(frame_idx in t.temp_cond for t in session.tracks)
            masks = self.tracker.frame_masks(session, frame_idx, is_cond)
            return (frame_idx, session.obj_ids, masks) if need_output else None

    def remove_object(
        self, inference_state: VideoSession, obj_id: Hashable, strict: bool = True, need_output: bool = True
    ) -> tuple[list[Hashable], list[tuple[int, torch.Tensor]]]:
        """Stop tracking `obj_id`. Returns (remaining obj_ids, [(frame_idx, masks)] for its prompted frames).

        An unknown id raises KeyError listing the known ids when `strict` (our default: typos are not hidden); with
        strict=False it changes nothing and returns (obj_ids, []), as Meta's predictor does by default.
        """
        session = inference_state
        with session.lock:
            session.require_editable()
            if obj_id not in session.obj_ids and not strict:
                return session.obj_ids, []
            index = session.index_of(obj_id)
            prompted = session.tracks[index].prompted_frames()
            del session.tracks[index]
            updated = []
            if need_output and session.tracks:
                for frame_idx in prompted:
                    is_cond = any(frame_idx in t.temp_cond for t in session.tracks)
                    updated.append((frame_idx, self.tracker.frame_masks(session, frame_idx, is_cond)))
            return session.obj_ids, updated

    def segment_boxes(self, inference_state: VideoSession, frame_idx: int, boxes: PromptInput) -> torch.Tensor:
        """Each box's mask on one frame as a new object prompted by that box alone would get it (no memory),
        without adding objects or changing the session: Nx1xHxW float32 logits at the video's resolution.

        boxes: Nx4 xyxy video pixels. For comparing detections with tracked objects (`auto_annotate` on videos);
        the frame's image features are shared with tracking through the session's feature cache.
        """
        session = inference_state
        session.frames.check_index(frame_idx)
        xyxy = as_boxes(boxes)
        height, width = session.video_height, session.video_width
        if len(xyxy) == 0:
            return torch.zeros((0, 1, height, width), device=session.device)
        prompt = Prompt(boxes=xyxy).to_model_frame((height, width), self.image_size, session.device)
        with session.lock:
            session.require_open()
            scratch = [ObjectTrack(obj_id=i) for i in range(len(xyxy))]  # no memories: every box stands alone
            results = self.tracker.track(
                session, scratch, frame_idx, is_init_cond_frame=True, reverse=False, run_mem_encoder=False,
                point_inputs=prompt.point_inputs(),
            )  # fmt: skip
            low_res = torch.cat([low for _, low in results])
            return F.interpolate(low_res.to(session.device), (height, width), mode="bilinear", align_corners=False)

    def forget_frames(self, inference_state: VideoSession, before_frame_idx: int) -> None:
        """Drop what the session keeps of frames before `before_frame_idx`: their masks and tracking records, and
        every prompt there except each object's newest one (with its conditioning memory, so the object keeps
        being tracked; the dropped prompts' memories are no longer attended to). Tracked memories are already
        bounded by `memory_window` and are left alone, so tracking goes on exactly as before.

        For callers that stream through a long video and have consumed those frames: the session's memory then
        stays flat in the video's length. Later reads of those frames find no mask.
        """
        session = inference_state
        with session.lock:
            session.require_editable()
            for track in session.tracks:
                track.forget_before(before_frame_idx)

    # -------------------------------------------------------------------------------------------- propagation
    def propagate_in_video_preflight(self, inference_state: VideoSession) -> None:
        """Encode the memories of new prompts and make them conditioning frames (called by propagate_in_video)."""
        session = inference_state
        with session.lock:
            session.require_editable()
            if not session.tracks:
                raise RuntimeError(
                    "No object has prompts: add points, a box or a mask with add_new_points_or_box first."
                )
            for track in session.tracks:
                track.consolidate(functools.partial(self.tracker.encode_memory, session))

    def propagate_in_video(
        self,
        inference_state: VideoSession,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
    ) -> Generator[tuple[int, list[Hashable], torch.Tensor], None, None]:
        """Track every object through the video, yielding (frame_idx, obj_ids, Nx1xHxW float32 mask logits at the
        video's resolution) frame by frame; forward from the first prompted frame by default, or backward (`reverse`).

        Edits to the session are refused from the first frame until the generator ends or is closed.
        """
        session = inference_state
        with session.lock:
            self.propagate_in_video_preflight(session)
            if start_frame_idx is None:
                start_frame_idx = min(t for track in session.tracks for t in track.cond)
            session.frames.check_index(start_frame_idx)
            order = self._processing_order(session.num_frames, start_frame_idx, max_frame_num_to_track, reverse)
            obj_ids = session.obj_ids
            session.propagating = True
        try:
            for position, frame_idx in enumerate(order):
                upcoming = order[position + 1] if position + 1 < len(order) else None
                if upcoming is not None and upcoming not in session.feature_cache:  # decoded while this one tracks
                    session.frames.prefetch(upcoming, self.image_size)
                with session.lock:  # per frame: reads and other sessions interleave between frames
                    session.require_open()
                    video_masks = self._propagate_frame(session, frame_idx, reverse)
                yield frame_idx, obj_ids, video_masks
        finally:
            session.propagating = False

    @staticmethod
    def _processing_order(num_frames: int, start: int, max_frames: int | None, reverse: bool) -> range:
        """Meta's frame order: from `start` through at most `max_frames` more frames, towards 0 when reversed."""
        max_frames = num_frames if max_frames is None else max_frames
        if reverse:
            end = max(start - max_frames, 0)
            return range(start, end - 1, -1) if start > 0 else range(0)
        return range(start, min(start + max_frames, num_frames - 1) + 1)

    def _propagate_frame(self, session: VideoSession, frame_idx: int, reverse: bool) -> torch.Tensor:
        """Every object on one frame: a prompted frame's stored output, else a tracking step (batched by memory
        layout when `batch_objects`). Returns the video-resolution logits and keeps the session bounded."""
        masks: list[torch.Tensor | None] = [None] * len(session.tracks)
        ious: list[torch.Tensor | None] = [None] * len(session.tracks)
        groups: dict[tuple[object, ...], list[int]] = {}
        for row, track in enumerate(session.tracks):
            output = track.cond.get(frame_idx)
            if output is not None:
                masks[row], ious[row] = output.pred_masks.to(session.device), output.iou
            else:
                layout = self.tracker.memory_layout(track) if self.batch_objects else (row,)
                groups.setdefault(layout, []).append(row)
        tracked_rows, tracked = [], []  # every object's holes are filled at once, whatever batch tracked it
        for rows in groups.values():
            tracks = [session.tracks[row] for row in rows]
            tracked += self.tracker.track(
                session, tracks, frame_idx, is_init_cond_frame=False, reverse=reverse, run_mem_encoder=True,
                fill_holes=False,
            )  # fmt: skip
            tracked_rows += rows
        for row, (output, low_res) in zip(tracked_rows, self.tracker.fill_frame_holes(session, tracked), strict=True):
            session.tracks[row].non_cond[frame_idx] = output
            masks[row], ious[row] = low_res, output.iou
        video_masks = self.tracker.to_video_resolution(session, torch.cat([m for m in masks if m is not None]))
        frame_ious = torch.cat([iou for iou in ious if iou is not None])
        self.tracker.store_masks(session, frame_idx, video_masks, list(range(len(session.tracks))), frame_ious)
        for track in session.tracks:
            track.tracked[frame_idx] = reverse
            track.prune(frame_idx, self.memory_window)
        return video_masks
