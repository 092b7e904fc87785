"""EstimateLight's fit: known lights on rendered scenes and spheres, and a confidence that
falls where the light cannot be told."""

from __future__ import annotations

import numpy as np
import torch

from relight_inpaint.conditioning.light import angles_from_direction, make_light
from relight_inpaint.conditioning.light_estimate import estimate_light
from relight_inpaint.conditioning.normals import estimate_normals
from relight_inpaint.conditioning.shading import shading_map
from relight_inpaint.training.render import render_sample

from .test_normals import disc


def angle(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    cosine = a @ b / np.linalg.norm(a) / np.linalg.norm(b)
    return float(np.degrees(np.arccos(np.clip(cosine, -1, 1))))


def lit_sphere(direction, albedo=(0.8, 0.6, 0.4), ambient=0.1, size=96):
    mask, normals = disc(size, size * 0.4)
    light = make_light(torch.tensor(direction, dtype=torch.float32), 0.7, ambient)
    image = shading_map(normals, light) * torch.tensor(albedo)
    return image.clamp(0, 1) * mask[..., None], mask, normals


def test_recovers_a_sphere_light_with_true_normals():
    image, mask, normals = lit_sphere((-0.5, 0.6, 0.62))
    estimate = estimate_light(image, normals, mask)
    assert angle(estimate.light.direction[0], (-0.5, 0.6, 0.62)) < 1.0
    assert float(estimate.confidence[0]) > 0.8
    ratio = estimate.light.ambient[0] / estimate.light.intensity[0]
    assert float(ratio) == __import__("pytest").approx(0.1 / 0.7, rel=0.05)


def test_recovers_the_sphere_light_from_the_silhouette_alone():
    image, mask, _ = lit_sphere((0.7, -0.3, 0.65))
    normals, _ = estimate_normals(mask)
    estimate = estimate_light(image, normals, mask)
    assert angle(estimate.light.direction[0], (0.7, -0.3, 0.65)) < 10.0


def test_rendered_scenes_with_known_light():
    """The pasted object's light (the renderer's light2) from its image and true normals."""
    errors = []
    for seed in range(20_000_000, 20_000_012):
        sample = render_sample(seed, size=128)
        if not sample["curved"]:
            continue
        target = torch.from_numpy((sample["target_mask"] > 0.5).astype(np.float32))[None]
        image = torch.from_numpy(sample["image_light2"])[None]
        normals = torch.from_numpy(sample["normals"])[None]
        estimate = estimate_light(image, normals, target)
        errors.append(angle(estimate.light.direction[0], sample["light2"]["direction"]))
    assert len(errors) >= 5
    assert np.median(errors) < 15.0


def test_confidence_falls_for_flat_tiny_and_featureless_regions():
    image, mask, normals = lit_sphere((0.3, 0.5, 0.8))
    good = float(estimate_light(image, normals, mask).confidence[0])
    flat_normals = torch.zeros_like(normals)
    flat_normals[..., 2] = 1.0
    flat = float(estimate_light(image, flat_normals, mask).confidence[0])
    tiny_mask = torch.zeros_like(mask)
    tiny_mask[:, 46:50, 46:50] = 1.0
    tiny = estimate_light(image, normals, tiny_mask)
    featureless = torch.full_like(image, 0.5)
    plain = float(estimate_light(featureless, normals, mask).confidence[0])
    assert good > 0.8
    assert flat < 0.2 and float(tiny.confidence[0]) == 0.0 and plain < 0.2
    assert len(tiny.summary()) > 0


def test_black_or_saturated_subject_gives_no_confidence():
    image, mask, normals = lit_sphere((0.3, 0.5, 0.8))
    for value in (0.0, 1.0):
        estimate = estimate_light(torch.full_like(image, value), normals, mask)
        assert float(estimate.confidence[0]) == 0.0
        _, elevation = angles_from_direction(estimate.light.direction[0])
        assert float(elevation) == 90.0  # the neutral frontal fallback, not a made-up light
