"""Cast shadows: where they fall for a light, how dark, and finding an old one."""

from __future__ import annotations

from functools import partial

import torch

from relight_inpaint.conditioning.mask import grow_mask
from relight_inpaint.lighting.light import direction_from_angles, make_light
from relight_inpaint.lighting.shadows import (
    GUESSED_SHAPE_STRENGTH,
    cast_shadow,
    find_old_shadow,
    fit_relief,
    paint_cast_shadow,
    shadow_darkness,
    shadow_mask,
    shadow_mask_ticks,
    shadow_rays,
)


def disc(size=128, centre=(64, 40), radius=12):
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    inside = (rows - centre[0]) ** 2 + (cols - centre[1]) ** 2 <= radius**2
    return inside.float()[None]


def light(azimuth, elevation, ambient=0.2):
    return make_light(direction_from_angles(azimuth, elevation), 1.0, ambient)


def test_a_shadow_falls_away_from_the_light_and_lengthens_as_it_drops():
    subject = disc()
    from_left = light(180.0, 45.0)  # azimuth 180: light from the left (x < 0)
    shadow = cast_shadow(subject, from_left)
    assert shadow[0, :, :41].sum() == 0  # nothing on the lit side of the disc's centre
    assert shadow[0, :, 52:].sum() > 20
    low = cast_shadow(subject, light(180.0, 20.0))
    assert low.sum() > shadow.sum()
    assert cast_shadow(subject, light(0.0, 90.0)).sum() == 0  # from the viewer: none visible


def test_with_a_depth_map_a_raised_block_casts_its_height_over_tan_elevation():
    size = 160
    depth = torch.zeros(1, size, size)
    depth[:, 60:100, 40:60] = 1.0  # a block standing out of a flat wall
    subject = (depth > 0.5).float()
    relief = 20.0 / size  # the block is 20 px high
    shadow = cast_shadow(subject, light(0.0, 45.0), depth, relief)  # light from the right
    columns = torch.nonzero(shadow[0, 80] > 0.5).flatten()
    assert int(columns.max()) < 40 and int(columns.min()) >= 40 - 22  # about 20 px to the left


def test_fit_relief_finds_the_scale_of_the_shadows_in_the_photo():
    assert_relief_found(size=128, scale=1)


def assert_relief_found(size: int, scale: int) -> None:
    """Blocks standing out of a wall, their shadows rendered at a known relief: fit_relief must
    find it within 35 %."""
    depth = torch.zeros(1, size, size)
    for top, left in ((20, 20), (70, 80), (30, 90)):
        depth[:, top * scale : (top + 16) * scale, left * scale : (left + 12) * scale] = 1.0
    true_relief = 0.225
    lit = light(200.0, 35.0)
    heights = depth * true_relief * size
    visible = 1.0 - shadow_rays(heights, heights, lit, 2.0 * size)
    shading = 0.2 + 0.8 * visible * float(lit.direction[0, 2])
    image = shading[..., None].expand(-1, -1, -1, 3) * 0.8
    found = fit_relief(image, depth, torch.ones(1, size, size), lit)
    assert abs(found - true_relief) / true_relief < 0.35


def test_the_old_shadow_attached_to_the_object_is_found_not_a_dark_patch_elsewhere():
    subject = disc()
    image = torch.full((1, 128, 128, 3), 0.7)
    scene_light = light(180.0, 40.0)
    expected = cast_shadow(subject, scene_light) > 0.5
    image[expected] = 0.3
    image[:, 100:120, 5:25] = 0.25  # an unrelated dark patch
    found = find_old_shadow(image, subject, scene_light) > 0.5
    iou = (found & expected).sum() / (found | expected).sum()
    assert iou > 0.7
    assert found[0, 100:120, 5:25].sum() == 0


def test_shadow_mask_works_on_the_window_of_a_large_photo():
    size = 3000
    subject = torch.zeros(1, size, size)
    subject[:, 1500:1560, 1500:1540] = 1.0
    image = torch.full((1, size, size, 3), 0.6)
    found = shadow_mask(image, subject, light(180.0, 30.0), "relight")
    assert found.shape == subject.shape
    assert found[0, :, :1400].sum() == 0 and found[0, :, 1545:1800].sum() > 100


def test_painting_darkens_only_where_the_shadow_falls():
    image = torch.rand(1, 64, 64, 3, generator=torch.Generator().manual_seed(0))
    output = image.clone()
    lit = light(0.0, 60.0, ambient=0.25)
    darkness = float(shadow_darkness(lit)[0])
    assert 0.2 < darkness < 0.3
    shadow = torch.zeros(1, 64, 64)
    shadow[:, 10:20, 30:50] = 1.0 - darkness  # the share of light it takes away
    subject = torch.zeros(1, 64, 64)
    subject[:, 10:20, 30:35] = 1.0  # the subject itself is never darkened
    paint_cast_shadow(output, shadow, subject)
    assert torch.equal(output[shadow == 0], image[shadow == 0])
    assert torch.equal(output[:, 10:20, 30:35], image[:, 10:20, 30:35])
    assert torch.allclose(output[:, 10:20, 35:50], image[:, 10:20, 35:50] * darkness)


def test_a_relight_shadow_takes_the_darkness_of_the_photos_own_shadow():
    subject = disc(radius=20)
    scene_light = light(180.0, 40.0, ambient=0.5)
    image = torch.full((1, 128, 128, 3), 0.8)
    old = cast_shadow(subject, scene_light) > 0.5
    image[old] = 0.8 * 0.6  # the photo's shadows keep 60 % of the light
    wanted = light(90.0, 30.0, ambient=0.2)
    core = grow_mask((cast_shadow(subject, wanted) > 0.5).float(), -4) > 0.5
    assert core.sum() > 20
    half = GUESSED_SHAPE_STRENGTH  # no depth map: the silhouette's shadow is faint
    new = shadow_mask(image, subject, wanted, "relight", scene_light=scene_light)
    assert abs(float(new[core].median()) - 0.4 * half) < 0.06 * half
    by_light = shadow_mask(image, subject, wanted, "relight")
    expected = (1.0 - float(shadow_darkness(wanted)[0])) * half
    assert abs(float(by_light[core].median()) - expected) < 0.02


def test_where_the_photo_already_has_the_shadow_it_is_not_darkened_twice():
    subject = disc(radius=20)
    scene_light = light(180.0, 40.0, ambient=0.5)
    image = torch.full((1, 128, 128, 3), 0.8)
    old = cast_shadow(subject, scene_light) > 0.5
    image[old] = 0.8 * 0.6
    same = shadow_mask(image, subject, scene_light, "relight", scene_light=scene_light)
    core = grow_mask(old.float(), -4) > 0.5
    assert float(same[core].max()) < 0.05  # the light did not move: its shadow is already there


def test_fit_relief_finds_the_scale_on_a_photo_larger_than_it_works_at():
    """fit_relief works at FIT_SIDE px: the relief is a share of the side, so a 4x larger
    photo of the same scene gives the same answer."""
    assert_relief_found(size=512, scale=4)


def test_shadow_mask_ticks_its_progress_to_the_end_in_every_mode():
    subject = torch.cat([disc(), torch.zeros(1, 128, 128)])  # the second image has no subject
    image = torch.full((2, 128, 128, 3), 0.6)
    depth = subject.clone()
    lit = light(180.0, 30.0)
    for mode, given in (("relight", depth), ("relight", None), ("fill", depth), ("fill", None)):
        ticks: list[int] = []
        shadow_mask(image, subject, lit, mode, given, None, lit, partial(ticks.append, 1))
        assert len(ticks) == shadow_mask_ticks(2), (mode, given is None)
