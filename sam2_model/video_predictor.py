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
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .formats import mask_to_rle
from .model import Sam2Model, load_model
from .transforms import fill_holes_and_sprinkles
from .video_frames import VideoFrames
from .video_session import FrameOutput, ObjectTrack, VideoSession

NO_OBJ_SCORE = -1024.0  # Meta's logit for "no mask here" (objects without output on a frame)


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
        net = self.model.net
        # The video model encodes clicked frames' masks binarised (Meta's video predictor config). The flag is read
        # only by the memory encoder, which only video tracking uses; every video predictor sets the same value.
        net.binarize_mask_from_pts_for_mem_enc = True
        self.fill_hole_area = fill_hole_area
        self.add_all_frames_to_correct_as_cond = add_all_frames_to_correct_as_cond
        self.non_overlap_masks = non_overlap_masks
        stride = net.memory_temporal_stride_for_eval
        attendable = max(net.max_obj_ptrs_in_encoder, net.num_maskmem * stride)
        self.memory_window = attendable if memory_window is None else memory_window
        if self.memory_window < attendable:
            raise ValueError(f"memory_window must be >= {attendable} (what the model attends to).")
        self.feature_cache_frames = max(1, feature_cache_frames)
        self.batch_objects = self.model.device.type != "cpu" if batch_objects is None else batch_objects

    @property
    def image_size(self) -> int:
        return self.model.image_size

    # ----------------------------------------------------------------------------------------------- sessions
    def init_state(
        self,
        video: str | Path | Sequence[np.ndarray],
        offload_video_to_cpu: bool = False,
        offload_state_to_cpu: bool = False,
        async_loading_frames: bool = False,
        max_frames: int | None = None,
    ) -> VideoSession:
        """Open a video (file, folder of JPEG/PNG frames, or HxWx3 uint8 RGB arrays) for tracking.

        Frames are decoded lazily. `offload_state_to_cpu` keeps memories on the CPU (less GPU memory);
        `offload_video_to_cpu` and `async_loading_frames` are accepted for Meta compatibility (frames are never
        preloaded here). Raises ValueError naming the video when it is unreadable or empty.
        """
        frames = VideoFrames(video, max_frames=max_frames)
        device = self.model.device
        session = VideoSession(
            frames=frames,
            device=device,
            storage_device=torch.device("cpu") if offload_state_to_cpu else device,
            offload_video_to_cpu=offload_video_to_cpu,
        )
        self._backbone(session, 0)  # warm up on frame 0, as Meta does
        return session

    def reset_state(self, session: VideoSession) -> None:
        """Remove every object, prompt and result; the session can take new prompts."""
        session.require_open()
        with session.lock:
            session.objects.clear()

    def close_state(self, session: VideoSession) -> None:
        """Free the session (memories, cached features, decoded frames); later calls raise RuntimeError."""
        with session.lock:
            session.objects.clear()
            session.feature_cache.clear()
            session.vision_pos_enc = session.maskmem_pos_enc = None
            session.frames.close()
            session.closed = True

    # ------------------------------------------------------------------------------------------------ prompts
    def add_new_points_or_box(
        self,
        inference_state: VideoSession,
        frame_idx: int,
        obj_id: Hashable,
        points: np.ndarray | torch.Tensor | None = None,
        labels: np.ndarray | torch.Tensor | None = None,
        clear_old_points: bool = True,
        normalize_coords: bool = True,
        box: np.ndarray | torch.Tensor | None = None,
    ) -> tuple[int, list[Hashable], torch.Tensor]:
        """Add clicks (Nx2 (x, y) pixels, N labels 1/0) and/or a box (xyxy pixels) for `obj_id` on a frame.

        A new `obj_id` adds an object, on any frame, at any time. Returns (frame_idx, obj_ids, mask logits of every
        object on that frame, Nx1xHxW at the video's resolution).
        """
        session = inference_state
        session.require_open()
        session.frames.check_index(frame_idx)
        if (points is not None) != (labels is not None):
            raise ValueError("points and labels go together: give both (Nx2 (x, y) and N labels) or neither.")
        if points is None and box is None:
            raise ValueError("Give at least one prompt: points with labels, or a box.")
        coords = torch.zeros(0, 2) if points is None else torch.as_tensor(np.asarray(points), dtype=torch.float32)
        point_labels = (
            torch.zeros(0, dtype=torch.int32)
            if labels is None
            else torch.as_tensor(np.asarray(labels), dtype=torch.int32)
        )
        coords = coords.reshape(1, -1, 2) if coords.dim() <= 2 else coords
        point_labels = point_labels.reshape(1, -1) if point_labels.dim() <= 1 else point_labels
        if coords.shape[:2] != point_labels.shape:
            raise ValueError(
                f"points and labels disagree: points has shape {tuple(np.shape(points))}, labels has shape "
                f"{tuple(np.shape(labels))}; give one label per point."
            )
        if not torch.isfinite(coords).all():
            raise ValueError("points contain NaN or infinite values.")
        if box is not None:
            if not clear_old_points:
                raise ValueError(
                    "A box must come before any click on a frame: use clear_old_points=True with a box "
                    "(then add clicks with clear_old_points=False)."
                )
            box_tensor = torch.as_tensor(np.asarray(box), dtype=torch.float32)
            if box_tensor.numel() != 4 or not torch.isfinite(box_tensor).all():
                raise ValueError(f"box must be 4 finite numbers (xyxy pixels), got {box!r}.")
            coords = torch.cat([box_tensor.reshape(1, 2, 2), coords], dim=1)
            point_labels = torch.cat([torch.tensor([[2, 3]], dtype=torch.int32), point_labels], dim=1)
        if normalize_coords:
            coords = coords / torch.tensor([session.video_width, session.video_height], dtype=torch.float32)
        coords = (coords * self.image_size).to(session.device)
        point_labels = point_labels.to(session.device)

        with session.lock:
            obj = self._object(session, obj_id, create=True)
            old = obj.point_inputs.get(frame_idx) if not clear_old_points else None
            if old is not None:
                coords = torch.cat([old["point_coords"], coords], dim=1)
                point_labels = torch.cat([old["point_labels"], point_labels], dim=1)
            point_inputs = {"point_coords": coords, "point_labels": point_labels}
            obj.point_inputs[frame_idx] = point_inputs
            obj.mask_inputs.pop(frame_idx, None)
            return self._run_prompt(session, obj, frame_idx, point_inputs=point_inputs, mask_inputs=None)

    def add_new_points(self, *args, **kwargs):
        """Deprecated alias of `add_new_points_or_box` (as in Meta's predictor)."""
        warnings.warn("add_new_points is deprecated; use add_new_points_or_box", DeprecationWarning, stacklevel=2)
        return self.add_new_points_or_box(*args, **kwargs)

    def add_new_mask(
        self, inference_state: VideoSession, frame_idx: int, obj_id: Hashable, mask: np.ndarray | torch.Tensor
    ) -> tuple[int, list[Hashable], torch.Tensor]:
        """Give `obj_id`'s mask (HxW bool, any size) on a frame; same return as `add_new_points_or_box`."""
        session = inference_state
        session.require_open()
        session.frames.check_index(frame_idx)
        mask_tensor = torch.as_tensor(np.asarray(mask)).bool()
        if mask_tensor.dim() != 2:
            raise ValueError(f"mask must be HxW, got shape {tuple(mask_tensor.shape)}.")
        mask_inputs = mask_tensor[None, None].float().to(session.device)
        if mask_inputs.shape[-2:] != (self.image_size, self.image_size):
            mask_inputs = F.interpolate(
                mask_inputs, size=(self.image_size, self.image_size), mode="bilinear", align_corners=False,
                antialias=True,
            )  # fmt: skip
            mask_inputs = (mask_inputs >= 0.5).float()
        with session.lock:
            obj = self._object(session, obj_id, create=True)
            obj.mask_inputs[frame_idx] = mask_inputs
            obj.point_inputs.pop(frame_idx, None)
            return self._run_prompt(session, obj, frame_idx, point_inputs=None, mask_inputs=mask_inputs)

    def _run_prompt(self, session, obj: ObjectTrack, frame_idx: int, point_inputs, mask_inputs):
        is_init_cond_frame = frame_idx not in obj.tracked
        reverse = False if is_init_cond_frame else obj.tracked[frame_idx]
        is_cond = is_init_cond_frame or self.add_all_frames_to_correct_as_cond
        prev_sam_mask_logits = None
        if point_inputs is not None:
            previous = obj.output_at(frame_idx, is_cond)
            if previous is not None:
                prev_sam_mask_logits = previous.pred_masks.to(session.device).clamp(-32.0, 32.0)
        [(output, _)] = self._track(
            session, [obj], frame_idx, is_init_cond_frame, point_inputs, mask_inputs, reverse,
            run_mem_encoder=False, prev_sam_mask_logits=prev_sam_mask_logits,
        )  # fmt: skip
        (obj.temp_cond if is_cond else obj.temp_non_cond)[frame_idx] = output
        return frame_idx, session.obj_ids, self._frame_masks(session, frame_idx, is_cond)

    def clear_all_prompts_in_frame(
        self, inference_state: VideoSession, frame_idx: int, obj_id: Hashable, need_output: bool = True
    ) -> tuple[int, list[Hashable], torch.Tensor] | None:
        """Remove `obj_id`'s clicks, box and mask on a frame (its tracked result there stays until re-tracked)."""
        session = inference_state
        session.require_open()
        session.frames.check_index(frame_idx)
        with session.lock:
            obj = session.objects[session.index_of(obj_id)]
            obj.point_inputs.pop(frame_idx, None)
            obj.mask_inputs.pop(frame_idx, None)
            obj.temp_cond.pop(frame_idx, None)
            obj.temp_non_cond.pop(frame_idx, None)
            output = obj.cond.pop(frame_idx, None)
            if output is not None:
                # Meta keeps the frame's result as a tracked (non-conditioning) memory and forgets it was tracked
                obj.non_cond[frame_idx] = output
                obj.tracked.pop(frame_idx, None)
            if not need_output:
                return None
            is_cond = any(frame_idx in o.temp_cond for o in session.objects)
            return frame_idx, session.obj_ids, self._frame_masks(session, frame_idx, is_cond)

    def remove_object(
        self, inference_state: VideoSession, obj_id: Hashable, strict: bool = True, need_output: bool = True
    ) -> tuple[list[Hashable], list[tuple[int, torch.Tensor]]]:
        """Stop tracking `obj_id`. Returns (remaining obj_ids, [(frame_idx, masks)] for its prompted frames).

        An unknown id raises KeyError listing the known ids (Meta ignores it unless strict; we never hide typos).
        """
        session = inference_state
        session.require_open()
        with session.lock:
            index = session.index_of(obj_id)
            obj = session.objects[index]
            prompted = sorted(set(obj.point_inputs) | set(obj.mask_inputs))
            del session.objects[index]
            updated = []
            if need_output and session.objects:
                for frame_idx in prompted:
                    is_cond = any(frame_idx in o.temp_cond for o in session.objects)
                    updated.append((frame_idx, self._frame_masks(session, frame_idx, is_cond)))
            return session.obj_ids, updated

    # -------------------------------------------------------------------------------------------- propagation
    def propagate_in_video_preflight(self, inference_state: VideoSession) -> None:
        """Encode the memories of new prompts and make them conditioning frames (called by propagate_in_video)."""
        session = inference_state
        session.require_open()
        if not session.objects:
            raise RuntimeError("No object has prompts: add points, a box or a mask with add_new_points_or_box first.")
        for obj in session.objects:
            for is_cond, pending in ((False, obj.temp_non_cond), (True, obj.temp_cond)):
                for frame_idx, output in pending.items():
                    if output.maskmem_features is None:
                        high_res = F.interpolate(
                            output.pred_masks.to(session.device), size=(self.image_size, self.image_size),
                            mode="bilinear", align_corners=False,
                        )  # fmt: skip
                        output.maskmem_features, output.maskmem_pos_enc = self._encode_memory(
                            session, frame_idx, high_res, output.object_score_logits
                        )
                    (obj.cond if is_cond else obj.non_cond)[frame_idx] = output
                pending.clear()
            if not obj.cond:
                raise RuntimeError(
                    f"Object {obj.obj_id!r} has no prompts: add points, a box or a mask for it, or remove_object it."
                )
            for frame_idx in obj.cond:
                obj.non_cond.pop(frame_idx, None)

    def propagate_in_video(
        self,
        inference_state: VideoSession,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
    ) -> Iterator[tuple[int, list[Hashable], torch.Tensor]]:
        """Track every object through the video, yielding (frame_idx, obj_ids, Nx1xHxW mask logits at the video's
        resolution) frame by frame; forward from the first prompted frame by default, or backward (`reverse`)."""
        session = inference_state
        with session.lock:
            self.propagate_in_video_preflight(session)
            num_frames = session.num_frames
            if start_frame_idx is None:
                start_frame_idx = min(t for obj in session.objects for t in obj.cond)
            session.frames.check_index(start_frame_idx)
            if max_frame_num_to_track is None:
                max_frame_num_to_track = num_frames
            if reverse:
                end = max(start_frame_idx - max_frame_num_to_track, 0)
                order = range(start_frame_idx, end - 1, -1) if start_frame_idx > 0 else range(0)
            else:
                end = min(start_frame_idx + max_frame_num_to_track, num_frames - 1)
                order = range(start_frame_idx, end + 1)
            obj_ids = session.obj_ids
        for frame_idx in order:
            with session.lock:  # per frame: other calls on this session may interleave between frames
                session.require_open()
                masks: list[torch.Tensor | None] = [None] * len(session.objects)
                groups: dict[tuple, list[int]] = {}
                for row, obj in enumerate(session.objects):
                    output = obj.cond.get(frame_idx)
                    if output is not None:
                        masks[row] = output.pred_masks.to(session.device)
                    else:
                        layout = self._memory_layout(obj) if self.batch_objects else (row,)
                        groups.setdefault(layout, []).append(row)
                for rows in groups.values():
                    objs = [session.objects[row] for row in rows]
                    results = self._track(session, objs, frame_idx, False, None, None, reverse, run_mem_encoder=True)
                    for row, obj, (output, low_res) in zip(rows, objs, results, strict=True):
                        obj.non_cond[frame_idx] = output
                        masks[row] = low_res
                for obj in session.objects:
                    obj.tracked[frame_idx] = reverse
                video_masks = self._to_video_resolution(session, torch.cat(masks))
                self._keep_bounded(session, frame_idx, video_masks)
            yield frame_idx, obj_ids, video_masks

    @staticmethod
    def _memory_layout(obj: ObjectTrack) -> tuple:
        """Objects with memories on the same frames attend to the same memory layout: they can share one batch."""
        return tuple(sorted(obj.cond)), tuple(sorted(obj.non_cond))

    # -------------------------------------------------------------------------------------------------- model
    def _object(self, session: VideoSession, obj_id: Hashable, create: bool) -> ObjectTrack:
        try:
            return session.objects[session.index_of(obj_id)]
        except KeyError:
            if not create:
                raise
            obj = ObjectTrack(obj_id=obj_id)
            session.objects.append(obj)
            return obj

    def _backbone(self, session: VideoSession, frame_idx: int) -> dict[str, list[torch.Tensor]]:
        """Image features of a frame, from the session's small cache or the image encoder."""
        cache = session.feature_cache
        if frame_idx not in cache:
            image = session.frames.model_input(frame_idx, self.image_size, session.device)
            with self.model.inference():
                backbone_out = self.model.net.forward_image(image)
            cache[frame_idx] = list(backbone_out["backbone_fpn"])
            if session.vision_pos_enc is None:
                # the positional encodings depend only on the feature shapes (~85 of a frame's ~100 MB at 1024):
                # one copy per session instead of one per cached frame
                session.vision_pos_enc = list(backbone_out["vision_pos_enc"])
            while len(cache) > self.feature_cache_frames:
                cache.popitem(last=False)
        cache.move_to_end(frame_idx)
        return {"backbone_fpn": cache[frame_idx], "vision_pos_enc": session.vision_pos_enc}

    def _features(self, session: VideoSession, frame_idx: int, batch_size: int):
        backbone_out = self._backbone(session, frame_idx)
        expanded = {
            "backbone_fpn": [f.expand(batch_size, -1, -1, -1) for f in backbone_out["backbone_fpn"]],
            "vision_pos_enc": [p.expand(batch_size, -1, -1, -1) for p in backbone_out["vision_pos_enc"]],
        }
        _, vision_feats, vision_pos_embeds, feat_sizes = self.model.net._prepare_backbone_features(expanded)
        return vision_feats, vision_pos_embeds, feat_sizes

    def _track(
        self, session, objs: list[ObjectTrack], frame_idx, is_init_cond_frame, point_inputs, mask_inputs, reverse,
        run_mem_encoder, prev_sam_mask_logits=None,
    ) -> list[tuple[FrameOutput, torch.Tensor]]:  # fmt: skip
        """Objects on one frame through the tracker, as one batch -> per object (stored output, 1x1x256x256 logits).

        The objects must share a memory layout (`_memory_layout`): their memories are stacked frame by frame.
        """
        batch = len(objs)
        vision_feats, vision_pos_embeds, feat_sizes = self._features(session, frame_idx, batch)
        with self.model.inference():
            out = self.model.net.track_step(
                frame_idx=frame_idx,
                is_init_cond_frame=is_init_cond_frame,
                current_vision_feats=vision_feats,
                current_vision_pos_embeds=vision_pos_embeds,
                feat_sizes=feat_sizes,
                point_inputs=point_inputs,
                mask_inputs=mask_inputs,
                output_dict=self._batched_memories(session, objs),
                num_frames=session.num_frames,
                track_in_reverse=reverse,
                run_mem_encoder=run_mem_encoder,
                prev_sam_mask_logits=prev_sam_mask_logits,
            )
        low_res = out["pred_masks"].float()
        if self.fill_hole_area > 0:
            low_res = fill_holes_and_sprinkles(low_res, 0.0, self.fill_hole_area, 0, hole_value=0.1)
        maskmem = out["maskmem_features"]
        if maskmem is not None:
            maskmem = maskmem.to(torch.bfloat16).to(session.storage_device)
        pos_enc = self._pos_enc_constant(session, out["maskmem_pos_enc"])
        results = []
        for i in range(batch):
            output = FrameOutput(
                pred_masks=low_res[i : i + 1].to(session.storage_device),
                obj_ptr=out["obj_ptr"][i : i + 1].float(),
                object_score_logits=out["object_score_logits"][i : i + 1].float(),
                maskmem_features=None if maskmem is None else maskmem[i : i + 1].clone(),
                maskmem_pos_enc=pos_enc,
            )
            results.append((output, low_res[i : i + 1]))
        return results

    @staticmethod
    def _batched_memories(session: VideoSession, objs: list[ObjectTrack]) -> dict[str, dict[int, dict]]:
        """The objects' outputs stacked along the batch, in the dict layout ultralytics' SAM2Model reads."""
        if len(objs) == 1:
            return objs[0].model_output_dict(session.device)
        views = [obj.model_output_dict(session.device) for obj in objs]
        stacked: dict[str, dict[int, dict]] = {}
        for key in ("cond_frame_outputs", "non_cond_frame_outputs"):
            stacked[key] = {}
            for t in views[0][key]:
                frames = [view[key][t] for view in views]
                merged = {name: torch.cat([f[name] for f in frames]) for name in ("pred_masks", "obj_ptr",
                          "object_score_logits")}  # fmt: skip
                merged["maskmem_features"] = (
                    None
                    if frames[0]["maskmem_features"] is None
                    else torch.cat([f["maskmem_features"] for f in frames])
                )
                pos_enc = frames[0]["maskmem_pos_enc"]
                merged["maskmem_pos_enc"] = (
                    None if pos_enc is None else [p.expand(len(objs), -1, -1, -1) for p in pos_enc]
                )
                stacked[key][t] = merged
        return stacked

    def _encode_memory(self, session, frame_idx, high_res_masks, object_score_logits):
        vision_feats, _, feat_sizes = self._features(session, frame_idx, 1)
        with self.model.inference():
            features, pos_enc = self.model.net._encode_new_memory(
                current_vision_feats=vision_feats,
                feat_sizes=feat_sizes,
                pred_masks_high_res=high_res_masks,
                object_score_logits=object_score_logits.to(session.device),
                is_mask_from_pts=True,
            )
        return features.to(torch.bfloat16).to(session.storage_device), self._pos_enc_constant(session, pos_enc)

    @staticmethod
    def _pos_enc_constant(session: VideoSession, pos_enc: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
        """The memory positional encoding is the same for every frame and object: keep one copy per session."""
        if pos_enc is None:
            return None
        if session.maskmem_pos_enc is None:
            session.maskmem_pos_enc = [p[0:1].clone() for p in pos_enc]
        return session.maskmem_pos_enc

    # ------------------------------------------------------------------------------------------------ outputs
    def _to_video_resolution(self, session: VideoSession, low_res: torch.Tensor) -> torch.Tensor:
        masks = low_res.to(session.device).float()
        if masks.shape[-2:] != (session.video_height, session.video_width):
            masks = F.interpolate(
                masks, (session.video_height, session.video_width), mode="bilinear", align_corners=False
            )
        if self.non_overlap_masks and masks.shape[0] > 1:
            masks = self.model.net._apply_non_overlapping_constraints(masks)
        return masks

    def _frame_masks(self, session: VideoSession, frame_idx: int, is_cond: bool) -> torch.Tensor:
        """Every object's current logits on a frame (NO_OBJ_SCORE where an object has none), video resolution."""
        height, width = session.video_height, session.video_width
        masks = torch.full((len(session.objects), 1, height, width), NO_OBJ_SCORE, device=session.device)
        for row, obj in enumerate(session.objects):
            output = obj.output_at(frame_idx, is_cond)
            if output is not None:
                masks[row : row + 1] = self._to_video_resolution(session, output.pred_masks)
        return masks

    def _keep_bounded(self, session: VideoSession, frame_idx: int, video_masks: torch.Tensor) -> None:
        """Store the frame's masks compactly and drop memories the model can no longer attend to."""
        binary = (video_masks[:, 0] > 0).cpu().numpy()
        for row, obj in enumerate(session.objects):
            obj.masks[frame_idx] = mask_to_rle(binary[row])
            for t in [t for t in obj.non_cond if abs(t - frame_idx) > self.memory_window]:
                del obj.non_cond[t]
