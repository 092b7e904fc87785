"""Training renderer: determinism, light conventions, shadows, object removal, passes, crops."""

from __future__ import annotations

import math

import numpy as np
import pytest

from relight_inpaint.lighting.light import direction_from_angles
from relight_inpaint.training.render import (
    Crop,
    DirectionalLight,
    Material,
    Plane,
    Scene,
    Shape,
    light_from_angles,
    render_passes,
    render_relit_target,
    render_sample,
    render_views,
    render_with_light,
    sample_scene,
    tonemap,
)

SIZE = 64
GRAY = Material("flat", (0.5, 0.5, 0.5))
SHINY = Material("flat", (0.4, 0.3, 0.6), specular=0.5, shininess=20.0)
IDENTITY = ((1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0))
TILT = math.radians(45)
GROUND_NORMAL = np.array([0.0, math.cos(TILT), math.sin(TILT)])
GROUND_DEPTH = np.array([0.0, math.sin(TILT), -math.cos(TILT)])  # receding, up in the image
WALL = Plane((0.0, 0.0, 1.0), 0.0, (1.0, 0.0, 0.0), GRAY)
GROUND = Plane(tuple(GROUND_NORMAL), 0.0, (1.0, 0.0, 0.0), GRAY)


def sphere(center, radius: float, material: Material = GRAY) -> Shape:
    return Shape("sphere", tuple(center), IDENTITY, (radius,) * 3, material)


def resting(kind: str, size, x: float, y: float, lift: float, material=GRAY) -> Shape:
    """A shape whose local z is the ground normal, `lift` above the ground point at image (x, y)."""
    foot = np.array([x, y, -y * GROUND_NORMAL[1] / GROUND_NORMAL[2]])  # on the plane through 0
    center = foot + lift * GROUND_NORMAL
    rotation = np.stack([np.array([1.0, 0.0, 0.0]), GROUND_DEPTH, GROUND_NORMAL], axis=1)
    rows = tuple(tuple(float(v) for v in row) for row in rotation)
    return Shape(kind, tuple(center.tolist()), rows, tuple(size), material)


def scene_of(planes, objects, light: DirectionalLight, target: int = 1) -> Scene:
    return Scene(tuple(planes), tuple(objects), light, light_from_angles(180, 45), target)


def wall_sphere_scene(light: DirectionalLight, material: Material = GRAY) -> Scene:
    return scene_of([WALL], [sphere((0.0, 0.0, 0.6), 0.5, material)], light)


def ground_scene(light: DirectionalLight) -> Scene:
    """A sphere (the target) and a box resting on a 45-degree table top."""
    ball = resting("sphere", (0.3, 0.3, 0.3), 0.0, -0.3, 0.3)
    box = resting("box", (0.15, 0.15, 0.15), 0.6, 0.5, 0.15)
    return scene_of([GROUND], [ball, box], light)


def sphere_pixels(light: DirectionalLight):
    views = render_views(wall_sphere_scene(light), SIZE, [light], specular=False)
    return views, views.object_ids == 1, views.images[0].mean(axis=2)


# --- determinism ---------------------------------------------------------------------------------


def test_same_seed_same_arrays_and_different_seeds_differ():
    first, again, other = render_sample(3, SIZE), render_sample(3, SIZE), render_sample(4, SIZE)
    for key, value in first.items():
        if isinstance(value, np.ndarray):
            np.testing.assert_array_equal(value, again[key], err_msg=key)
    assert first["scene"] == again["scene"]
    assert not np.array_equal(first["image"], other["image"])
    assert sample_scene(3) != sample_scene(4)


# --- light conventions ---------------------------------------------------------------------------


def test_light_from_angles_matches_the_pack_convention():
    for azimuth, elevation in [(0, 0), (90, 0), (0, 90), (215, 30), (300, 70)]:
        ours = light_from_angles(azimuth, elevation).direction
        np.testing.assert_allclose(ours, direction_from_angles(azimuth, elevation), atol=1e-6)
    np.testing.assert_allclose(light_from_angles(90, 0).direction, (0, 1, 0), atol=1e-12)


def test_sphere_lit_from_the_right_is_brighter_where_it_faces_the_light():
    light = light_from_angles(0, 20)
    views, on_sphere, brightness = sphere_pixels(light)
    n_dot_l = views.normals @ np.asarray(light.direction, np.float32)
    facing = brightness[on_sphere & (n_dot_l > 0.5)].mean()
    away = brightness[on_sphere & (n_dot_l < 0)].mean()
    assert facing > away + 0.3
    right, left = on_sphere.copy(), on_sphere.copy()
    right[:, : SIZE // 2], left[:, SIZE // 2 :] = False, False
    assert brightness[right].mean() > brightness[left].mean() + 0.2


@pytest.mark.parametrize(
    ("azimuth", "lit_half"),
    [(90, "top"), (270, "bottom"), (0, "right"), (180, "left")],
)
def test_azimuth_lights_the_expected_half_of_a_sphere(azimuth, lit_half):
    _, on_sphere, brightness = sphere_pixels(light_from_angles(azimuth, 20))
    rows, cols = np.nonzero(on_sphere)
    half = {
        "top": rows < SIZE / 2,  # row 0 is the top of the image (+y)
        "bottom": rows >= SIZE / 2,
        "right": cols >= SIZE / 2,
        "left": cols < SIZE / 2,
    }[lit_half]
    values = brightness[rows, cols]
    assert values[half].mean() > values[~half].mean() + 0.2


def test_frontal_light_is_brightest_in_the_middle_of_the_sphere():
    _, on_sphere, brightness = sphere_pixels(light_from_angles(0, 90))
    middle = brightness[SIZE // 2, SIZE // 2]
    assert middle >= brightness[on_sphere].max() - 1e-3
    assert middle > brightness[on_sphere].mean() + 0.1


# --- shadows and removal -------------------------------------------------------------------------


def test_an_object_on_the_ground_casts_a_dark_shadow_away_from_a_low_light():
    light = light_from_angles(0, 15)  # low, from the right
    views = render_views(ground_scene(light), SIZE, [light], specular=False)
    ground = views.object_ids == 0
    facing = views.normals @ np.asarray(light.direction, np.float32) > 0
    shadowed = ground & facing & (views.visibility[0] == 0)
    lit = ground & (views.visibility[0] == 1)
    assert shadowed.sum() > 20 and lit.sum() > 100
    brightness = views.images[0].mean(axis=2)
    assert brightness[shadowed].max() < brightness[lit].min()
    ball_cols = np.nonzero(views.object_ids == 1)[1]
    assert np.nonzero(shadowed)[1].mean() < ball_cols.mean()  # the shadow falls to the left


def test_removing_the_target_removes_it_and_only_its_shadow():
    light = light_from_angles(0, 15)
    passes = render_passes(ground_scene(light), SIZE)
    target, shadow = passes["target_mask"] > 0, passes["shadow_mask"] > 0
    assert passes["target"] == 1 and passes["curved"] is True
    assert target.sum() > 50 and shadow.sum() > 20
    assert not (target & shadow).any()
    image, without = passes["image"], passes["image_without_target"]
    elsewhere = ~(target | shadow)
    np.testing.assert_allclose(image[elsewhere], without[elsewhere], atol=1e-6)
    assert (without[shadow] > image[shadow] + 0.05).all()
    assert (passes["object_masks"] == 2).sum() > 10  # the box stays
    assert np.abs(without[target] - image[target]).mean() > 0.02


def test_image_without_target_matches_rendering_the_scene_without_it():
    scene = sample_scene(14)
    passes = render_passes(scene, SIZE)
    alone = render_views(scene, SIZE, [scene.light], remove_object=passes["target"])
    np.testing.assert_allclose(passes["image_without_target"], alone.images[0], atol=1e-6)
    assert not (alone.object_ids == passes["target"]).any()


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_random_samples_differ_without_target_only_in_target_and_shadow(seed):
    passes = render_sample(seed, SIZE)
    target = passes["target_mask"] > 0
    elsewhere = ~(target | (passes["shadow_mask"] > 0))
    assert target.any()
    diff = np.abs(passes["image"] - passes["image_without_target"])
    assert diff[elsewhere].max() < 1e-6
    assert set(np.unique(passes["object_masks"])) <= set(range(len(passes["scene"].objects) + 1))


def test_box_target_is_not_curved():
    light = light_from_angles(30, 40)
    scene = ground_scene(light)
    passes = render_passes(Scene(scene.planes, scene.objects, light, light, target=2), SIZE)
    assert passes["target"] == 2 and passes["curved"] is False


def tilted(angle_x: float, angle_y: float) -> tuple:
    cx, sx, cy, sy = math.cos(angle_x), math.sin(angle_x), math.cos(angle_y), math.sin(angle_y)
    about_x = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    about_y = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    return tuple(tuple(float(v) for v in row) for row in about_y @ about_x)


@pytest.mark.parametrize(
    ("kind", "size", "center_z", "tilt"),
    [
        ("sphere", (0.6, 0.6, 0.6), 0.8, 0.6),
        ("ellipsoid", (0.7, 0.4, 0.25), 0.8, 0.6),
        ("box", (0.4, 0.3, 0.35), 0.8, 0.6),
        ("cylinder", (0.4, 0.4, 0.3), 0.8, 0.6),
        ("cone", (0.5, 0.5, 0.6), 0.2, 0.6),  # apex toward the camera
        ("cone", (0.5, 0.5, 0.6), 0.8, 2.2),  # base and side in view
        ("capsule", (0.3, 0.3, 0.35), 0.8, 0.6),
    ],
)
def test_normals_match_the_slope_of_the_visible_surface(kind, size, center_z, tilt):
    shape = Shape(kind, (0.0, 0.0, center_z), tilted(tilt, -0.4), size, GRAY)
    light = light_from_angles(0, 45)
    views = render_views(scene_of([WALL], [shape], light), SIZE, [light])
    step = 2.0 / SIZE
    dz_drow, dz_dcol = np.gradient(views.surface_z.astype(np.float64), step)
    slope_normals = np.stack([-dz_dcol, dz_drow, np.ones_like(dz_dcol)], axis=-1)  # rows go down
    slope_normals /= np.linalg.norm(slope_normals, axis=-1, keepdims=True)
    inside = views.object_ids == 1
    for axis in (0, 1):  # two pixels away from the silhouette
        for shift in (-2, -1, 1, 2):
            inside &= np.roll(views.object_ids == 1, shift, axis=axis)
    cosines = np.sum(slope_normals * views.normals, axis=-1)[inside]
    assert inside.sum() > 100
    assert np.median(cosines) > math.cos(math.radians(3))
    assert (cosines > math.cos(math.radians(15))).mean() > 0.85


# --- passes --------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [21, 22, 23, 24])
def test_normals_are_unit_and_face_the_camera(seed):
    normals = render_sample(seed, SIZE)["normals"]
    np.testing.assert_allclose(np.linalg.norm(normals, axis=2), 1.0, atol=1e-5)
    assert (normals[..., 2] >= -1e-6).mean() > 0.999


@pytest.mark.parametrize("seed", [31, 32, 33])
def test_matte_image_is_albedo_times_lambert_shading(seed):
    scene = sample_scene(seed)
    views = render_views(scene, SIZE, [scene.light, scene.light2], specular=False)
    for light, image, visibility in zip(
        (scene.light, scene.light2), views.images, views.visibility, strict=True
    ):
        n_dot_l = np.maximum(views.normals @ np.asarray(light.direction, np.float32), 0)
        shading = light.ambient + light.intensity * n_dot_l * visibility
        expected = tonemap(views.albedo * shading[..., None] * np.asarray(light.color))
        np.testing.assert_allclose(image, expected, atol=1e-5)
        assert ((visibility == 0) | (n_dot_l > 0)).all()  # light never reaches a back-facing point


def test_specular_adds_a_highlight_only_when_enabled():
    light = light_from_angles(45, 60)
    scene = wall_sphere_scene(light, SHINY)
    plain = render_views(scene, SIZE, [light], specular=False).images[0]
    shiny = render_views(scene, SIZE, [light]).images[0]
    assert (shiny >= plain - 1e-7).all()
    assert (shiny - plain).max() > 0.2


def test_samples_have_sane_ranges_and_lights():
    for seed in range(5):
        passes = render_sample(seed, SIZE)
        for key in ("image", "image_light2", "image_without_target", "albedo"):
            assert passes[key].dtype == np.float32 and passes[key].shape == (SIZE, SIZE, 3)
            assert 0.0 <= passes[key].min() and passes[key].max() <= 1.0
        first, second = passes["light"]["direction"], passes["light2"]["direction"]
        assert first[2] >= math.sin(math.radians(5)) - 1e-6
        assert np.degrees(np.arccos(np.clip(first @ second, -1, 1))) >= 60 - 1e-3


# --- crops and requested lights ----------------------------------------------------------------


def test_a_crop_is_a_window_of_the_larger_frame():
    scene = sample_scene(41)
    full = render_with_light(scene, 2 * SIZE, scene.light)
    window = render_with_light(scene, SIZE, scene.light, crop=Crop(2 * SIZE, 16, 40))
    np.testing.assert_allclose(window, full[16 : 16 + SIZE, 40 : 40 + SIZE], atol=1e-5)


def test_cropped_samples_contain_the_target():
    for seed in range(3):
        passes = render_sample(seed, SIZE, frame_size=2 * SIZE)
        assert passes["crop"].frame_size == 2 * SIZE
        assert passes["target_mask"].sum() > 0


def test_supersampling_box_averages_a_finer_render():
    fine = render_sample(51, 2 * SIZE)
    smooth = render_sample(51, SIZE, supersample=2)
    blocks = fine["image"].reshape(SIZE, 2, SIZE, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(smooth["image"], blocks, atol=1e-5)
    coverage = smooth["target_mask"]
    assert coverage.min() >= 0 and coverage.max() <= 1 and ((coverage > 0) & (coverage < 1)).any()
    np.testing.assert_allclose(np.linalg.norm(smooth["normals"], axis=2), 1.0, atol=1e-5)
    assert smooth["object_masks"].dtype == np.int32 and smooth["crop"] == Crop(SIZE, 0, 0)


def test_relit_target_uses_the_requested_light_on_the_target_only():
    scene = ground_scene(light_from_angles(0, 15))
    requested = light_from_angles(180, 30, intensity=1.2, color=(1.0, 0.8, 0.6))
    relit = render_relit_target(scene, SIZE, requested)
    views = render_views(scene, SIZE, [scene.light, requested])
    target = views.object_ids == scene.target
    np.testing.assert_array_equal(relit[target], views.images[1][target])
    np.testing.assert_array_equal(relit[~target], views.images[0][~target])
