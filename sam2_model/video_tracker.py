"""`VideoTracker`: the network steps of video tracking on one session's state (the video predictor's engine room).

Image features with a small per-session cache, one tracking step for a batch of objects, the memory encoder, and
masks at the video's resolution. `VideoPredictor` decides what to run; this module knows how ultralytics' SAM2Model
is called and how its outputs are stored.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .model import Sam2Model
from .rle import masks_to_rles
from .transforms import fill_holes_and_sprinkles
from .ultralytics_adapter import (
    apply_non_overlapping_constraints,
    encode_new_memory,
    prepare_backbone_features,
    track_step_with_iou,
)
from .video_session import FrameOutput, ObjectTrack, VideoSession

NO_OBJ_SCORE = -1024.0  # Meta's logit for "no mask here" (objects without output on a frame)


class VideoTracker:
    """The model calls of video tracking, with Meta's post-processing.

    fill_hole_area: background holes up to this many low-res pixels are filled (0.1 logits, Meta's value);
    non_overlap_masks: only the highest-scoring object keeps each pixel of the returned masks; feature_cache_frames:
    frames whose image features stay cached per session.
    """

    def __init__(self, model: Sam2Model, fill_hole_area: int, non_overlap_masks: bool, feature_cache_frames: int):
        self.model = model
        # The video model encodes clicked frames' masks binarised (Meta's video predictor config). The flag is read
        # only by the memory encoder, which only video tracking uses; every video tracker sets the same value.
        model.net.binarize_mask_from_pts_for_mem_enc = True
        self.fill_hole_area = fill_hole_area
        self.non_overlap_masks = non_overlap_masks
        self.feature_cache_frames = max(1, feature_cache_frames)

    @property
    def image_size(self) -> int:
        return self.model.image_size

    @property
    def attended_frames(self) -> int:
        """How far back (in frames) tracking attends: object pointers of the last `max_obj_ptrs_in_encoder` frames,
        memories of the last `num_maskmem` strided frames."""
        net = self.model.net
        return max(net.max_obj_ptrs_in_encoder, net.num_maskmem * net.memory_temporal_stride_for_eval)

    # ------------------------------------------------------------------------------------------ image features
    def backbone(self, session: VideoSession, frame_idx: int) -> dict[str, list[torch.Tensor]]:
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
        return {"backbone_fpn": cache[frame_idx], "vision_pos_enc": session.vision_pos_enc or []}

    def _features(
        self, session: VideoSession, frame_idx: int, batch_size: int
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], list[tuple[int, int]]]:
        """The frame's features expanded to `batch_size` objects: (vision_feats, vision_pos_embeds: HWxBxC per
        level, feat_sizes)."""
        backbone_out = self.backbone(session, frame_idx)
        expanded = {
            "backbone_fpn": [f.expand(batch_size, -1, -1, -1) for f in backbone_out["backbone_fpn"]],
            "vision_pos_enc": [p.expand(batch_size, -1, -1, -1) for p in backbone_out["vision_pos_enc"]],
        }
        return prepare_backbone_features(self.model.net, expanded)

    # ------------------------------------------------------------------------------------------ tracking
    def track(
        self,
        session: VideoSession,
        tracks: list[ObjectTrack],
        frame_idx: int,
        *,
        is_init_cond_frame: bool,
        reverse: bool,
        run_mem_encoder: bool,
        point_inputs: dict[str, torch.Tensor] | None = None,
        mask_inputs: torch.Tensor | None = None,
        prev_sam_mask_logits: torch.Tensor | None = None,
        fill_holes: bool = True,
    ) -> list[tuple[FrameOutput, torch.Tensor]]:
        """Objects on one frame through the tracker, as one batch -> per object (stored output with its predicted
        IoU, 1x1x256x256 float32 logits on the session's device).

        The objects must share a memory layout (`memory_layout`): their memories are stacked frame by frame.
        fill_holes=False leaves the hole filling to the caller (`fill_frame_holes`), which can then fill every
        object of a frame at once, whatever batches they were tracked in.
        """
        batch = len(tracks)
        vision_feats, vision_pos_embeds, feat_sizes = self._features(session, frame_idx, batch)
        with self.model.inference():
            out, ious = track_step_with_iou(
                self.model.net,
                frame_idx=frame_idx,
                is_init_cond_frame=is_init_cond_frame,
                vision_feats=vision_feats,
                vision_pos_embeds=vision_pos_embeds,
                feat_sizes=feat_sizes,
                point_inputs=point_inputs,
                mask_inputs=mask_inputs,
                output_dict=self._batched_memories(session, tracks),
                num_frames=session.num_frames,
                track_in_reverse=reverse,
                run_mem_encoder=run_mem_encoder,
                prev_sam_mask_logits=prev_sam_mask_logits,
            )
        ious = ious.float()
        low_res = out["pred_masks"].float()
        if fill_holes:
            low_res = self.fill_holes(low_res)
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
                iou=ious[i : i + 1],
            )
            results.append((output, low_res[i : i + 1]))
        return results

    def fill_holes(self, low_res: torch.Tensor) -> torch.Tensor:
        """Meta's video clean-up of Nx1x256x256 float32 logits (holes up to `fill_hole_area` low-res pixels get 0.1)
        -> the same shape, dtype and device; one host round trip for all N masks."""
        if self.fill_hole_area <= 0:
            return low_res
        return fill_holes_and_sprinkles(low_res, 0.0, self.fill_hole_area, 0, hole_value=0.1)

    def fill_frame_holes(
        self, session: VideoSession, tracked: list[tuple[FrameOutput, torch.Tensor]]
    ) -> list[tuple[FrameOutput, torch.Tensor]]:
        """Fill the holes of a frame's results of `track(..., fill_holes=False)` (from any number of batches) in one
        call, so every object's masks cross to the host together: each output then stores its filled mask. Returns
        the results with the filled 1x1x256x256 logits, in order. (The memory encoder ran on the unfilled masks
        inside the tracking step, as in Meta's predictor.)"""
        if not tracked or self.fill_hole_area <= 0:
            return tracked
        filled = self.fill_holes(torch.cat([low for _, low in tracked])).split(1)
        for (output, _), low in zip(tracked, filled, strict=True):
            output.pred_masks = low.to(session.storage_device)
        return [(output, low) for (output, _), low in zip(tracked, filled, strict=True)]

    @staticmethod
    def memory_layout(track: ObjectTrack) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Objects with memories on the same frames attend to the same memory layout: they can share one batch."""
        return tuple(sorted(track.cond)), tuple(sorted(track.non_cond))

    @staticmethod
    def _batched_memories(session: VideoSession, tracks: list[ObjectTrack]) -> dict[str, dict[int, dict[str, Any]]]:
        """The objects' outputs stacked along the batch, in the dict layout ultralytics' SAM2Model reads."""
        if len(tracks) == 1:
            return tracks[0].model_output_dict(session.device)
        views = [track.model_output_dict(session.device) for track in tracks]
        stacked: dict[str, dict[int, dict[str, Any]]] = {}
        for key in ("cond_frame_outputs", "non_cond_frame_outputs"):
            stacked[key] = {}
            for t in views[0][key]:
                frames = [view[key][t] for view in views]
                names = ("pred_masks", "obj_ptr", "object_score_logits")
                merged: dict[str, Any] = {name: torch.cat([f[name] for f in frames]) for name in names}
                merged["maskmem_features"] = (
                    None
                    if frames[0]["maskmem_features"] is None
                    else torch.cat([f["maskmem_features"] for f in frames])
                )
                pos_enc = frames[0]["maskmem_pos_enc"]
                merged["maskmem_pos_enc"] = (
                    None if pos_enc is None else [p.expand(len(tracks), -1, -1, -1) for p in pos_enc]
                )
                stacked[key][t] = merged
        return stacked

    def encode_memory(self, session: VideoSession, frame_idx: int, output: FrameOutput) -> None:
        """Run the memory encoder on a prompt's output (its mask came from the user: `is_mask_from_pts`)."""
        high_res = F.interpolate(
            output.pred_masks.to(session.device),
            size=(self.image_size, self.image_size),
            mode="bilinear",
            align_corners=False,
        )
        vision_feats, _, feat_sizes = self._features(session, frame_idx, 1)
        with self.model.inference():
            features, pos_enc = encode_new_memory(
                self.model.net,
                vision_feats=vision_feats,
                feat_sizes=feat_sizes,
                pred_masks_high_res=high_res,
                object_score_logits=output.object_score_logits.to(session.device),
                is_mask_from_pts=True,
            )
        output.maskmem_features = features.to(torch.bfloat16).to(session.storage_device)
        output.maskmem_pos_enc = self._pos_enc_constant(session, pos_enc)

    @staticmethod
    def _pos_enc_constant(session: VideoSession, pos_enc: list[torch.Tensor] | None) -> list[torch.Tensor] | None:
        """The memory positional encoding is the same for every frame and object: keep one copy per session."""
        if pos_enc is None:
            return None
        if session.maskmem_pos_enc is None:
            session.maskmem_pos_enc = [p[0:1].clone() for p in pos_enc]
        return session.maskmem_pos_enc

    # ------------------------------------------------------------------------------------------ outputs
    def to_video_resolution(self, session: VideoSession, low_res: torch.Tensor) -> torch.Tensor:
        """Nx1x256x256 logits -> Nx1xHxW at the video's resolution (bilinear, Meta's), non-overlap if asked."""
        masks = self._upsample(session, low_res)
        if self.non_overlap_masks and masks.shape[0] > 1:
            masks = apply_non_overlapping_constraints(self.model.net, masks)
        return masks

    @staticmethod
    def _upsample(session: VideoSession, low_res: torch.Tensor) -> torch.Tensor:
        """Nx1x256x256 logits -> Nx1xHxW float32 on the session's device, every mask in one interpolate (bilinear
        treats each alone: the same values as one at a time)."""
        masks = low_res.to(session.device).float()
        if masks.shape[-2:] != (session.video_height, session.video_width):
            masks = F.interpolate(
                masks, (session.video_height, session.video_width), mode="bilinear", align_corners=False
            )
        return masks

    def frame_masks(self, session: VideoSession, frame_idx: int, is_cond: bool) -> torch.Tensor:
        """Every object's current logits on a frame (NO_OBJ_SCORE where an object has none), video resolution.

        Also stores each object's binary mask there as its newest (`VideoSession.mask`). The objects' masks are
        upsampled together, each as if alone (no non-overlap: a prompt's result shows every object as it is)."""
        height, width = session.video_height, session.video_width
        masks = torch.full((len(session.tracks), 1, height, width), NO_OBJ_SCORE, device=session.device)
        found = [(row, track.output_at(frame_idx, is_cond)) for row, track in enumerate(session.tracks)]
        present = [(row, output) for row, output in found if output is not None]
        if present:
            rows = [row for row, _ in present]
            low_res = torch.cat([output.pred_masks.to(session.device) for _, output in present])
            masks[rows] = self._upsample(session, low_res)
            ious = torch.cat([output.iou for _, output in present])
            self.store_masks(session, frame_idx, masks, rows, ious)
        return masks

    @staticmethod
    def store_masks(
        session: VideoSession, frame_idx: int, video_masks: torch.Tensor, rows: list[int], ious: torch.Tensor
    ) -> None:
        """Keep the objects' binary masks of a frame compactly (COCO RLE), the newest mask of each on that frame,
        with its predicted IoU (`ious`: len(rows) floats, any device)."""
        if not rows:
            return
        binary, host_ious = masks_and_values_to_host(video_masks[rows, 0] > 0, ious)
        for row, rle, iou in zip(rows, masks_to_rles(binary), host_ious.tolist(), strict=True):  # one pycocotools call
            session.tracks[row].masks[frame_idx] = rle
            session.tracks[row].ious[frame_idx] = iou


def masks_and_values_to_host(masks: torch.Tensor, values: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """NxHxW bool masks and N float values on one device -> (NxHxW bool, N float32) numpy arrays, in one transfer
    (a GPU waits for the host once per frame, not once more for a few scores): the bytes travel packed together."""
    scores = values.to(masks.device, torch.float32).reshape(-1).contiguous()
    packed = torch.cat([scores.view(torch.uint8), masks.contiguous().reshape(-1).view(torch.uint8)]).cpu().numpy()
    split = scores.numel() * 4  # the floats first: their bytes stay 4-aligned
    return packed[split:].view(np.bool_).reshape(masks.shape), packed[:split].view(np.float32)
