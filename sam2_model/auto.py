"""What "auto" means for a model: the one a person can wait for on the device it runs on.

One rule for every entry point (the app's `--model`, `load_model("auto")`, the annotate CLI and `auto_annotate`):
the large model on a CUDA GPU, the small one elsewhere (a CPU, or Apple's MPS). Light on purpose (no torch): command
lines state these defaults in their `--help` before importing anything heavy.
"""

from __future__ import annotations

from collections.abc import Mapping

AUTO = "auto"
# SAM 2: base_plus on a CUDA GPU; tiny elsewhere (an image encoding on a 2-core CPU takes ~1.2 s with tiny, ~4.5 s
# with base_plus)
AUTO_MODELS = {"cuda": "sam2.1_b.pt", "other": "sam2.1_t.pt"}


def auto_choice(choices: Mapping[str, str], device_type: str) -> str:
    """The entry of `choices` ({"cuda": ..., "other": ...}) for a torch device type ("cuda", "cpu", "mps")."""
    return choices["cuda" if device_type == "cuda" else "other"]


def model_for_device(model: str, device_type: str) -> str:
    """`model` as given, or for "auto" SAM 2.1 base_plus on CUDA and SAM 2.1 tiny elsewhere."""
    return auto_choice(AUTO_MODELS, device_type) if model == AUTO else model
