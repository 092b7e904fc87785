"""The subject inside a painted region: how wide the fade is, where a face mesh gives way, and
(with the face models) the person found inside a loose ellipse."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from relight_inpaint.lighting import faces
from relight_inpaint.lighting import subject as subject_module
from relight_inpaint.lighting.subject import (
    LOOSE_FADE,
    SKIN_WRAP,
    TIGHT_FADE,
    edge_fade,
    estimated_geometry,
    fade_share,
    outline_share,
    rounded_by_surface,
    soft_face_weight,
    stacked_relief,
)

from .test_shape_from_shading import notched


def disc(size: int = 96, radius: float = 30.0) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    centre = (size - 1) / 2
    return (((rows - centre) ** 2 + (cols - centre) ** 2) < radius**2)[None]


def test_only_an_object_with_parts_is_rounded_by_a_surface():
    """The shading correction's surface rounds: a figurine's silhouette (not convex), never a
    ball's (its dome is its shape) nor a person's (hair and clothes read as shape)."""
    ball = disc()
    core = torch.cat([ball, notched(ball), notched(ball)])
    assert rounded_by_surface(core, [False, False, True]).tolist() == [False, True, False]


def test_the_estimate_asks_for_the_rounds_once_from_the_full_size_silhouette(monkeypatch):
    """estimated_geometry decides, and the shading correction does what it is told."""
    asked = []
    real = subject_module.corrected_by_shading

    def spy(linear, normals, core, surface=None):
        asked.append(surface.tolist())
        return real(linear, normals, core, surface)

    monkeypatch.setattr(subject_module, "corrected_by_shading", spy)
    for region in (disc(), notched(disc())):
        image = torch.where(region[..., None], 0.6, 0.05).expand(-1, -1, -1, 3).contiguous()
        estimated_geometry(image, region, faces=False)
    assert asked == [[False], [True]]


def test_a_region_on_the_photos_own_outline_fades_narrowly_and_a_loose_one_widely():
    """A click selection follows the object's outline (a step there is the object's edge); a
    loose ellipse crosses smooth wall, where any step would show as an oval."""
    region = disc()
    on_black = torch.where(region[..., None], 0.7, 0.0).expand(-1, -1, -1, 3)
    on_wall = torch.linspace(0.3, 0.6, 96).view(1, 1, 96, 1).expand(1, 96, 96, 3)
    assert float(outline_share(on_black, region)[0]) > 0.95
    assert float(outline_share(on_wall, region)[0]) < 0.05
    tight, loose = fade_share(on_black, region)[0], fade_share(on_wall, region)[0]
    assert tight == pytest.approx(TIGHT_FADE, abs=0.02)
    assert loose == pytest.approx(LOOSE_FADE, abs=0.02)


def test_the_fade_is_zero_at_the_edge_and_one_deep_inside():
    region = disc()
    fade = edge_fade(region, [0.3])[0]
    inner_edge = region[0] & ~(-F.max_pool2d(-region.float()[None], 3, 1, 1)[0, 0] > 0.5)
    assert float(fade[inner_edge].max()) < 0.1
    assert float(fade[48, 48]) == pytest.approx(1.0)
    assert float(fade[~region[0]].abs().max()) == 0.0


def test_the_face_weight_is_zero_where_the_mesh_has_no_normals():
    """Outside the mesh the face normals are only the flat default: blending them in there drew
    a ring of flat normals around the face (a band across the forehead)."""
    mesh = disc(radius=25).float()[0]
    soft = soft_face_weight(mesh)
    assert float(soft[mesh < 0.5].max()) == 0.0
    assert float(soft[48, 48]) == pytest.approx(1.0)
    assert 0.0 < float(soft[48, 48 + 22]) < 1.0  # rising inside the mesh's edge


def faces_or_skip() -> None:
    reason = faces.faces_unavailable()
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"the face models must be installed under CI: {reason}")
        pytest.skip(reason)


def astronaut_with_a_loose_ellipse() -> tuple[torch.Tensor, torch.Tensor]:
    skimage_data = pytest.importorskip("skimage.data")
    photo = torch.from_numpy(skimage_data.astronaut().astype(np.float32) / 255)[None]
    rows, cols = np.mgrid[:512, :512]
    ellipse = ((cols - 250) / 95) ** 2 + ((rows - 125) / 120) ** 2 < 1
    return photo, torch.from_numpy(ellipse)[None]


def test_a_loose_ellipse_over_a_face_relights_the_person_not_the_wall():
    faces_or_skip()
    photo, region = astronaut_with_a_loose_ellipse()
    geometry = estimated_geometry(photo, region)
    assert "1 face meshed" in geometry.notes
    assert float(geometry.matte[0, 120, 250]) > 0.9  # the face
    assert float(geometry.reach[0, 40, 320]) < 0.05  # wall inside the ellipse, right of the hair
    assert float(geometry.wrap[0]) == pytest.approx(SKIN_WRAP)


def test_normals_change_smoothly_where_the_face_mesh_ends():
    """Around the mesh's edge (forehead, temples, jaw) the face blends into the head: a seam
    between the two (flat normals blended in past the mesh) drew a band of light there."""
    faces_or_skip()
    photo, region = astronaut_with_a_loose_ellipse()
    normals = estimated_geometry(photo, region).normals[0]
    weight = faces.face_geometry(photo[0]).weight
    region = ((weight > 0.02) & (weight < 0.98))[None]
    step_down = (normals[1:, :] * normals[:-1, :]).sum(-1).clamp(-1, 1).acos().rad2deg()
    step_right = (normals[:, 1:] * normals[:, :-1]).sum(-1).clamp(-1, 1).acos().rad2deg()
    inside = region[0, 1:, 1:] & region[0, :-1, :-1]
    worst = torch.maximum(step_down[:, 1:], step_right[1:, :])[inside]
    assert float(worst.quantile(0.99)) < 10.0


def test_a_batchs_reliefs_stack_with_nan_where_an_image_has_no_face():
    matte = torch.zeros(2, 4, 5)
    face = torch.full((4, 5), 3.0)
    relief = stacked_relief((None, face), matte)
    assert relief.shape == (2, 4, 5) and relief[0].isnan().all() and relief[1].eq(3.0).all()
    assert stacked_relief((None, None), matte) is None
