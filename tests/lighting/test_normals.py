"""Normals: map conventions, the unit-vector check, depth to normals, silhouette inflation."""

from __future__ import annotations

import math

import pytest
import torch

from relight_inpaint.lighting.normals import (
    angular_error_degrees,
    check_normal_map,
    decode_normal_map,
    dequantize_depth,
    encode_normal_map,
    estimate_normals,
    heights_from_depth,
    integrable_normals,
    normals_from_heights,
    prepare_normal_map,
    unit_normals,
)


def disc(size: int = 96, radius: float = 36.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A disc mask [1,H,W] and the true normals of the sphere it outlines [1,H,W,3]."""
    centre = (size - 1) / 2
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    x = (cols - centre) / radius
    y = (centre - rows) / radius
    inside = x**2 + y**2 < 1.0
    z = (1.0 - x**2 - y**2).clamp_min(0.0).sqrt()
    normals = torch.stack([x, y, z], dim=-1).float()
    return inside.float()[None], unit_normals(normals)[None]


def test_encode_decode_round_trip_y_up():
    n = unit_normals(torch.randn(2, 8, 8, 3))
    back = decode_normal_map(encode_normal_map(n))
    assert torch.allclose(back, n, atol=1e-6)


def test_y_down_stores_minus_y_in_green():
    up = torch.tensor([0.0, 1.0, 0.0]).reshape(1, 1, 1, 3)
    assert encode_normal_map(up, "y_up")[0, 0, 0, 1] == 1.0
    assert encode_normal_map(up, "y_down")[0, 0, 0, 1] == 0.0
    image = encode_normal_map(up, "y_down")
    assert torch.allclose(decode_normal_map(image, "y_down"), up)


def test_unknown_convention_is_refused():
    with pytest.raises(ValueError, match="normal_convention"):
        decode_normal_map(torch.zeros(1, 2, 2, 3), "z_up")


def test_check_accepts_a_normal_map_with_black_background():
    mask, normals = disc()
    image = encode_normal_map(normals) * mask[..., None]  # estimators leave the background black
    check_normal_map(image, torch.ones_like(mask))


def test_check_refuses_a_photo_or_depth_map():
    mask, _ = disc()
    grey = torch.full((1, 96, 96, 3), 0.5)  # decodes to zero vectors
    with pytest.raises(ValueError, match="normal_map: inside the mask"):
        check_normal_map(grey, mask)


def test_prepare_resizes_a_map_of_another_size_and_renormalises():
    mask, normals = disc(96)
    small = encode_normal_map(
        torch.nn.functional.interpolate(
            normals.movedim(-1, 1), size=(48, 48), mode="bilinear"
        ).movedim(1, -1)
    )
    out = prepare_normal_map(small, mask, 96, 96)
    assert out.shape == (1, 96, 96, 3)
    assert torch.allclose(out.norm(dim=-1), torch.ones(1, 96, 96), atol=1e-4)
    assert float(angular_error_degrees(out, normals, mask)[0]) < 3.0


def test_normals_from_heights_tilt_toward_the_slope():
    cols = torch.arange(32).float()
    ramp = cols.expand(32, 32)[None]  # rises to the right: the surface faces left
    n = normals_from_heights(ramp)
    assert torch.allclose(n[0, 16, 16], torch.tensor([-1.0, 0.0, 1.0]) / math.sqrt(2), atol=1e-5)
    rows_rise = torch.arange(32).float()[:, None].expand(32, 32)[None]  # rises downward: faces up
    assert normals_from_heights(rows_rise)[0, 16, 16, 1] > 0.5


def test_depth_white_is_near():
    depth = torch.linspace(0, 1, 64).expand(64, 64)[None]  # nearer to the right
    n = normals_from_heights(heights_from_depth(depth))
    assert n[0, 32, 32, 0] < -0.1  # faces left, away from the rising side


def test_inflation_of_a_disc_is_a_sphere():
    mask, truth = disc(128, 50.0)
    normals, heights = estimate_normals(mask)
    assert float(angular_error_degrees(normals, truth, mask)[0]) < 8.0
    assert heights.max() > 40.0  # about the radius: a sphere, not a pancake
    assert torch.all(normals[mask[..., None].expand_as(normals) < 0.5].reshape(-1, 3)[:, 2] == 1.0)


def test_inflation_of_a_large_mask_is_solved_small_and_upsampled():
    mask, truth = disc(600, 250.0)
    normals, _ = estimate_normals(mask)
    assert normals.shape == (1, 600, 600, 3)
    assert float(angular_error_degrees(normals, truth, mask)[0]) < 8.0


def test_subject_cut_by_the_frame_continues_past_it():
    mask = torch.zeros(1, 64, 64)
    mask[:, 16:48, 32:] = 1.0  # a bar leaving through the right edge
    normals, _ = estimate_normals(mask)
    assert abs(float(normals[0, 32, 62, 0])) < 0.2  # no contour at the frame: faces the viewer


def test_an_8_bit_depth_map_gives_smooth_normals_not_rings():
    """A sphere's depth saved as an 8-bit image is a staircase of contour rings; its normals
    must still be the sphere's, and a real depth edge must stay sharp."""
    mask, truth = disc(128, 50.0)
    # near = white; the sphere spans 39% of the map's depth range, as a subject in a scene does
    z = truth[..., 2] * mask * 50.0 / 128
    eight_bit = (z * 255).round() / 255
    raw = normals_from_heights(eight_bit * 128)
    smooth = normals_from_heights(heights_from_depth(eight_bit, relief=1.0))
    inner = mask * (truth[..., 2] > 0.5)  # away from the silhouette's depth edge
    assert float(angular_error_degrees(raw, truth, inner)[0]) > 4.0
    assert float(angular_error_degrees(smooth, truth, inner)[0]) < 1.5
    step = torch.zeros(1, 32, 32)
    step[:, :, 16:] = 1.0
    assert float(dequantize_depth(step)[0, 16, 10]) < 0.01  # 6 px from the edge: untouched


def slopes_curl(normals: torch.Tensor, where: torch.Tensor) -> float:
    """Mean |d(slope along columns)/d row - d(slope along rows)/d column| where `where`: zero
    for the normals of any height field."""
    slope_col = -normals[..., 0] / normals[..., 2]
    slope_row = normals[..., 1] / normals[..., 2]
    curl = (slope_col[:, 1:, :-1] - slope_col[:, :-1, :-1]) - (
        slope_row[:, :-1, 1:] - slope_row[:, :-1, :-1]
    )
    return float(curl.abs()[where[:, :-1, :-1] & where[:, 1:, 1:]].mean())


def test_a_surfaces_normals_stay_and_a_twisted_field_becomes_a_surfaces():
    """A sphere's normals are a surface's: kept (within 2 degrees where they face the viewer
    more than min_facing). The same normals turned 30 degrees about the view axis are no
    surface's (their slopes curl): projected, they curl 5x less (what is left, the sphere's
    own normals show too: differences of differences) and come back toward the
    sphere, the one surface whose slopes they keep half of."""
    mask, sphere = disc(size=128, radius=48.0)
    inside = mask > 0.5
    facing = inside & (sphere[..., 2] > 0.45)
    kept = integrable_normals(sphere, inside)
    assert float(angular_error_degrees(kept, sphere, facing.float())[0]) < 2.0
    angle = math.radians(30.0)
    turn = torch.tensor(
        [
            [math.cos(angle), -math.sin(angle), 0.0],
            [math.sin(angle), math.cos(angle), 0.0],
            [0, 0, 1],
        ]
    )
    twisted = sphere @ turn.T
    projected = integrable_normals(twisted, inside)
    assert slopes_curl(projected, facing) < 0.2 * slopes_curl(twisted, facing)
    before = float(angular_error_degrees(twisted, sphere, facing.float())[0])
    after = float(angular_error_degrees(projected, sphere, facing.float())[0])
    assert after < 0.5 * before
    assert torch.equal(projected[~inside], twisted[~inside])  # outside: as given
