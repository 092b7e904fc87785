"""The real-photo benchmark's measuring parts, on synthetic photos (the real ones are not the
project's and are not used in tests)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from relight_inpaint.benchmarks import realphotos
from relight_inpaint.benchmarks.realphotos import (
    ORACLES,
    answer,
    blurred_inside,
    chosen_methods,
    face_mask,
    gain_psnr,
    load_subject,
    photometric_stereo,
)


def sphere_photos(size=48):
    rows, cols = np.mgrid[0:size, 0:size]
    x, y = (cols - size / 2) / (size * 0.4), (size / 2 - rows) / (size * 0.4)
    inside = x**2 + y**2 < 0.95
    z = np.sqrt(np.clip(1 - x**2 - y**2, 0, None))
    normals = np.stack([x, y, z], -1) / np.maximum(np.sqrt(x**2 + y**2 + z**2), 1e-6)[..., None]
    lights = np.array([[0.3, 0.3, 0.9], [-0.4, 0.2, 0.89], [0.1, -0.5, 0.86], [-0.2, -0.3, 0.93]])
    lights /= np.linalg.norm(lights, axis=1, keepdims=True)
    albedo = np.array([0.8, 0.5, 0.3])
    shading = np.clip(np.einsum("hwi,ni->nhw", normals, lights), 0, None)
    images = (shading[..., None] * albedo * inside[None, ..., None]).astype(np.float32)
    return images, lights, inside.astype(np.float32), normals, albedo


def test_photometric_stereo_recovers_normals_and_albedo():
    images, lights, mask, normals, albedo = sphere_photos()
    found, found_albedo = photometric_stereo(images, lights, mask)
    inner = (mask > 0.5) & (normals[..., 2] > 0.5)
    cosine = (found * normals).sum(-1)[inner]
    assert np.degrees(np.arccos(np.clip(cosine, -1, 1))).max() < 1.0
    assert np.allclose(found_albedo[inner], albedo, atol=0.02)


def test_gain_psnr_ignores_exposure_per_channel():
    images, _, mask, _, _ = sphere_photos()
    exposed = images[0] * np.array([0.5, 0.7, 1.2], np.float32)
    assert gain_psnr(exposed, images[0], mask) > 60.0
    assert gain_psnr(images[1], images[0], mask) < 40.0


def test_face_mask_is_an_ellipse_inside_the_frame():
    mask = face_mask(192, 168)
    assert mask[100, 84] == 1.0 and mask[0, 0] == 0.0 and 0.3 < mask.mean() < 0.7


def test_blurred_inside_averages_only_the_masks_pixels():
    """The coarse normals of the oracles: a blur that takes nothing from outside the subject
    (there the photometric-stereo normals are undefined) and still smooths inside it."""
    mask = np.zeros((32, 32), np.float32)
    mask[8:24, 8:24] = 1.0
    values = np.full((32, 32, 3), 100.0, np.float32)
    values[8:24, 8:24] = 1.0
    values[16, 16] = 9.0  # a spike inside is spread
    blurred = blurred_inside(values, mask, sigma=2.0)
    inside = mask > 0.5
    assert np.abs(blurred[inside] - 1.0).max() < 1.0  # nothing of the 100 outside came in
    assert 1.0 < blurred[16, 16, 0] < 5.0


def test_a_quick_run_measures_the_re_shadings_alone_and_the_oracles_before_the_truth():
    full = chosen_methods(reshade_only=False, oracles=False)
    quick = chosen_methods(reshade_only=True, oracles=True)
    assert {"previous", "refiner_on", "pipeline"} <= set(full)
    assert not {"previous", "refiner_on", "pipeline"} & set(quick)
    assert quick[-1] == "truth" and set(ORACLES) <= set(quick)


def write_subject(folder, images, lights, mask):
    folder.mkdir()
    names = [f"{i:02d}.png" for i in range(len(images))]
    for name, image in zip(names, images, strict=True):
        Image.fromarray(np.round(image * 255).astype(np.uint8)).save(folder / name)
    Image.fromarray((mask * 255).astype(np.uint8)).save(folder / "mask.png")
    (folder / "lights.json").write_text(json.dumps({"images": names, "lights": lights.tolist()}))


def test_whole_photo_relights_everything_and_scores_the_same_subject(tmp_path, monkeypatch):
    """--whole-photo: the methods are given the whole photo as their region; the mask (where
    every method is scored) and the photometric-stereo normals inside it are the same."""
    images, lights, mask, _, _ = sphere_photos()
    write_subject(tmp_path / "sphere", images, lights, mask)
    masked = load_subject(tmp_path / "sphere")
    whole = load_subject(tmp_path / "sphere", whole_photo=True)
    assert np.array_equal(masked.region, masked.mask) and whole.region.all()
    assert np.array_equal(whole.mask, masked.mask)
    inside = masked.mask > 0.5
    assert np.allclose(whole.normals[inside], masked.normals[inside], atol=1e-5)
    given = []
    monkeypatch.setattr(realphotos, "quotient", lambda image, region, *rest: given.append(region))
    for subject in (masked, whole):
        answer("reshade_only", subject, {}, images[0], None, images[1])
    assert np.array_equal(given[0], masked.mask) and given[1].all()
