"""How much work one call takes, by device: the one place that sizes the chunks of decoding and post-processing.

Chunks bound memory and never change a result (each prompt is decoded alone, each mask post-processed alone); their
size is a trade between peak memory and per-call overhead, which differs by device. The CPU values were measured on
2 cores; on CUDA, calls are cheap to make large and expensive to make many (kernel launches, host syncs), so the
chunks grow with the GPU memory that is free when the work starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

# Prompts decoded per mask-decoder call on the CPU. The decoder repeats the image embedding and the high-resolution
# features once per prompt, and its upscaling works at 256x256 per prompt: one call on 64 prompts peaked at +3.6 GB
# (and took longer than four calls on 16), on 16 at +0.7 GB (SAM 2.1 tiny, CPU). Meta decodes all prompts in one
# call; chunks give the same masks in bounded memory.
CPU_PROMPTS_PER_CALL = 16
# Full-size float logits that post-processing holds at once on the CPU (segment everything's filters, the
# annotator's upsampling): 256 MiB, a few 12-megapixel masks.
CPU_POSTPROCESS_BYTES = 256 * 2**20

# Decoder memory per prompt: ~56 MB measured on the CPU in float32 (3.6 GB / 64); rounded up, so that bf16 autocast
# on CUDA (about half) leaves a margin for the allocator's fragmentation.
_DECODER_BYTES_PER_PROMPT = 64 * 2**20
# Beyond a few hundred prompts a call gains nothing measurable (the GPU is already saturated); segment everything
# decodes at most `points_per_batch` (64 by default) prompts per batch anyway.
_MAX_CUDA_PROMPTS_PER_CALL = 256
# Post-processing makes ~3 temporaries the size of its logits (thresholds for the stability score, the masks): a
# quarter of free memory for the logits, capped where larger chunks stop saving launches.
_MAX_CUDA_POSTPROCESS_BYTES = 4 * 2**30


@dataclass(frozen=True)
class ChunkSizes:
    """prompts_per_call: prompts per mask-decoder call; postprocess_bytes: full-size float32 logits held at once by
    post-processing (upsampling, filtering)."""

    prompts_per_call: int
    postprocess_bytes: int

    def masks_per_chunk(self, height: int, width: int) -> int:
        """Full-size HxW float32 masks that fit in `postprocess_bytes` (at least one)."""
        return max(1, self.postprocess_bytes // (4 * max(1, height * width)))


def chunk_sizes(device: torch.device) -> ChunkSizes:
    """The chunk sizes for work on `device`: the measured CPU values on the CPU and MPS (unified memory, never
    measured apart), on CUDA from the device's free memory now (a quarter of it for each kind of chunk, never less
    than the CPU values)."""
    if device.type != "cuda":
        return ChunkSizes(CPU_PROMPTS_PER_CALL, CPU_POSTPROCESS_BYTES)
    free_bytes, _ = torch.cuda.mem_get_info(device)
    budget = free_bytes // 4
    prompts = min(_MAX_CUDA_PROMPTS_PER_CALL, max(CPU_PROMPTS_PER_CALL, budget // _DECODER_BYTES_PER_PROMPT))
    postprocess = min(_MAX_CUDA_POSTPROCESS_BYTES, max(CPU_POSTPROCESS_BYTES, budget))
    return ChunkSizes(int(prompts), int(postprocess))
