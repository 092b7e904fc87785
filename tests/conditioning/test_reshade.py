"""Re-shading keeps the subject's colours under a white light and moves its shading."""

from __future__ import annotations

import numpy as np
import torch

from relight_inpaint.conditioning.light import make_light
from relight_inpaint.conditioning.light_estimate import estimate_light, luminance
from relight_inpaint.conditioning.reshade import keep_colours, reshade

from .test_light_estimate import angle, lit_sphere


def chromaticity(image: torch.Tensor) -> torch.Tensor:
    total = image.sum(-1, keepdim=True).clamp_min(1e-6)
    return (image / total)[..., :2]


def usable(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (mask > 0.5) & (image.amax(-1) < 0.98) & (image.amax(-1) > 0.03)


def test_white_light_keeps_the_colours_and_moves_the_light():
    image, mask, normals = lit_sphere((-0.7, 0.2, 0.68), albedo=(0.9, 0.3, 0.2))
    requested = make_light(torch.tensor([0.7, 0.2, 0.68]), 0.7, 0.1)
    out = reshade(image, mask, requested).image
    keep = usable(image, mask) & usable(out, mask)
    shift = (chromaticity(out) - chromaticity(image)).norm(dim=-1)[keep]
    assert float(shift.median()) < 1e-4
    fitted = estimate_light(out, normals, mask).light.direction[0]
    assert angle(fitted, (0.7, 0.2, 0.68)) < 15.0


def test_tinted_light_tints():
    image, mask, _ = lit_sphere((0.0, 0.0, 1.0), albedo=(0.6, 0.6, 0.6))
    warm = make_light(torch.tensor([0.0, 0.0, 1.0]), 0.7, 0.1, torch.tensor([1.0, 0.6, 0.3]))
    out = reshade(image, mask, warm).image
    inside = mask[0] > 0.5
    mean = out[0][inside].mean(0)
    assert mean[0] > mean[1] > mean[2]


def test_outside_the_mask_is_untouched():
    image, mask, _ = lit_sphere((0.3, 0.3, 0.9))
    image = image + 0.2 * (1 - mask[..., None])
    out = reshade(image, mask, make_light(torch.tensor([-1.0, 0.0, 0.3]))).image
    outside = mask[0] < 0.5
    assert torch.equal(out[0][outside], image[0][outside])


def test_unfittable_subject_is_taken_as_evenly_lit():
    """A flat grey subject shows no light to fit: no current light is invented; it is taken as
    evenly lit, and the requested shading is applied to it."""
    _, mask, normals = lit_sphere((0.3, 0.3, 0.9))
    flat = torch.full((1, 96, 96, 3), 0.4)
    light = make_light(torch.tensor([0.0, 0.0, 1.0]), 1.0, 0.15)
    out = reshade(flat, mask, light, normals=normals)
    assert float(out.current.confidence[0]) == 0.0
    expected = torch.where(mask[..., None] > 0.5, 0.4 * out.shading / 1.15, flat)
    np.testing.assert_allclose(out.image.numpy(), expected.numpy(), atol=1e-6)


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


def test_the_old_shadow_takes_the_lit_sides_albedo_not_its_brightened_noise():
    """A sphere lit from the left, its right half in near-black noisy shadow, relit from the
    right: the new lit side gets the well-lit side's colour, not noise brightened 10x or more."""
    image, mask, normals = lit_sphere((-1.0, 0.0, 0.2), albedo=(0.8, 0.5, 0.3), ambient=0.02)
    noise = torch.rand(image.shape, generator=torch.Generator().manual_seed(3)) * 0.03
    noisy = (image + noise * mask[..., None]).clamp(0, 1)
    out = reshade(noisy, mask, make_light(torch.tensor([1.0, 0.0, 0.2]), 1.0, 0.05), normals)
    right = (mask[0] > 0.5) & (normals[0, ..., 0] > 0.6)
    lit = out.image[0][right]
    assert float(lit.std(0).max()) < 0.08
    assert (
        float((chromaticity(lit).median(0).values - torch.tensor([0.5, 0.31])).abs().max()) < 0.04
    )
