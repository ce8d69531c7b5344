"""The shared model's serving details: position encodings computed once per feature size, not once per image."""

from __future__ import annotations

import torch
from ultralytics.models.sam.modules.blocks import PositionEmbeddingSine


def test_position_encodings_match_ultralytics_and_are_not_copied_per_image(small_model):
    images = torch.rand(2, 3, small_model.image_size, small_model.image_size)
    with small_model.inference():
        first = small_model.net.forward_image(images)
        second = small_model.net.forward_image(images[:1])
    reference = PositionEmbeddingSine(num_pos_feats=256)
    for level, (pos, features) in enumerate(zip(first["vision_pos_enc"], first["backbone_fpn"], strict=True)):
        assert pos.shape == (2, 256, *features.shape[-2:]), level
        torch.testing.assert_close(pos, reference(features), rtol=0, atol=0)
        # the second image's map is the first's memory: no 67 MB copy per 1024x1024 encoding
        assert pos[1].data_ptr() == pos[0].data_ptr() == second["vision_pos_enc"][level].data_ptr()


def test_checkpoint_keys_are_unchanged(small_model):
    from sam2_model.checkpoints import ModelSpec

    fresh = ModelSpec("t", "2.1").build_untrained()
    assert small_model.net.state_dict().keys() == fresh.state_dict().keys()


def test_a_second_load_can_resize_the_shared_embedding_cache(checkpoints):
    from sam2_model import load_model

    model = load_model(checkpoints.meta, device="cpu")
    budget = model.embedding_cache.max_bytes
    try:
        assert load_model(checkpoints.meta, device="cpu", embedding_cache_bytes=10 * 2**20) is model
        assert model.embedding_cache.max_bytes == 10 * 2**20
        assert load_model(checkpoints.meta, device="cpu").embedding_cache.max_bytes == 10 * 2**20  # None keeps it
    finally:
        model.embedding_cache.resize(budget)


def test_a_loaded_model_is_not_moved_silently(small_model, monkeypatch):
    import pytest

    import sam2_model.model
    from sam2_model import load_model

    assert load_model(small_model, small_model.device) is small_model
    monkeypatch.setattr(sam2_model.model, "select_device", lambda device: torch.device("cuda", 1))  # as if a GPU
    with pytest.raises(ValueError, match=f"already loaded on {small_model.device}, not on cuda:1"):
        load_model(small_model, "cuda:1")
