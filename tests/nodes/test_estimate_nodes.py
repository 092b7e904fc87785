"""Estimate Normals and Estimate Light called directly, as ComfyUI would."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from relight_inpaint.lighting.light import make_light
from relight_inpaint.lighting.normals import decode_normal_map, encode_normal_map
from relight_inpaint.lighting.shading import shading_map
from relight_inpaint.nodes.estimate_light import EstimateLight
from relight_inpaint.nodes.estimate_normals import EstimateNormals


def sphere_scene(size=80, direction=(-0.6, 0.5, 0.62)):
    centre, radius = (size - 1) / 2, size * 0.4
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    x, y = (cols - centre) / radius, (centre - rows) / radius
    inside = (x**2 + y**2 < 1).float()
    normals = torch.stack([x, y, (1 - x**2 - y**2).clamp_min(0).sqrt()], -1)
    normals = torch.nn.functional.normalize(normals, dim=-1)[None].float()
    light = make_light(torch.tensor(direction), 0.8, 0.1)
    image = (shading_map(normals, light) * 0.7 * inside[None, ..., None]).clamp(0, 1)
    return image, inside[None], normals


def angle(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(
        np.degrees(np.arccos(np.clip(a @ b / np.linalg.norm(a) / np.linalg.norm(b), -1, 1)))
    )


def test_estimate_normals_of_a_disc_face_outward_and_follow_the_convention():
    image, mask, _ = sphere_scene()
    up, subject = EstimateNormals.execute(image, mask).result
    down, _ = EstimateNormals.execute(image, mask, normal_convention="y_down").result
    assert up.shape == image.shape and 0 <= float(up.min()) and float(up.max()) <= 1
    top = decode_normal_map(up)[0, 12, 40]
    assert top[1] > 0.4  # near the top of the outline the surface faces up (flattened: 45 deg)
    assert torch.equal(subject > 0.5, mask > 0.5)  # no person here: the subject is the mask
    assert torch.allclose(decode_normal_map(down, "y_down"), decode_normal_map(up), atol=1e-6)


def test_estimate_normals_resizes_the_mask_and_checks_the_batch():
    image, mask, _ = sphere_scene()
    out, _ = EstimateNormals.execute(image, mask[:, ::2, ::2]).result
    assert out.shape == image.shape
    with pytest.raises(ValueError, match="^mask: 3 masks for 1 images"):
        EstimateNormals.execute(image, mask.expand(3, -1, -1))


def test_estimate_light_inside_the_mask_finds_the_subjects_light():
    image, mask, normals = sphere_scene()
    light, preview, confidence, info = EstimateLight.execute(
        image, mask, "inside_mask", normal_map=encode_normal_map(normals)
    ).result
    assert angle(light.direction[0], (-0.6, 0.5, 0.62)) < 5.0
    assert confidence > 0.7 and "azimuth" in info
    assert preview.shape[0] == 1
    own, *_ = EstimateLight.execute(image, mask, "inside_mask").result  # silhouette normals
    assert angle(own.direction[0], (-0.6, 0.5, 0.62)) < 12.0


def test_estimate_light_of_the_scene_needs_its_geometry():
    image, mask, normals = sphere_scene()
    hole = torch.zeros_like(mask)
    hole[:, 30:50, 30:50] = 1.0  # a pasted object in the middle of the lit sphere
    _, _, confidence, info = EstimateLight.execute(image, hole, "outside_mask").result
    assert confidence == 0.0 and "low confidence" in info
    light, _, confidence, _ = EstimateLight.execute(
        image, hole, "outside_mask", normal_map=encode_normal_map(normals) * mask[..., None]
    ).result
    assert confidence > 0.5
    assert angle(light.direction[0], (-0.6, 0.5, 0.62)) < 5.0


def test_estimate_light_refuses_what_is_not_a_normal_map():
    image, mask, _ = sphere_scene()
    with pytest.raises(ValueError, match="^normal_map: inside the mask"):
        EstimateLight.execute(image, mask, "inside_mask", normal_map=torch.full_like(image, 0.5))


def progress_seen(run) -> list[tuple[int, int]]:
    """(value, total) of every update of ComfyUI's progress bar while `run()` runs."""
    import comfy.utils

    seen = []

    def hook(value, total, preview, node_id=None):
        seen.append((value, total))

    comfy.utils.set_progress_bar_global_hook(hook)
    try:
        run()
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    return seen


def test_the_scene_light_moves_comfyuis_progress_bar_to_the_end():
    image, mask, normals = sphere_scene()
    depth = torch.rand(1, *mask.shape[1:], 3, generator=torch.Generator().manual_seed(0))
    seen = progress_seen(
        lambda: EstimateLight.execute(image, 1.0 - mask, "outside_mask", depth_map=depth)
    )
    assert len(seen) >= 2 and seen[-1][0] == seen[-1][1]


def test_estimate_normals_moves_comfyuis_progress_bar_per_stage_to_the_end():
    """Finding a face and meshing it takes seconds at 1 MP on a CPU: the bar moves per stage
    (faces, subject, normals) for each image of the batch."""
    image, mask, _ = sphere_scene()
    batch = torch.cat([image, image.flip(2)])
    seen = progress_seen(lambda: EstimateNormals.execute(batch, mask))
    assert [value for value, _ in seen] == list(range(1, 7))
    assert seen[-1][1] == 6
