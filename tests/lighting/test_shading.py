"""Shading map, cast shadows and IC-Light's official ramp."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from relight_inpaint.lighting.light import Light, make_light
from relight_inpaint.lighting.shading import (
    cast_shadows,
    iclight_ramp,
    self_shadows,
    shading_map,
)


def light(xyz, intensity=1.0, ambient=0.0, color=(1.0, 1.0, 1.0)) -> Light:
    return make_light(
        torch.tensor(xyz, dtype=torch.float32), intensity, ambient, torch.tensor(color)
    )


def facing(*xyz) -> torch.Tensor:
    n = torch.tensor(xyz, dtype=torch.float32)
    return (n / n.norm()).reshape(1, 1, 1, 3).expand(1, 4, 4, 3)


def test_shading_is_ambient_plus_lambert_times_colour():
    out = shading_map(facing(0, 0, 1), light((1, 0, 1), 0.8, 0.2, (1.0, 0.5, 0.25)))
    level = 0.2 + 0.8 * (2**-0.5)
    assert torch.allclose(out[0, 0, 0], torch.tensor([1.0, 0.5, 0.25]) * level, atol=1e-6)


def test_surface_turned_away_gets_ambient_only():
    out = shading_map(facing(-1, 0, 0.1), light((1, 0, 0), 1.0, 0.3))
    assert torch.allclose(out, torch.full_like(out, 0.3))


def test_visibility_removes_the_direct_term():
    visibility = torch.zeros(1, 4, 4)
    out = shading_map(facing(0, 0, 1), light((0, 0, 1), 1.0, 0.1), visibility)
    assert torch.allclose(out, torch.full_like(out, 0.1))


def test_a_tower_shadows_the_ground_away_from_the_light():
    heights = torch.zeros(1, 64, 64)
    heights[:, 28:36, 28:36] = 40.0
    lit = cast_shadows(heights, light((1, 0, 0.5)))  # light from the right, 27 deg up
    assert lit[0, 32, 20] == 0.0  # left of the tower: in its shadow
    assert lit[0, 32, 45] == 1.0  # right of it: lit
    assert lit[0, 10, 20] == 1.0  # beside the shadow's path
    frontal = cast_shadows(heights, light((0, 0, 1)))
    assert frontal.min() == 1.0


@pytest.mark.parametrize(
    ("preset", "expect"),
    [
        ((-1, 0, 0), lambda w, h: np.tile(np.linspace(255, 0, w), (h, 1))),
        ((1, 0, 0), lambda w, h: np.tile(np.linspace(0, 255, w), (h, 1))),
        ((0, 1, 0), lambda w, h: np.tile(np.linspace(255, 0, h)[:, None], (1, w))),
        ((0, -1, 0), lambda w, h: np.tile(np.linspace(0, 255, h)[:, None], (1, w))),
    ],
)
def test_presets_match_the_official_demo_ramp(preset, expect):
    """gradio_demo.py: e.g. Left Light = np.linspace(255, 0, image_width) tiled; no ambient,
    and the full 0..255 range whatever the aspect ratio."""
    w, h = 96, 64
    ramp = iclight_ramp(light(preset, 1.0, 0.15), h, w)[0, ..., 0].numpy() * 255
    np.testing.assert_allclose(ramp, expect(w, h), atol=1e-3)


def test_diagonal_ramp_spans_corner_to_corner():
    ramp = iclight_ramp(light((-1, 1, 0)), 40, 60)[0, ..., 0]
    assert float(ramp[0, 0]) == pytest.approx(1.0)  # top-left, toward the light
    assert float(ramp[-1, -1]) == pytest.approx(0.0, abs=1e-6)


def test_frontal_ramp_is_uniform_and_colour_multiplies():
    ramp = iclight_ramp(light((0, 0, 1), color=(1.0, 0.5, 0.0)), 8, 8)
    assert torch.allclose(ramp[0, ..., 0], torch.ones(8, 8))
    assert torch.allclose(ramp[0, ..., 1], torch.full((8, 8), 0.5))


def test_a_tall_tower_far_along_the_ray_still_shadows_the_ground():
    """The march stops where every ray has risen above the highest occluder: a tower whose
    top the ray reaches only near the end of its reach must still cast its shadow."""
    heights = torch.zeros(1, 32, 200)
    heights[:, 12:20, 180:188] = 80.0  # 80 px high, from column 180
    lit = cast_shadows(heights, light((1, 0, 0.5)), max_length=1.0)  # rises 0.5 px per px
    assert lit[0, 16, 30] == 0.0  # the ray from column 30 meets the tower 75 px up, 150 px on
    assert lit[0, 16, 10] == 1.0  # from column 10 it is 85 px up there: over the tower


def test_the_march_stops_once_every_ray_is_above_the_highest_occluder(monkeypatch):
    from relight_inpaint.lighting import shading

    calls = []
    real = shading.F.grid_sample

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(shading.F, "grid_sample", counted)
    heights = torch.zeros(1, 64, 64)
    heights[:, 28:36, 28:36] = 4.0  # 4 px high: clear after 8 px at 27 degrees
    shading.march_shadows(heights, heights, light((1, 0, 0.5)), 64.0, 48)
    assert 0 < len(calls) <= 7  # steps of 64/48 px: those within 8 px


@pytest.mark.parametrize("clip", [True, False])
def test_one_lights_nearest_march_by_whole_pixel_shifts_equals_sampling_the_grid(clip):
    """One light for the batch, nearest samples: each step is compared on the shifted overlap
    in place. A batch of two lights takes grid_sample's path: the same answer for the first,
    at the image's edges too (clipped: off the image blocks nothing; else it is height 0)."""
    from relight_inpaint.lighting.shading import march_shadows

    generator = torch.Generator().manual_seed(0)
    occluder = torch.rand(1, 61, 80, generator=generator) * 30
    occluder[occluder < 28] = -1.0e4 if clip else -3.0
    receiver = torch.rand(1, 61, 80, generator=generator) * 5 - 1.0
    for xyz in [(0.7, 0.4, 0.5), (-0.3, -0.8, 0.4), (0.1, 0.9, 0.2)]:
        one = light(xyz)
        two = one.concat(light((xyz[1], -xyz[0], xyz[2])))
        shifted = march_shadows(occluder, receiver, one, 120.0, 64, sample="nearest", clip=clip)
        sampled = march_shadows(
            occluder.repeat(2, 1, 1),
            receiver.repeat(2, 1, 1),
            two,
            120.0,
            64,
            sample="nearest",
            clip=clip,
        )[:1]
        assert 100 < int(shifted.sum()) < shifted.numel() - 100
        assert torch.equal(shifted, sampled)


def nose_on_a_face(size: int = 60) -> torch.Tensor:
    """[1,H,W] a face-like relief (a flat cheek at 0 with a 12 px tall ridge down its middle)
    covering the central square only; NaN around it, where no mesh is."""
    relief = torch.full((1, size, size), float("nan"))
    relief[:, 10:50, 10:50] = 0.0
    relief[:, 15:45, 28:32] = 12.0
    return relief


def test_a_reliefs_ridge_shadows_the_cheek_on_the_side_away_from_the_light():
    visibility = self_shadows(nose_on_a_face(), light((-1, 0, 1)))  # from the left, 45 deg up
    assert visibility[0, 30, 33:40].eq(0).all()  # right of the ridge, within 12 px: shadowed
    assert visibility[0, 30, 12:28].eq(1).all()  # the lit side
    assert visibility[0, 30, 46:50].eq(1).all()  # beyond the shadow's length
    other = self_shadows(nose_on_a_face(), light((1, 0, 1)))
    assert other[0, 30, 20:27].eq(0).all() and other[0, 30, 33:40].eq(1).all()


def test_a_relief_casts_nothing_off_itself_nor_toward_a_light_from_behind():
    relief = nose_on_a_face()
    visibility = self_shadows(relief, light((-1, 0, 1)))
    assert visibility[relief.isnan()].eq(1).all()  # NaN: no mesh there, nothing to receive
    assert self_shadows(relief, light((-1, 0, -0.2))).eq(1).all()
    assert self_shadows(relief, light((0, 0, 1))).eq(1).all()  # from the viewer: none visible
    assert self_shadows(torch.full((1, 8, 8), float("nan")), light((1, 0, 1))).eq(1).all()
