"""Light: angle conventions, colours, the Light batch, gradient, light map and preview."""

from __future__ import annotations

import math

import pytest
import torch

from relight_inpaint.lighting.light import (
    LIGHT_MAP_CHANNELS,
    PRESET_DIRECTIONS,
    Light,
    angles_from_direction,
    direction_from_angles,
    light_gradient,
    light_map_channels,
    make_light,
    normalize_direction,
    parse_color,
    shade_sphere,
)


def light_from(xyz, **kwargs) -> Light:
    return make_light(torch.tensor(xyz, dtype=torch.float32), **kwargs)


# --- angles and directions -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("azimuth", "elevation", "expected"),
    [
        (0, 0, (1, 0, 0)),
        (90, 0, (0, 1, 0)),
        (180, 0, (-1, 0, 0)),
        (-90, 0, (0, -1, 0)),
        (0, 90, (0, 0, 1)),
        (123, 90, (0, 0, 1)),
        (0, -90, (0, 0, -1)),
        (45, 0, (math.sqrt(0.5), math.sqrt(0.5), 0)),
    ],
)
def test_direction_from_angles_follows_camera_frame(azimuth, elevation, expected):
    direction = direction_from_angles(azimuth, elevation)
    assert direction.dtype == torch.float32
    torch.testing.assert_close(direction, torch.tensor(expected, dtype=torch.float32))


def test_direction_from_angles_is_unit_length():
    direction = direction_from_angles(37.0, 21.0)
    assert direction.norm().item() == pytest.approx(1.0, abs=1e-6)


@pytest.mark.parametrize("elevation", [120.0, -90.5, float("nan")])
def test_elevation_out_of_range_is_rejected(elevation):
    with pytest.raises(ValueError, match=r"^elevation: expected -90\.\.90 degrees"):
        direction_from_angles(0.0, elevation)


def test_angles_round_trip_over_grid():
    azimuths = [a for a in range(-175, 181, 25)] + [180]
    elevations = [-80, -45, -10, 0, 10, 45, 80]
    for az in azimuths:
        for el in elevations:
            back_az, back_el = angles_from_direction(direction_from_angles(az, el))
            assert back_az.item() == pytest.approx(az, abs=1e-3), (az, el)
            assert back_el.item() == pytest.approx(el, abs=1e-3), (az, el)


def test_angles_from_direction_batched_and_unnormalised():
    directions = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 5.0], [-1.0, 0.0, 0.0], [0, -3.0, 3.0]])
    azimuth, elevation = angles_from_direction(directions)
    torch.testing.assert_close(azimuth[[0, 2, 3]], torch.tensor([0.0, 180.0, -90.0]))
    torch.testing.assert_close(elevation, torch.tensor([0.0, 90.0, 0.0, 45.0]))


def test_azimuth_of_negative_x_with_negative_zero_y_is_180():
    azimuth, _ = angles_from_direction(torch.tensor([-1.0, -0.0, 0.0]))
    assert azimuth.item() == pytest.approx(180.0)


def test_normalize_direction():
    torch.testing.assert_close(normalize_direction(0.0, 3.0, 4.0), torch.tensor([0.0, 0.6, 0.8]))
    huge = normalize_direction(0.0, 1.27e308, 1.27e308)  # finite, its length is not
    torch.testing.assert_close(huge, torch.tensor([0.0, 0.5**0.5, 0.5**0.5]))


def test_normalize_direction_rejects_zero_vector():
    with pytest.raises(ValueError, match=r"^light vector \(x, y, z\): .*all zero"):
        normalize_direction(0.0, 0.0, 1e-9)


def test_presets_match_ic_light():
    assert PRESET_DIRECTIONS["left"] == (-1.0, 0.0, 0.0)
    assert PRESET_DIRECTIONS["right"] == (1.0, 0.0, 0.0)
    assert PRESET_DIRECTIONS["top"] == (0.0, 1.0, 0.0)
    assert PRESET_DIRECTIONS["bottom"] == (0.0, -1.0, 0.0)
    assert PRESET_DIRECTIONS["front"] == (0.0, 0.0, 1.0)


# --- colours ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("#ff8000", (1.0, 128 / 255, 0.0)),
        ("#FF8000", (1.0, 128 / 255, 0.0)),
        ("#f80", (1.0, 136 / 255, 0.0)),
        (" 255, 0 ,51 ", (1.0, 0.0, 0.2)),
        ("1,1,1", (1 / 255, 1 / 255, 1 / 255)),
        ("1.0, 0.5, 0", (1.0, 0.5, 0.0)),
    ],
)
def test_parse_color(text, expected):
    torch.testing.assert_close(parse_color(text), torch.tensor(expected, dtype=torch.float32))


@pytest.mark.parametrize(
    "text", ["", "#ff80", "#gg0000", "red", "1,2", "256,0,0", "0.5,2,0", "-1,0,0"]
)
def test_parse_color_rejects_bad_text(text):
    with pytest.raises(ValueError, match=r"^color: expected #rrggbb"):
        parse_color(text)


# --- Light -----------------------------------------------------------------------------------


def test_make_light_normalises_and_fills_defaults():
    light = light_from((2.0, 0.0, 0.0))
    assert light.batch_size == 1
    torch.testing.assert_close(light.direction, torch.tensor([[1.0, 0.0, 0.0]]))
    torch.testing.assert_close(light.intensity, torch.tensor([1.0]))
    torch.testing.assert_close(light.ambient, torch.tensor([0.15]))
    torch.testing.assert_close(light.color, torch.ones(1, 3))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"intensity": -0.1}, "intensity"),
        ({"ambient": 1.5}, "ambient"),
        ({"ambient": -0.1}, "ambient"),
        ({"color": torch.tensor([1.0, 2.0, 0.0])}, "color"),
        ({"color": torch.ones(4)}, "color"),
    ],
)
def test_make_light_rejects_bad_values(kwargs, name):
    with pytest.raises(ValueError, match=rf"^{name}: expected"):
        light_from((1.0, 0.0, 0.0), **kwargs)


def test_make_light_rejects_zero_direction():
    with pytest.raises(ValueError, match=r"^light vector"):
        light_from((0.0, 0.0, 0.0))


def test_light_validates_shapes():
    with pytest.raises(ValueError, match=r"^light.intensity: expected shape \[2\]"):
        Light(torch.zeros(2, 3), torch.ones(3), torch.ones(2), torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"^light.direction"):
        Light(torch.zeros(2, 2), torch.ones(2), torch.ones(2), torch.ones(2, 3))


def test_concat_select_and_repeat():
    right = light_from((1.0, 0.0, 0.0), intensity=0.5)
    top = light_from((0.0, 1.0, 0.0), ambient=0.3)
    both = right.concat(top)
    assert both.batch_size == 2
    torch.testing.assert_close(both.direction, torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]))
    torch.testing.assert_close(both.intensity, torch.tensor([0.5, 1.0]))
    torch.testing.assert_close(both.ambient, torch.tensor([0.15, 0.3]))

    second = both.select(1)
    assert second.batch_size == 1
    torch.testing.assert_close(second.direction, top.direction)
    torch.testing.assert_close(both.select(-2).intensity, right.intensity)
    with pytest.raises(ValueError, match=r"^index:"):
        both.select(2)

    repeated = right.repeat_to(3)
    assert repeated.batch_size == 3
    torch.testing.assert_close(repeated.direction, right.direction.repeat(3, 1))
    torch.testing.assert_close(repeated.intensity, torch.tensor([0.5, 0.5, 0.5]))
    assert both.repeat_to(2) is both
    with pytest.raises(ValueError, match=r"^light: batch of 2 lights, expected 1 or 3"):
        both.repeat_to(3)


# --- gradient and light map ------------------------------------------------------------------


def test_right_light_gradient_matches_ic_light_preset():
    gradient = light_gradient(light_from((1.0, 0.0, 0.0), ambient=0.0), 8, 16)
    assert gradient.shape == (1, 8, 16, 3)
    torch.testing.assert_close(gradient[0, :, 0], torch.zeros(8, 3))
    torch.testing.assert_close(gradient[0, :, -1], torch.ones(8, 3))
    row = gradient[0, 3, :, 0]
    assert bool((row[1:] > row[:-1]).all()), "brightness must rise left to right"
    # Every row is the same for horizontal light.
    torch.testing.assert_close(gradient[0], gradient[0, :1].expand(8, -1, -1))


def test_left_light_is_the_mirror_of_right_light():
    right = light_gradient(light_from((1.0, 0.0, 0.0)), 6, 10)
    left = light_gradient(light_from((-1.0, 0.0, 0.0)), 6, 10)
    torch.testing.assert_close(left, right.flip(2))


def test_top_light_brightens_the_top_row():
    gradient = light_gradient(light_from((0.0, 1.0, 0.0), ambient=0.0), 16, 16)
    top, bottom = gradient[0, 0, :, 0], gradient[0, -1, :, 0]
    torch.testing.assert_close(top, torch.ones(16))
    torch.testing.assert_close(bottom, torch.zeros(16))


def test_gradient_is_isotropic_on_wide_images():
    # Wide image: u spans -1..1, v only -0.5..0.5, so a top light stays in 0.25..0.75.
    gradient = light_gradient(light_from((0.0, 1.0, 0.0), ambient=0.0), 9, 18)
    assert gradient[0, 0, 0, 0].item() == pytest.approx(0.75)
    assert gradient[0, -1, 0, 0].item() == pytest.approx(0.25)
    assert gradient[0, 4, 0, 0].item() == pytest.approx(0.5)


def test_frontal_light_is_uniform_bright():
    gradient = light_gradient(light_from((0.0, 0.0, 1.0), ambient=0.0), 7, 5)
    torch.testing.assert_close(gradient, torch.ones(1, 7, 5, 3))


def test_gradient_uses_intensity_ambient_and_colour():
    light = light_from(
        (0.0, 0.0, 1.0), intensity=0.5, ambient=0.2, color=torch.tensor([1.0, 0.5, 0.0])
    )
    gradient = light_gradient(light, 4, 4)
    expected = torch.tensor([0.7, 0.35, 0.0]).expand(1, 4, 4, 3)
    torch.testing.assert_close(gradient, expected)


def test_gradient_of_a_light_batch_is_per_light():
    lights = light_from((1.0, 0.0, 0.0)).concat(light_from((-1.0, 0.0, 0.0)))
    gradient = light_gradient(lights, 4, 8)
    assert gradient.shape == (2, 4, 8, 3)
    torch.testing.assert_close(gradient[0], light_gradient(lights.select(0), 4, 8)[0])
    torch.testing.assert_close(gradient[1], gradient[0].flip(1))


def test_light_map_channels():
    light = light_from(
        (0.0, 0.6, 0.8), intensity=2.0, ambient=0.1, color=torch.tensor([1.0, 0.5, 0.25])
    )
    channels = light_map_channels(light, 5, 4)
    assert LIGHT_MAP_CHANNELS == 9
    assert channels.shape == (1, LIGHT_MAP_CHANNELS, 5, 4)
    constants = [0.0, 0.6, 0.8, 2.0, 0.1, 1.0, 0.5, 0.25]
    for index, value in enumerate(constants, start=1):
        torch.testing.assert_close(channels[0, index], torch.full((5, 4), value))
    # Luminance = clamped gradient × intensity: top row is 0.5(1 + 0.6) + 0.4 = 1.2 → 1 → 2.
    luminance = channels[0, 0]
    torch.testing.assert_close(luminance[0], torch.full((4,), 2.0))
    assert luminance.max().item() == pytest.approx(2.0)
    bottom = (0.5 * (1 - 0.6) + 0.4) * 2.0
    torch.testing.assert_close(luminance[-1], torch.full((4,), bottom))


# --- preview ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("azimuth", "elevation"), [(0, 30), (90, 30), (200, 45), (-60, 10)])
def test_sphere_brightest_pixel_lies_toward_the_light(azimuth, elevation):
    direction = direction_from_angles(azimuth, elevation)
    size = 64
    # Dim enough that nothing clamps, so the maximum is unique.
    sphere = shade_sphere(make_light(direction, intensity=0.6, ambient=0.0), size)
    luminance = sphere[0].mean(-1)
    row, col = divmod(int(luminance.argmax()), size)
    u = (col + 0.5) / size * 2 - 1
    v = 1 - (row + 0.5) / size * 2
    on_screen = torch.tensor([u, v])
    expected = direction[:2] / direction[:2].norm()
    assert torch.dot(on_screen / on_screen.norm(), expected).item() > 0.95


def test_sphere_background_and_shadow():
    sphere = shade_sphere(light_from((1.0, 0.0, 0.0), ambient=0.0), 32)
    torch.testing.assert_close(sphere[0, 0, 0], torch.full((3,), 0.1))
    torch.testing.assert_close(sphere[0, 16, 1], torch.zeros(3))  # left limb is unlit
    assert sphere[0, 16, 28].min().item() > 0.5


def test_frontal_sphere_is_symmetric_and_peaks_in_the_centre():
    sphere = shade_sphere(light_from((0.0, 0.0, 1.0)), 33)[0]
    torch.testing.assert_close(sphere, sphere.flip(1))
    torch.testing.assert_close(sphere, sphere.flip(0))
    assert sphere[16, 16].min().item() == pytest.approx(1.0)  # clamped, with specular


def test_light_preview_puts_sphere_beside_iclight_ramp():
    from relight_inpaint.lighting.shading import iclight_ramp, light_preview

    light = light_from((0.0, 1.0, 0.0)).concat(light_from((1.0, 0.0, 0.0)))
    preview = light_preview(light, size=32)
    assert preview.shape == (2, 32, 64, 3)
    torch.testing.assert_close(preview[:, :, :32], shade_sphere(light, 32))
    torch.testing.assert_close(preview[:, :, 32:], iclight_ramp(light, 32, 32))
    assert float(preview.min()) >= 0.0 and float(preview.max()) <= 1.0
