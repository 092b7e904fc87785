"""Faces: rasterising a mesh's normals (synthetic meshes, no models needed), and the face mesh
and person matte on a real photo (mediapipe's models: requirements-faces.txt).

The model tests skip when the models are not installed, except under CI, where a missing
install must fail rather than pass unnoticed."""

from __future__ import annotations

import math
import os
import sys

import numpy as np
import pytest
import torch

from relight_inpaint.lighting import faces, tflite_models
from relight_inpaint.lighting.faces import (
    FALLBACK,
    face_geometry,
    faces_unavailable,
    person_matte,
    rasterize_mesh,
)


def angles_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = (a * b).sum(axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def hemisphere(
    centre: tuple[float, float], radius: float, rings: int = 24, segments: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """A triangulated hemisphere facing the viewer, seen orthographically: vertices (x, y down,
    depth toward the viewer) in pixels, and consistently wound triangles."""
    cx, cy = centre
    points = [(cx, cy, radius)]
    for ring in range(1, rings + 1):
        theta = math.radians(89.5) * ring / rings
        for segment in range(segments):
            phi = 2 * math.pi * segment / segments
            r = radius * math.sin(theta)
            points.append(
                (cx + r * math.cos(phi), cy - r * math.sin(phi), radius * math.cos(theta))
            )
    triangles = []
    for segment in range(segments):
        triangles.append((0, 1 + segment, 1 + (segment + 1) % segments))
    for ring in range(1, rings):
        inner, outer = 1 + (ring - 1) * segments, 1 + ring * segments
        for s in range(segments):
            t = (s + 1) % segments
            triangles.append((inner + s, outer + s, outer + t))
            triangles.append((inner + s, outer + t, inner + t))
    return np.asarray(points), np.asarray(triangles)


def sphere_truth(size: int, centre: tuple[float, float], radius: float):
    """The analytic normals (pack frame) at pixel centres, and the disc they cover."""
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float64)
    x = (cols + 0.5 - centre[0]) / radius
    y = (centre[1] - (rows + 0.5)) / radius
    disc = x**2 + y**2 < 1.0
    z = np.sqrt(np.clip(1.0 - x**2 - y**2, 0.0, None))
    return np.stack([x, y, z], axis=-1), disc


# --- rasterising, without the models ------------------------------------------------------------


def test_hemisphere_normals_and_coverage_match_the_sphere():
    size, centre, radius = 128, (61.3, 66.8), 48.0
    vertices, triangles = hemisphere(centre, radius)
    normals, coverage = rasterize_mesh(vertices, triangles, size, size)
    truth, disc = sphere_truth(size, centre, radius)
    assert normals.shape == (size, size, 3) and coverage.shape == (size, size)
    covered = coverage.numpy() > 0.5
    iou = (covered & disc).sum() / (covered | disc).sum()
    assert iou > 0.98
    inner = covered & (np.linalg.norm(truth[..., :2], axis=-1) < 0.9)
    errors = angles_degrees(normals.numpy()[inner], truth[inner])
    assert np.median(errors) < 2.0 and np.percentile(errors, 95) < 4.0
    assert np.allclose(np.linalg.norm(normals.numpy(), axis=-1), 1.0, atol=1e-4)
    assert np.allclose(normals.numpy()[~covered], (0.0, 0.0, 1.0))


def test_normals_are_smooth_across_the_edges_of_a_coarse_mesh():
    # a dozen facets per ring: flat shading would jump ~15 degrees at each edge
    vertices, triangles = hemisphere((50.0, 50.0), 40.0, rings=6, segments=12)
    normals, coverage = rasterize_mesh(vertices, triangles, 100, 100)
    rows, cols = np.mgrid[0:100, 0:100]
    inner = np.hypot(rows + 0.5 - 50.0, cols + 0.5 - 50.0) < 32.0
    n = normals.numpy()
    jumps = np.concatenate(
        [
            angles_degrees(n[:, 1:], n[:, :-1])[inner[:, 1:]],
            angles_degrees(n[1:], n[:-1])[inner[1:]],
        ]
    )
    assert jumps.max() < 4.0


def test_the_mesh_winding_does_not_matter_and_tensors_are_accepted():
    vertices, triangles = hemisphere((40.0, 40.0), 30.0)
    one, coverage_one = rasterize_mesh(vertices, triangles, 80, 80)
    other, coverage_other = rasterize_mesh(
        torch.from_numpy(vertices), torch.from_numpy(triangles[:, ::-1].copy()), 80, 80
    )
    assert torch.equal(coverage_one, coverage_other)
    assert torch.allclose(one, other, atol=1e-5)


def test_a_tilted_plane_has_its_exact_normal():
    # depth = 0.3 x + 0.5 y_up, so the normal is (-0.3, -0.5, 1) normalised (y up).
    grid = np.stack(np.meshgrid(np.linspace(10, 90, 9), np.linspace(20, 70, 6)), axis=-1)
    xy = grid.reshape(-1, 2)
    depth = 0.3 * xy[:, 0] + 0.5 * (100.0 - xy[:, 1])
    vertices = np.concatenate([xy, depth[:, None]], axis=1)
    triangles = []
    for row in range(5):
        for col in range(8):
            a = row * 9 + col
            triangles += [(a, a + 1, a + 10), (a, a + 10, a + 9)]
    normals, coverage = rasterize_mesh(vertices, np.asarray(triangles), 100, 100)
    expected = np.array([-0.3, -0.5, 1.0]) / np.linalg.norm([-0.3, -0.5, 1.0])
    covered = coverage.numpy() > 0.5
    assert covered.sum() == 80 * 50  # pixel centres 10.5 .. 89.5 by 20.5 .. 69.5
    assert angles_degrees(normals.numpy()[covered], expected).max() < 0.01


@pytest.mark.parametrize("chunk", [None, 1], ids=["one-pass", "a-pass-per-triangle"])
def test_the_nearer_of_two_overlapping_triangles_wins_whatever_their_order(chunk, monkeypatch):
    if chunk is not None:  # huge faces are rasterised in several passes over one z-buffer
        monkeypatch.setattr(faces, "_CHUNK", chunk)

    def tilted(depth: float, slope: float, shift: float) -> np.ndarray:
        corners = np.array([[10.0, 10.0], [90.0, 10.0], [50.0, 90.0]]) + [shift, 0.0]
        return np.concatenate([corners, (depth + slope * corners[:, :1])], axis=1)

    far, near = tilted(10.0, 0.5, 0.0), tilted(200.0, -0.5, 5.0)
    expected_near = np.array([0.5, 0.0, 1.0]) / math.hypot(0.5, 1.0)  # depth falls to the right
    for order in ((far, near), (near, far)):
        vertices = np.concatenate(order)
        normals, coverage = rasterize_mesh(vertices, np.array([[0, 1, 2], [3, 4, 5]]), 100, 100)
        assert coverage[40, 50] == 1.0
        assert angles_degrees(normals[40, 50].numpy(), expected_near) < 0.01
        # where only the far one is (left of the near one's edge), the far one shows
        assert normals[12, 12, 0] < 0


def test_several_passes_give_what_one_pass_gives(monkeypatch):
    vertices, triangles = hemisphere((40.0, 40.0), 30.0)
    one, coverage_one = rasterize_mesh(vertices, triangles, 80, 80)
    monkeypatch.setattr(faces, "_CHUNK", 500)
    several, coverage_several = rasterize_mesh(vertices, triangles, 80, 80)
    assert torch.equal(coverage_one, coverage_several) and torch.equal(one, several)


def test_a_mesh_off_the_image_or_cut_by_its_border_does_not_break():
    vertices, triangles = hemisphere((-100.0, 50.0), 30.0)
    normals, coverage = rasterize_mesh(vertices, triangles, 64, 64)
    assert coverage.sum() == 0 and torch.allclose(normals, torch.tensor([0.0, 0.0, 1.0]))
    vertices, triangles = hemisphere((5.0, 60.0), 30.0)
    normals, coverage = rasterize_mesh(vertices, triangles, 64, 64)
    assert 0 < coverage.sum() < math.pi * 30**2 and torch.isfinite(normals).all()


def test_without_the_models_the_fallback_is_said(monkeypatch):
    monkeypatch.setattr(tflite_models, "unavailable", lambda: "no interpreter here")
    photo = torch.rand(40, 50, 3)
    geometry = face_geometry(photo)
    assert geometry.count == 0
    assert geometry.message.startswith(
        "face mesh unavailable (pip install --no-deps -r requirements-faces.txt)"
    )
    assert "no interpreter here" in faces_unavailable()
    assert torch.equal(geometry.normals, torch.tensor([0.0, 0.0, 1.0]).expand(40, 50, 3))
    assert geometry.weight.shape == (40, 50) and geometry.weight.sum() == 0
    assert person_matte(photo) is None


# --- the models, on a real photo ----------------------------------------------------------------


@pytest.fixture(scope="module")
def models():
    problem = faces_unavailable()
    if problem is not None:
        if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
            pytest.fail(f"under CI the face models must be installed: {problem}")
        pytest.skip(problem)


@pytest.fixture(scope="module")
def astronaut(models) -> np.ndarray:
    """scikit-image's astronaut (Eileen Collins, NASA, public domain): [512,512,3] 0..1; her
    face's box is about x 176..274, y 77..175."""
    data = pytest.importorskip("skimage.data")
    return data.astronaut().astype(np.float32) / 255.0


def mean_normal(normals: torch.Tensor, rows: slice, cols: slice) -> np.ndarray:
    return normals[rows, cols].reshape(-1, 3).mean(dim=0).numpy()


def test_the_mesh_is_the_tesselations_triangles_with_eyes_and_mouth_closed(models):
    triangles, holes = faces._mesh()
    assert sorted(len(hole) for hole in holes) == [16, 16, 20]
    assert len(triangles) == 852 + 52
    assert triangles.max() == faces.NUM_LANDMARKS + 2
    person_matte(torch.full((64, 64, 3), 0.5))
    assert "mediapipe" not in sys.modules  # its files are read, the package is never imported


def test_one_face_is_found_and_its_normals_look_like_a_face(astronaut):
    geometry = face_geometry(torch.from_numpy(astronaut))
    assert geometry.count == 1 and geometry.message == "1 face meshed"
    normals, weight = geometry.normals, geometry.weight
    assert normals.shape == (512, 512, 3) and weight.shape == (512, 512)
    assert torch.allclose(normals.norm(dim=-1), torch.ones(512, 512), atol=1e-4)
    # the nose tip faces the viewer; the bridge above it faces up, the skin under it down
    assert mean_normal(normals, slice(125, 130), slice(221, 227))[2] > 0.8
    assert mean_normal(normals, slice(107, 116), slice(220, 229))[1] > 0.25
    assert mean_normal(normals, slice(129, 134), slice(220, 229))[1] < -0.25
    # the cheek on the image's left faces left, the one on the right faces right
    assert mean_normal(normals, slice(110, 126), slice(185, 200))[0] < -0.3
    assert mean_normal(normals, slice(110, 126), slice(250, 265))[0] > 0.3
    # the top of the forehead leans up, the underside of the chin down
    assert mean_normal(normals, slice(74, 86), slice(200, 250))[1] > 0.0
    assert mean_normal(normals, slice(168, 174), slice(215, 230))[1] < -0.3
    # the weight: 1 on the face, 0 in the corners, no face normals where it is 0
    assert weight[125, 224] == 1.0 and weight[:40, :40].max() == 0.0
    assert ((weight > 0) & (weight < 1)).any()
    far = weight == 0
    assert torch.equal(normals[far], torch.tensor([0.0, 0.0, 1.0]).expand(int(far.sum()), 3))
    mesh = weight == 1.0
    assert 6000 < int(mesh.sum()) < 11000  # about the face oval of a ~100 px face
    assert float(normals[mesh][:, 2].median()) > 0.6


def test_the_weight_falls_off_within_a_few_percent_of_the_face(astronaut):
    weight = face_geometry(torch.from_numpy(astronaut)).weight
    cols = torch.nonzero(weight[125] == 1.0).flatten()
    right = int(cols.max())
    ramp = weight[125, right : right + 12]
    assert (ramp[1:] <= ramp[:-1]).all() and ramp[-1] == 0.0 and 0.0 < ramp[2] < 1.0


def test_a_grey_copy_and_a_turned_copy_find_the_same_face(astronaut):
    original = face_geometry(torch.from_numpy(astronaut))
    grey = np.repeat(astronaut.mean(axis=-1, keepdims=True), 3, axis=-1)
    assert face_geometry(torch.from_numpy(grey)).count == 1
    assert face_geometry(torch.from_numpy(grey[..., :1])).count == 1  # one channel

    turned = face_geometry(torch.from_numpy(np.rot90(astronaut).copy()))  # a quarter turn left
    assert turned.count == 1
    back = np.rot90(turned.normals.numpy(), -1)
    back = np.stack([back[..., 1], -back[..., 0], back[..., 2]], axis=-1)  # turn the vectors back
    both = (original.weight.numpy() == 1.0) & (np.rot90(turned.weight.numpy(), -1) == 1.0)
    assert both.sum() > 0.8 * (original.weight.numpy() == 1.0).sum()
    assert np.median(angles_degrees(back[both], original.normals.numpy()[both])) < 10.0


def test_no_face_falls_back_to_the_object_estimate(models):
    data = pytest.importorskip("skimage.data")
    flat = face_geometry(torch.full((300, 400, 3), 0.5))
    assert flat.count == 0 and flat.message == f"no face found: {FALLBACK}"
    assert flat.weight.sum() == 0
    cup = face_geometry(torch.from_numpy(data.coffee().astype(np.float32) / 255.0))
    assert cup.count == 0 and cup.message.startswith("no face found")
    assert "as an object" in cup.message


def test_a_face_cut_by_the_border_does_not_break(astronaut):
    for cut in (astronaut[:, :225], astronaut[:, 225:], astronaut[:130], astronaut[100:]):
        geometry = face_geometry(torch.from_numpy(np.ascontiguousarray(cut)))
        assert geometry.normals.shape == (*cut.shape[:2], 3)
        assert torch.isfinite(geometry.normals).all() and geometry.count in (0, 1)
    assert face_geometry(torch.from_numpy(np.ascontiguousarray(astronaut[:130]))).count == 1


def test_several_faces_each_get_a_mesh_and_tiny_ones_are_skipped(astronaut):
    group = np.zeros((512, 1600, 3), dtype=np.float32)  # two faces a sixteenth of the width
    group[:, :512] = astronaut
    group[:, 1000:1512] = astronaut[:, ::-1]
    geometry = face_geometry(torch.from_numpy(group))
    assert geometry.count == 2 and geometry.message == "2 faces: each its own mesh"
    assert geometry.weight[125, 224] == 1.0 and geometry.weight[125, 1000 + 511 - 224] == 1.0

    import cv2

    tiny = cv2.resize(astronaut, (96, 96), interpolation=cv2.INTER_AREA)  # a ~18 px face
    small = face_geometry(torch.from_numpy(tiny))
    assert small.count == 0 and f"under {faces.MIN_FACE_PX} px skipped" in small.message


def test_person_matte_is_high_on_the_person_and_low_on_the_background(astronaut):
    matte = person_matte(torch.from_numpy(astronaut))
    assert matte is not None and matte.shape == (512, 512)
    assert float(matte.min()) >= 0.0 and float(matte.max()) <= 1.0
    assert float(matte[100:160, 200:250].mean()) > 0.9  # the face
    assert float(matte[300:400, 100:200].mean()) > 0.9  # the suit
    assert float(matte[:40, 470:].mean()) < 0.1  # the wall behind, top right
