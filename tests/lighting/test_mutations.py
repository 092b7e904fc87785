"""Tests for three mutations of the light code that the suite let through (issue 25): each
builds its expectation by hand, not with the function under test."""

from __future__ import annotations

import torch

from relight_inpaint.lighting.exposure import keep_hue_in_range
from relight_inpaint.lighting.light import Light
from relight_inpaint.lighting.light_estimate import estimate_light
from relight_inpaint.lighting.shading import lambert


def light_from(direction: tuple[float, float, float]) -> Light:
    vector = torch.tensor([direction], dtype=torch.float32)
    return Light(
        direction=vector / vector.norm(dim=-1, keepdim=True),
        intensity=torch.ones(1),
        ambient=torch.zeros(1),
        color=torch.ones(1, 3),
    )


def test_keep_hue_in_range_scales_the_pixel_as_a_whole():
    """Mutation caught: a per-channel clamp (a brightened brown turns yellow)."""
    brightened_brown = torch.tensor([[[[1.6, 1.2, 0.4]]]])
    expected = torch.tensor([[[[1.0, 0.75, 0.25]]]])  # 1.6 : 1.2 : 0.4 kept
    torch.testing.assert_close(keep_hue_in_range(brightened_brown), expected)
    in_range = torch.tensor([[[[0.5, -0.1, 0.9]]]])
    torch.testing.assert_close(keep_hue_in_range(in_range), torch.tensor([[[[0.5, 0.0, 0.9]]]]))


def test_lambert_by_hand_for_each_axis_and_sign():
    """Mutation caught: the light's x (or any component) flipped in lambert. The values are
    max(0, n . l) worked out by hand, not rendered with the function under test."""
    normals = torch.tensor(
        [[[[1.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.6, 0.0, 0.8]]]]
    )
    from_the_right = lambert(normals, light_from((1.0, 0.0, 0.0)))
    torch.testing.assert_close(from_the_right, torch.tensor([[[1.0, 0.0, 0.0, 0.0, 0.6]]]))
    from_above_front = lambert(normals, light_from((0.0, 0.6, 0.8)))
    torch.testing.assert_close(from_above_front, torch.tensor([[[0.0, 0.0, 0.6, 0.8, 0.64]]]))


def two_plane_crease(size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Normals of two planes meeting at a crease (they lie along one line: no 3-D direction
    can be told from them), each plane evenly lit, one brighter."""
    normals = torch.zeros(1, size, size, 3)
    normals[:, :, : size // 2] = torch.tensor([0.6, 0.0, 0.8])
    normals[:, :, size // 2 :] = torch.tensor([-0.6, 0.0, 0.8])
    image = torch.full((1, size, size, 3), 0.3)
    image[:, :, : size // 2] = 0.7
    return image, normals


def test_a_crease_tells_no_direction_so_its_confidence_is_zero():
    """Mutation caught: Estimate Light's confidence without its spread factor (the two levels
    are fitted exactly, so only the spread says the direction is unknown)."""
    image, normals = two_plane_crease()
    estimate = estimate_light(image, normals, torch.ones(1, 32, 32))
    assert float(estimate.explained[0]) > 0.9  # the fit itself is good
    assert float(estimate.confidence[0]) < 1e-3
