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
