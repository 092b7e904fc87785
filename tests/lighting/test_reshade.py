"""Re-shading keeps the subject's colours under a white light and moves its shading."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from relight_inpaint.lighting.exposure import to_linear, to_srgb
from relight_inpaint.lighting.light import direction_from_angles, make_light
from relight_inpaint.lighting.light_estimate import estimate_light, luminance
from relight_inpaint.lighting.reshade import (
    EXPOSURE_RANGE,
    MIN_FILL,
    SELF_SHADOW_NOTE,
    colourfulness,
    keep_colours,
    reshade,
    skin_shadow,
    well_lit_level,
)
from relight_inpaint.lighting.shading import self_shadows

from .test_light_estimate import angle, lit_sphere
from .test_subject import astronaut_with_a_loose_ellipse, faces_or_skip


def chromaticity(image: torch.Tensor) -> torch.Tensor:
    total = image.sum(-1, keepdim=True).clamp_min(1e-6)
    return (image / total)[..., :2]


def usable(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (mask > 0.5) & (image.amax(-1) < 0.98) & (image.amax(-1) > 0.03)


def photo_of_sphere(direction, albedo=(0.8, 0.6, 0.4), ambient=0.1):
    """A lit sphere as a camera gives it: linear light, sRGB-encoded."""
    linear, mask, normals = lit_sphere(direction, albedo, ambient)
    return to_srgb(linear), mask, normals


def lightness(image: torch.Tensor) -> torch.Tensor:
    """CIELAB L* [H,W] of an sRGB image [1,H,W,3]."""
    y = luminance(to_linear(image))[0]
    f = torch.where(
        y > (6 / 29) ** 3, y.clamp_min(1e-9) ** (1 / 3), y / (3 * (6 / 29) ** 2) + 4 / 29
    )
    return 116 * f - 16


def mean_luma(image: torch.Tensor, mask: torch.Tensor) -> float:
    return float(luminance(to_linear(image))[mask > 0.5].mean())


def test_white_light_keeps_the_colours_and_moves_the_light():
    image, mask, normals = photo_of_sphere((-0.7, 0.2, 0.68), albedo=(0.9, 0.3, 0.2))
    requested = make_light(torch.tensor([0.7, 0.2, 0.68]), 1.0, 0.1)
    out = reshade(image, mask, requested, normals).image
    keep = usable(image, mask) & usable(out, mask)
    shift = (chromaticity(to_linear(out)) - chromaticity(to_linear(image))).norm(dim=-1)[keep]
    assert float(shift.median()) < 1e-4
    fitted = estimate_light(to_linear(out), normals, mask).light.direction[0]
    assert angle(fitted, (0.7, 0.2, 0.68)) < 15.0


def test_the_side_facing_the_light_brightens_with_the_estimated_shape():
    """No normals given: the flattened silhouette still follows the light. The half facing it
    is brighter than when the light comes from the other side, by a margin."""
    image, mask, normals = photo_of_sphere((0.0, 0.3, 0.95))
    right = (mask > 0.5) & (normals[..., 0] > 0.3)
    left = (mask > 0.5) & (normals[..., 0] < -0.3)

    def right_to_left(azimuth: float) -> float:
        out = reshade(image, mask, make_light(direction_from_angles(azimuth, 30.0))).image
        return mean_luma(out, right) / mean_luma(out, left)

    assert right_to_left(0.0) / right_to_left(180.0) > 1.5


def test_exposure_follows_the_light_only_within_the_range_and_intensity_is_relative():
    """A light moved to the side changes which half is bright, and how bright the subject is
    only within EXPOSURE_RANGE (the first relights kept 38 % of a portrait's brightness; held
    at exactly 1, a pasted object kept the brightness of the light it came from): the light
    kept where it is keeps it, moved to the side darkens a sphere no further than the range's
    low end; intensity 1.5 asks for 1.5x."""
    image, mask, _ = photo_of_sphere((0.0, 0.2, 0.98), albedo=(0.3, 0.25, 0.2))
    low, high = EXPOSURE_RANGE

    def exposure(azimuth: float, elevation: float, intensity: float = 1.0) -> float:
        light = make_light(direction_from_angles(azimuth, elevation), intensity, 0.15)
        return mean_luma(reshade(image, mask, light).image, mask) / mean_luma(image, mask)

    assert exposure(90.0, 78.0) == pytest.approx(1.0, abs=0.05)  # about where it was
    for azimuth in (0.0, 90.0, 180.0):
        assert low - 0.02 <= exposure(azimuth, 10.0) <= high + 0.02
    assert exposure(0.0, 10.0) == pytest.approx(low, abs=0.02)  # a sphere's would be ~1/3
    brighter = reshade(image, mask, make_light(direction_from_angles(0.0, 30.0), 1.5))
    same = reshade(image, mask, make_light(direction_from_angles(0.0, 30.0), 1.0))
    core = brighter.subject.reach > 0.999  # the change fades out toward the region's edge
    assert mean_luma(brighter.image, core) / mean_luma(same.image, core) == pytest.approx(
        1.5, abs=0.05
    )


def test_the_far_side_keeps_a_fill():
    """Lit from the left, the right half is not black: it keeps more than MIN_FILL of the
    light it had (a room is never dark on the far side)."""
    image, mask, normals = photo_of_sphere((0.0, 0.0, 1.0))
    out = reshade(image, mask, make_light(direction_from_angles(180.0, 30.0)), normals).image
    far = (mask[0] > 0.5) & (normals[0, ..., 0] > 0.5)
    kept = luminance(to_linear(out))[0][far] / luminance(to_linear(image))[0][far]
    assert float(kept.quantile(0.05)) > MIN_FILL


def test_the_change_fades_out_at_the_regions_edge():
    """A loose region over a subject and the wall behind it: no step at the region's edge (the
    first relights drew a dark oval there): between 4-px bands inside and outside the edge the
    lightness changes by less than 2.5 L* (about what the eye just notices)."""
    wall = torch.linspace(0.3, 0.7, 128).view(1, 1, 128, 1).expand(1, 128, 128, 3).clone()
    sphere, disc_mask, _ = photo_of_sphere((0.3, 0.3, 0.9))
    subject = torch.zeros(1, 128, 128)
    subject[:, 16:112, 16:112] = disc_mask
    image = wall.clone()
    image[:, 16:112, 16:112] = torch.where(
        disc_mask[..., None] > 0.5, sphere, wall[:, 16:112, 16:112]
    )
    rows, cols = torch.meshgrid(torch.arange(128), torch.arange(128), indexing="ij")
    region = (((rows - 63.5) ** 2 + (cols - 63.5) ** 2) < 60**2).float()[None]
    out = reshade(image, region, make_light(direction_from_angles(180.0, 30.0))).image
    inner = region[0] - (-F.max_pool2d(-region[None], 9, 1, 4))[0, 0]  # 4 px inside the edge
    outer = F.max_pool2d(region[None], 9, 1, 4)[0, 0] - region[0]  # 4 px outside
    step = lightness(out) - lightness(image)
    sector = ((torch.atan2(rows - 63.5, cols - 63.5) + torch.pi) / (2 * torch.pi) * 8).long() % 8
    for k in range(8):  # per sector: one side brightened and the other darkened must not cancel
        inside, outside = (inner > 0.5) & (sector == k), (outer > 0.5) & (sector == k)
        assert abs(float(step[inside].mean() - step[outside].mean())) < 2.5
    assert float((out - image).abs()[0][subject[0] > 0.5].mean()) > 0.02  # the subject did change


def test_tinted_light_tints():
    image, mask, _ = photo_of_sphere((0.0, 0.0, 1.0), albedo=(0.6, 0.6, 0.6))
    warm = make_light(torch.tensor([0.0, 0.0, 1.0]), 0.7, 0.1, torch.tensor([1.0, 0.6, 0.3]))
    out = reshade(image, mask, warm).image
    inside = mask[0] > 0.5
    mean = out[0][inside].mean(0)
    assert mean[0] > mean[1] > mean[2]


def test_outside_the_mask_is_untouched():
    image, mask, _ = photo_of_sphere((0.3, 0.3, 0.9))
    image = image + 0.2 * (1 - mask[..., None])
    out = reshade(image, mask, make_light(torch.tensor([-1.0, 0.0, 0.3]))).image
    outside = mask[0] < 0.5
    assert torch.equal(out[0][outside], image[0][outside])


def test_unfittable_subject_is_taken_as_evenly_lit():
    """A flat grey subject shows no light to fit: no current light is invented; the requested
    light's side brightens, the other darkens, the mean stays."""
    _, mask, normals = lit_sphere((0.3, 0.3, 0.9))
    flat = torch.full((1, 96, 96, 3), 0.4)
    out = reshade(flat, mask, make_light(direction_from_angles(0.0, 20.0)), normals=normals)
    assert float(out.current.confidence[0]) == 0.0
    right = (mask > 0.5) & (normals[..., 0] > 0.5)
    left = (mask > 0.5) & (normals[..., 0] < -0.5)
    assert mean_luma(out.image, right) > mean_luma(flat, right) > mean_luma(out.image, left)
    assert mean_luma(out.image, mask) / mean_luma(flat, mask) == pytest.approx(1.0, abs=0.02)


def test_keep_colours_takes_the_references_chromaticity_and_the_answers_luminance():
    generator = torch.Generator().manual_seed(5)
    reference = torch.rand(1, 16, 16, 3, generator=generator) * 0.5 + 0.2
    answer = torch.rand(1, 16, 16, 3, generator=generator) * 0.6  # other colours, other light
    kept = keep_colours(answer, reference)
    region = torch.ones(1, 16, 16)
    assert torch.allclose(
        chromaticity(kept)[usable(kept, region)],
        chromaticity(reference)[usable(kept, region)],
        atol=1e-5,
    )
    unclipped = kept.amax(-1) < 1.0
    assert torch.allclose(luminance(kept)[unclipped], luminance(answer)[unclipped], atol=1e-5)
    black = keep_colours(answer, torch.zeros_like(reference))
    assert torch.equal(black, answer)  # no colour to keep: the answer stays


def test_keep_colours_with_detail_takes_the_references_detail_and_the_answers_brightness():
    """A refiner that smooths (here: a flat answer) gets the subject's texture back, at the
    answer's brightness; without detail_sigma the texture stays lost."""
    generator = torch.Generator().manual_seed(6)
    texture = 1.0 + 0.3 * torch.sign(torch.randn(1, 32, 32, 1, generator=generator))
    reference = torch.tensor([0.5, 0.4, 0.3]) * texture  # a textured subject
    answer = torch.full((1, 32, 32, 3), 0.25)  # smooth, half as bright
    detailed = keep_colours(answer, reference, detail_sigma=1.0)
    flat = keep_colours(answer, reference)
    inner = (slice(None), slice(4, -4), slice(4, -4))
    assert luminance(flat)[inner].std() < 1e-4
    correlation = torch.corrcoef(
        torch.stack([luminance(detailed)[inner].flatten(), texture[inner][..., 0].flatten()])
    )[0, 1]
    assert correlation > 0.9
    assert abs(luminance(detailed)[inner].mean() - luminance(answer)[inner].mean()) < 0.02


def test_an_old_shadow_takes_the_lit_sides_albedo_not_its_brightened_noise():
    """A sphere lit from the left, its right half in near-black noisy shadow, relit from the
    right: the new lit side gets the well-lit side's colour, not noise brightened 10x or more
    (beyond MAX_GAIN the pixel's own colour gives way to the spread albedo)."""
    image, mask, normals = photo_of_sphere((-1.0, 0.0, 0.2), albedo=(0.8, 0.5, 0.3), ambient=0.02)
    noise = torch.rand(image.shape, generator=torch.Generator().manual_seed(3)) * 0.03
    noisy = (image + noise * mask[..., None]).clamp(0, 1)
    out = reshade(noisy, mask, make_light(torch.tensor([1.0, 0.0, 0.2]), 1.0, 0.05), normals)
    inside_the_fade = out.subject.reach[0] > 0.99  # at the rim the photo is kept (next test)
    right = (mask[0] > 0.5) & (normals[0, ..., 0] > 0.6) & inside_the_fade
    lit = to_linear(out.image)[0][right]
    assert float(lit.std(0).max()) < 0.08
    albedo = chromaticity(torch.tensor([0.8, 0.5, 0.3]))
    assert float((chromaticity(lit).median(0).values - albedo).abs().max()) < 0.04
    left = (mask[0] > 0.5) & (normals[0, ..., 0] < -0.6)
    before = luminance(to_linear(noisy))[0][left].median()
    assert float(luminance(lit).median() / before) > 0.7  # as bright as the old lit side


def test_an_old_shadow_brought_up_keeps_its_texture_and_the_regions_edge_its_photo():
    """A face in a dark room lit from one side, relit from the other, with a loose region whose
    edge crosses the old shadow: the shadow's skin texture stays (it was filled with a flat,
    plaster-like albedo), and at the region's edge the photo is kept (the fill had drawn the
    region's outline: an oval)."""
    linear, mask, normals = lit_sphere((-1.0, 0.0, 0.2), (0.8, 0.5, 0.3), ambient=0.05, size=256)
    rows, cols = torch.meshgrid(torch.arange(256.0), torch.arange(256.0), indexing="ij")
    texture = 1.0 + 0.2 * torch.sign(torch.sin(cols / 2.0) * torch.sin(rows / 2.0))
    textured = to_srgb(linear * texture[None, ..., None])
    loose = ((rows - 128) ** 2 + (cols - 150) ** 2 < 90**2).float()[None] * mask
    out = reshade(textured, loose, make_light(torch.tensor([1.0, 0.0, 0.2]), 1.0, 0.05), normals)
    old_shadow = (loose[0] > 0.5) & (normals[0, ..., 0] > 0.5) & (out.subject.reach[0] > 0.99)
    brought_up = luminance(to_linear(out.image))[0]
    high, low = brought_up[old_shadow & (texture > 1)], brought_up[old_shadow & (texture < 1)]
    edge = (loose[0] > 0.5) & (out.subject.reach[0] < 0.05) & (normals[0, ..., 0] > 0.3)
    step = (to_linear(out.image) - to_linear(textured))[0][edge].abs().max()
    assert float(high.median() / low.median()) > 1.3  # the texture's 1.2 / 0.8
    assert edge.any()
    assert float(step) < 0.02


def test_skins_shadow_keeps_more_red_and_objects_stay_grey():
    """Light scattered under skin reddens a real shadow: on skin a darkening ratio keeps more
    red than blue; a brightening one, and any ratio on an object, stays grey."""
    ratio = torch.tensor([[[0.5, 2.0]]])
    skin = skin_shadow(ratio, torch.tensor([0.4]))[0, 0]
    assert skin[0, 0] > skin[0, 1] > skin[0, 2]  # darkened: red kept most
    assert torch.equal(skin[1], torch.full((3,), 2.0))
    grey = skin_shadow(ratio, torch.tensor([0.0]))[0, 0]
    assert torch.equal(grey[0], torch.full((3,), 0.5))


def test_a_tiny_subject_and_an_empty_region_relight_without_harm():
    """A subject under 32 px is relit (no face is looked for in it); an empty mask changes
    nothing and says nothing could be read."""
    image, _, _ = photo_of_sphere((0.3, 0.3, 0.9))
    tiny = torch.zeros(1, 96, 96)
    tiny[:, 40:52, 40:52] = 1.0
    out = reshade(image, tiny, make_light(direction_from_angles(0.0, 30.0)))
    assert torch.isfinite(out.image).all()
    assert mean_luma(out.image, tiny) / mean_luma(image, tiny) == pytest.approx(1.0, abs=0.05)
    empty = reshade(image, torch.zeros(1, 96, 96), make_light(direction_from_angles(0.0, 30.0)))
    assert torch.equal(empty.image, image)
    assert any("no light could be read" in note for note in empty.notes)


def test_a_grey_photos_shadows_stay_grey_on_skin():
    """Skin's warm shadow follows the photo's colour: a grey photo (Extended Yale B) is not
    tinted brown where it darkens, a colour one is."""
    ratio = torch.tensor([[[0.5, 2.0]]])
    grey_photo = torch.full((1, 1, 2, 3), 0.4)
    colour_photo = torch.tensor([0.6, 0.32, 0.21]).expand(1, 1, 2, 3)
    core = torch.ones(1, 1, 2, dtype=torch.bool)
    skin = torch.tensor([0.4])
    assert float(colourfulness(grey_photo, core)[0]) == 0.0
    assert float(colourfulness(colour_photo, core)[0]) == 1.0
    grey = skin_shadow(ratio, skin, colourfulness(grey_photo, core))[0, 0]
    assert torch.allclose(grey[0], torch.full((3,), 0.5))
    warm = skin_shadow(ratio, skin, colourfulness(colour_photo, core))[0, 0]
    assert warm[0, 0] > warm[0, 1] > warm[0, 2]


def test_the_face_meshs_nose_shades_the_far_cheek_under_a_side_light():
    """Relit from the side, a real face's nose and brows cast shadows on it (the look of a
    side-lit portrait); the face mesh is geometry enough to draw them, on the face only."""
    faces_or_skip()
    photo, region = astronaut_with_a_loose_ellipse()
    light = make_light(direction_from_angles(180.0, 25.0), 1.0, 0.1)  # low, from the left
    shaded = reshade(photo, region, light)
    plain = reshade(photo, region, light, shadows=False)
    relief = shaded.subject.relief
    assert relief is not None and SELF_SHADOW_NOTE in shaded.notes
    nose_tip = int(relief[0].nan_to_num(float("-inf")).argmax()) % relief.shape[2]
    shadowed = (self_shadows(relief, light)[0] == 0) & region[0]
    assert int(shadowed.sum()) > 200
    cols = shadowed.nonzero()[:, 1].float()
    assert float(cols.median()) > nose_tip + 10  # on the cheek away from the light
    change = lightness(shaded.image) - lightness(plain.image)
    assert float(change[shadowed].mean()) < -3.0
    off_mesh = relief[0].isnan() & region[0]  # the hair and the wall: only the exposure moves
    assert float(change[off_mesh].abs().median()) < 1.0


def test_an_old_shadows_fill_has_no_patches_where_the_normals_have_facets():
    """A sphere whose normals come in facets (a coarse mesh), lit from the left into a dark
    shadow and relit from the right: the filled old shadow is smooth. The fill once followed the
    raw ratio's facets, and push-pull's spread of the well-lit albedo, both of which cut it into
    patches with edges (grey blotches on a half-face brought up from a dark room)."""
    linear, mask, smooth_normals = lit_sphere((-1.0, 0.0, 0.2), (0.8, 0.5, 0.3), 0.02, size=160)
    facets = torch.round(smooth_normals * 4.0) / 4.0
    facets = F.normalize(facets + 1e-3 * smooth_normals, dim=-1)
    image = to_srgb(linear)
    out = reshade(image, mask, make_light(torch.tensor([1.0, 0.0, 0.2]), 1.0, 0.05), facets)
    old_shadow = (mask[0] > 0.5) & (smooth_normals[0, ..., 0] > 0.4) & (out.subject.reach[0] > 0.99)
    assert int(old_shadow.sum()) > 500
    # the fill's level: the relit photo over the requested light's (faceted) shading
    shading = luminance(out.shading)[0].clamp_min(1e-4)
    log_luma = (luminance(to_linear(out.image))[0].clamp_min(1e-4) / shading).log()
    across = (log_luma[:, 1:] - log_luma[:, :-1]).abs()[old_shadow[:, 1:] & old_shadow[:, :-1]]
    down = (log_luma[1:] - log_luma[:-1]).abs()[old_shadow[1:] & old_shadow[:-1]]
    steps = torch.cat([across, down])
    assert float(steps.max()) < 0.15  # the raw ratio's facets gave 0.26 here


def log_steps(image: torch.Tensor, where: torch.Tensor) -> float:
    """The largest log step between neighbouring pixels [B,H,W,C] both `where` [B,H,W]."""
    log = image.clamp_min(1e-4).log()
    across = (log[:, :, 1:] - log[:, :, :-1]).abs().amax(-1)[where[:, :, 1:] & where[:, :, :-1]]
    down = (log[:, 1:] - log[:, :-1]).abs().amax(-1)[where[:, 1:] & where[:, :-1]]
    return float(torch.cat([across, down]).max())


def test_the_well_lit_level_is_smooth_where_the_well_lit_pixels_are_patchy():
    """The level an old shadow is filled to, spread from well-lit pixels that come in blocks of
    different albedo with holes between them: smooth everywhere in the region, where push-pull's
    spread (the fill before) kept each block's edge."""
    generator = torch.Generator().manual_seed(0)
    rows, cols = torch.meshgrid(torch.arange(128.0), torch.arange(128.0), indexing="ij")
    region = (((rows - 64) ** 2 + (cols - 64) ** 2) < 60**2)[None]
    blocks = torch.rand(1, 16, 16, 1, generator=generator) * 0.6 + 0.3
    albedo = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2).expand(1, 128, 128, 3)
    holes = torch.rand(1, 128, 128, generator=generator) > 0.3
    well_lit = region & (cols < 50)[None] & holes
    level = well_lit_level(albedo.contiguous(), well_lit, region)
    assert log_steps(albedo, region) > 0.5
    assert log_steps(level, region) < 0.05  # push-pull's spread: 1.0
