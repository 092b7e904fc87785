"""Spatial conditioning helpers of sampling/spatial.py."""

import torch

from relight_inpaint.model_loader.relight_format import channel_slice
from relight_inpaint.sampling.spatial import without_light


def test_without_light_zeroes_exactly_the_light_map_channels():
    concat = ["masked_image", "mask", "light_map", "mode"]
    assert channel_slice(concat) == slice(4, 13)
    condition = torch.rand(2, 14, 4, 4) + 0.1
    unlit = without_light(condition, concat)
    assert unlit[:, 4:13].abs().max() == 0
    assert torch.equal(unlit[:, :4], condition[:, :4])
    assert torch.equal(unlit[:, 13:], condition[:, 13:])
