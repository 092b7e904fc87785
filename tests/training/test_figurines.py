"""The shape prior's figurines: analytic normals, framing, determinism."""

from __future__ import annotations

import math

import torch

from relight_inpaint.training.figurines import figurine, render, rotation


def _angle_degrees(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.rad2deg(torch.acos((a * b).sum(-1).clamp(-1, 1)))


def test_a_sphere_renders_its_own_normals_from_any_view():
    """A unit sphere at the origin, framed with margin 1.2: each pixel's normal is (x, y,
    sqrt(1 - x^2 - y^2)) of where its ray meets the sphere, whatever the view."""
    size = 65
    mask, normals = render([((0, 0, 0), (1, 1, 1), (0.4, 0.2, 0.1))], 0.7, 0.3, size, 1.2)
    coords = torch.linspace(-1.2, 1.2, size)
    y, x = torch.meshgrid(-coords, coords, indexing="ij")
    inside = x**2 + y**2 < 0.95
    truth = torch.stack([x, y, (1 - x**2 - y**2).clamp_min(0).sqrt()], -1)
    assert bool(mask[inside].all()) and not bool(mask[x**2 + y**2 > 1.05].any())
    assert float(_angle_degrees(normals[inside], truth[inside]).max()) < 1.0


def test_the_nearest_of_two_ellipsoids_is_seen():
    """A small sphere in front of a large one: inside the small one's disc its normals are its
    own (facing the viewer at its centre), not the large one's."""
    parts = [((0, 0, 0), (1, 1, 1), (0, 0, 0)), ((0.5, 0, 1.0), (0.3, 0.3, 0.3), (0, 0, 0))]
    mask, normals = render(parts, 0.0, 0.0, 121, 1.0)
    coords = torch.linspace(-1.0, 1.0, 121)
    col = int((coords - 0.5).abs().argmin())
    row = int(coords.abs().argmin())
    assert bool(mask[row, col])
    assert float(normals[row, col, 2]) > 0.99  # the small sphere's front, not the big one's side


def test_a_rotation_about_the_view_axis_turns_an_ellipsoid():
    long_side = [((0, 0, 0), (1.0, 0.3, 0.3), (0, 0, math.pi / 2))]
    mask, _ = render(long_side, 0.0, 0.0, 64, 1.1)
    rows, cols = torch.nonzero(mask, as_tuple=True)
    assert int(rows.max() - rows.min()) > 2 * int(cols.max() - cols.min())
    assert torch.allclose(
        rotation(2, math.pi / 2) @ torch.tensor([1.0, 0, 0]), torch.tensor([0.0, 1, 0]), atol=1e-6
    )


def test_figurines_are_unit_normals_on_a_subject_and_repeat_by_seed():
    first = figurine(64, torch.Generator().manual_seed(5))
    again = figurine(64, torch.Generator().manual_seed(5))
    mask, normals, grey = first
    assert mask.dtype == torch.bool and 0.02 < float(mask.float().mean()) < 0.9
    assert torch.allclose(normals.norm(dim=-1), torch.ones(64, 64), atol=1e-4)
    assert bool((normals[mask][:, 2] > -1e-3).all())  # a visible surface faces the viewer
    assert grey.shape == (64, 64) and float(grey[mask].mean()) > float(grey[~mask].mean())
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
