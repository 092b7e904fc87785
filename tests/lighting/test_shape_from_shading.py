"""Shape from shading: the photo's shading under its fitted light corrects the prior's normals."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from relight_inpaint.lighting import subject as subject_module
from relight_inpaint.lighting.exposure import to_srgb
from relight_inpaint.lighting.light import Light
from relight_inpaint.lighting.light_estimate import LightEstimate
from relight_inpaint.lighting.normals import angular_error_degrees, unit_normals
from relight_inpaint.lighting.shape_from_shading import (
    MIN_TILT,
    corrected_by_shading,
    shading_corrected,
    turned_to,
)
from relight_inpaint.lighting.subject import estimated_geometry

LIGHT = F.normalize(torch.tensor([[0.6, 0.3, 0.75]]), dim=-1)
AMBIENT = 0.1


def flat_ellipsoid(size: int = 96, radius: float = 36.0, depth: float = 0.5):
    """A disc mask [1,H,W] and the normals [1,H,W,3] of a half-ellipsoid `depth` as deep as it
    is wide: flatter than the silhouette's dome, which the shading has to tell."""
    centre = (size - 1) / 2
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    x = (cols - centre) / radius
    y = (centre - rows) / radius
    inside = x**2 + y**2 < 1.0
    z = depth * (1.0 - x**2 - y**2).clamp_min(1e-4).sqrt()
    # the gradient of z: normals (-dz/dx, -dz/dy, 1)
    normals = torch.stack([depth**2 * x, depth**2 * y, z], dim=-1)
    normals = torch.where(inside[..., None], normals, torch.tensor([0.0, 0.0, 1.0]))
    return inside[None], unit_normals(normals.float())[None]


def lit(normals: torch.Tensor, albedo: float = 0.7) -> torch.Tensor:
    """[1,H,W] linear luminance of a Lambertian surface under LIGHT with AMBIENT."""
    cosine = (normals * LIGHT[:, None, None]).sum(-1).clamp_min(0.0)
    return albedo * (AMBIENT + (1 - AMBIENT) * cosine)


def estimate() -> LightEstimate:
    light = Light(LIGHT, torch.tensor([1 - AMBIENT]), torch.tensor([AMBIENT]), torch.ones(1, 3))
    return LightEstimate(light, torch.ones(1), torch.ones(1), torch.ones(1))


def test_a_turned_normal_makes_the_asked_angle_and_keeps_its_side_of_the_light():
    generator = torch.Generator().manual_seed(0)
    prior = F.normalize(torch.randn(1, 16, 16, 3, generator=generator), dim=-1)
    prior[..., 2] = prior[..., 2].abs()
    cosine = torch.rand(1, 16, 16, generator=generator) * 2 - 1
    turned = turned_to(prior, LIGHT, cosine)

    def across(n):
        return n - (n * LIGHT[:, None, None]).sum(-1, keepdim=True) * LIGHT

    has_side = across(prior).norm(dim=-1) > MIN_TILT  # a prior on the light has no side
    assert int(has_side.sum()) > 200
    made = (turned * LIGHT[:, None, None]).sum(-1)
    assert torch.allclose(made[has_side], cosine[has_side], atol=1e-4)
    same_side = (F.normalize(across(turned), dim=-1) * F.normalize(across(prior), dim=-1)).sum(-1)
    assert bool((same_side[has_side] > 0.999).all())
    assert torch.equal(turned[~has_side], prior[~has_side])


def test_the_shading_brings_a_domed_prior_to_a_flatter_shape():
    region, truth = flat_ellipsoid()
    _, dome = flat_ellipsoid(depth=1.0)
    corrected = shading_corrected(lit(truth), dome, region, estimate(), torch.ones(1))
    before = float(angular_error_degrees(dome, truth, region.float())[0])
    after = float(angular_error_degrees(corrected, truth, region.float())[0])
    assert after < 0.9 * before, (before, after)


def notched(region: torch.Tensor) -> torch.Tensor:
    """The region without its upper-right quarter (a silhouette with parts: not convex)."""
    size = region.shape[-1]
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    return region & ~((rows < size // 2) & (cols >= size // 2))


def test_on_an_object_the_correction_alternating_with_a_surface_finds_more_of_the_shape():
    """A flatter object than its silhouette's dome, lit from the side, its silhouette notched
    (not convex): one correction by the shading turns each normal only toward or away from the
    light; alternated with the surface nearest the normals (objects: surface True) it also turns
    them around the light, as the surface's other slopes say (16.5 -> 14.8 degrees; 15.8 ->
    11.0 on the whole disc, which is convex and gets no rounds)."""
    disc, truth = flat_ellipsoid(size=128, radius=48.0, depth=0.5)
    _, dome = flat_ellipsoid(size=128, radius=48.0, depth=1.0)
    region = notched(disc)
    linear = lit(truth)[..., None].expand(1, 128, 128, 3).contiguous()
    once, trust = corrected_by_shading(linear, dome, region)
    rounds, rounds_trust = corrected_by_shading(linear, dome, region, torch.tensor([True]))
    error_once = float(angular_error_degrees(once, truth, region.float())[0])
    error_rounds = float(angular_error_degrees(rounds, truth, region.float())[0])
    assert error_rounds < 0.95 * error_once, (error_once, error_rounds)
    assert float(rounds_trust[0]) >= float(trust[0]) > 0.5
    people, _ = corrected_by_shading(linear, dome, region, torch.tensor([False]))
    assert torch.equal(people, once)


def test_an_untrusted_light_leaves_the_prior_as_it_is():
    region, truth = flat_ellipsoid()
    _, dome = flat_ellipsoid(depth=1.0)
    corrected = shading_corrected(lit(truth), dome, region, estimate(), torch.zeros(1))
    assert torch.allclose(corrected, dome, atol=1e-5)


def test_a_pixel_in_shadow_turns_away_from_the_light_never_toward_it():
    region, truth = flat_ellipsoid()
    _, dome = flat_ellipsoid(depth=1.0)
    luma = lit(truth)
    luma[:, 40:56, 40:56] = 0.005  # a black patch where the prior faces the light
    corrected = shading_corrected(luma, dome, region, estimate(), torch.ones(1))

    def facing(normals):
        return (normals * LIGHT[:, None, None]).sum(-1)

    patch = (slice(None), slice(44, 52), slice(44, 52))
    assert float(facing(corrected)[patch].mean()) < 0.5 * float(facing(dome)[patch].mean())
    assert float(facing(corrected)[patch].min()) > -0.05  # to the terminator, not past it
    away = region & (facing(dome) < -0.1) & (facing(truth) < -0.1)
    assert int(away.sum()) > 20
    assert float((facing(corrected) - facing(dome))[away].abs().max()) < 0.05


def test_the_subjects_estimated_normals_follow_the_photos_shading(monkeypatch):
    """The wiring: Estimate Normals and the re-shading get the corrected shape."""
    region, truth = flat_ellipsoid()
    luma = lit(truth)
    image = to_srgb(luma[..., None].expand(-1, -1, -1, 3))
    geometry = estimated_geometry(image, region, faces=False)
    corrected = geometry.normals
    assert subject_module.SHADING_NOTE in geometry.notes  # Estimate Normals says so
    monkeypatch.setattr(subject_module, "SHADING_CORRECTION", False)
    geometry = estimated_geometry(image, region, faces=False)
    plain = geometry.normals
    assert subject_module.SHADING_NOTE not in geometry.notes
    mask = region.float()
    assert float(angular_error_degrees(corrected, truth, mask)[0]) < 0.97 * float(
        angular_error_degrees(plain, truth, mask)[0]
    )
