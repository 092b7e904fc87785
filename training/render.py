"""Training-data renderer for the pack's own model: small analytic scenes, ray traced in numpy.

Camera frame (the pack's): x right, y up, z toward the viewer; the camera is orthographic and
looks down -z, so image row 0 is the top (+y). A light direction points from the scene toward
the light: l = (cos el cos az, cos el sin az, sin el). The full scene frame spans x, y in
[-1, 1]; a `Crop` renders a window of a larger virtual frame, so objects keep the pixel size
they have in that frame.

Shading: albedo * color * (intensity * max(0, n.l) * visibility + ambient) plus a Blinn-Phong
highlight, then a soft knee above 0.8 (`tonemap`). Visibility comes from shadow rays toward the
light against every object (objects shadow the planes and each other; the planes cast none).

Entry points: `sample_scene(seed)` (pure data), `render_views` (any lights, optional object
removal), `render_passes` / `render_sample(seed)` (every pass training needs),
`light_from_angles`, `render_with_light` and `render_relit_target` (ground truth for a
requested light). Run as a script to time it and write an example grid:
    .venv/bin/python -P training/render.py [OUT.png]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("training")

import colorsys  # noqa: E402
import math  # noqa: E402
from collections.abc import Callable, Mapping, Sequence  # noqa: E402
from dataclasses import dataclass, replace  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

from .textures import PHOTO_TEXTURES, TEXTURE_SIDE, sample_texture, texture_levels  # noqa: E402

Vec3 = tuple[float, float, float]

CURVED_KINDS = frozenset({"sphere", "ellipsoid", "cylinder", "cone", "capsule"})
PATTERNS = ("flat", "stripes", "checks", "noise", "gradient", "photo")

_CAMERA_Z = 100.0  # orthographic rays start here, in front of everything
_SHADOW_OFFSET = 1e-4  # shadow rays start this far off the surface (scene units)
_TONEMAP_KNEE = 0.8
_NOISE_CELLS = 16
_FLAT_EPS = 1e-9
_MIN_LIGHT_SIN = math.sin(math.radians(5.0))
# The light a training scene can have; the trained model's file records it (light_range).
LIGHT_ELEVATION = (5.0, 90.0)
LIGHT_INTENSITY = (0.6, 1.6)
LIGHT_AMBIENT = (0.05, 0.4)

# --- scene description (pure data) -------------------------------------------------------------


@dataclass(frozen=True)
class DirectionalLight:
    direction: Vec3  # unit vector toward the light, camera frame
    intensity: float = 1.0
    ambient: float = 0.15
    color: Vec3 = (1.0, 1.0, 1.0)

    def as_dict(self) -> dict[str, Any]:
        return {
            "direction": np.asarray(self.direction, np.float32),
            "intensity": float(self.intensity),
            "ambient": float(self.ambient),
            "color": np.asarray(self.color, np.float32),
        }


@dataclass(frozen=True)
class Material:
    pattern: str  # one of PATTERNS
    color_a: Vec3  # flat colour; pattern colour 1; tint of a photo
    color_b: Vec3 = (0.5, 0.5, 0.5)  # pattern colour 2
    frequency: float = 4.0  # cycles (or photo tiles) per scene unit
    angle: float = 0.0  # pattern direction in uv, radians
    seed: int = 0  # noise grid
    texture: str = ""  # photo name (pattern "photo")
    offset: tuple[float, float] = (0.0, 0.0)  # photo offset, in texture widths
    specular: float = 0.0  # Blinn-Phong strength; 0 = matte
    shininess: float = 32.0


@dataclass(frozen=True)
class Plane:
    normal: Vec3  # unit, with normal.z > 0 (faces the camera)
    offset: float  # the plane is {p : normal . p = offset}
    tangent: Vec3  # texture u axis; v = normal x tangent
    material: Material


@dataclass(frozen=True)
class Shape:
    """A convex object; `size` is per kind (local axis z is the object's own axis):
    sphere/ellipsoid: radii; box: half extents; cylinder: (r, r, half height);
    cone: (r, r, height), base centred on the local origin; capsule: (r, r, half length)."""

    kind: str
    center: Vec3
    rotation: tuple[Vec3, Vec3, Vec3]  # rows of the matrix taking local to camera coordinates
    size: Vec3
    material: Material


@dataclass(frozen=True)
class Scene:
    planes: tuple[Plane, ...]
    objects: tuple[Shape, ...]
    light: DirectionalLight
    light2: DirectionalLight
    target: int  # object id as in object masks: 1 + index into `objects`


@dataclass(frozen=True)
class Crop:
    """A size x size window at (top, left) of a virtual frame frame_size pixels wide."""

    frame_size: int
    top: int
    left: int


@dataclass(frozen=True)
class Views:
    images: tuple[np.ndarray, ...]  # per light: H x W x 3 float32, 0..1
    visibility: tuple[np.ndarray, ...]  # per light: H x W float32, 1 where the light arrives
    normals: np.ndarray  # H x W x 3 float32, unit, camera frame
    albedo: np.ndarray  # H x W x 3 float32
    object_ids: np.ndarray  # H x W int32: 0 = planes, k = objects[k - 1]
    surface_z: np.ndarray  # H x W float32: z of the visible surface (larger is nearer)


LightLike = DirectionalLight | Mapping[str, Any]


def as_light(light: LightLike) -> DirectionalLight:
    if isinstance(light, DirectionalLight):
        return light
    direction = np.asarray(light["direction"], np.float64)
    direction = direction / np.linalg.norm(direction)
    return DirectionalLight(
        tuple(direction.tolist()),
        float(light.get("intensity", 1.0)),
        float(light.get("ambient", 0.15)),
        tuple(np.asarray(light.get("color", (1.0, 1.0, 1.0)), np.float64).tolist()),
    )


def light_direction(azimuth_deg: float, elevation_deg: float) -> Vec3:
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    return (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))


def light_from_angles(
    azimuth_deg: float,
    elevation_deg: float,
    intensity: float = 1.0,
    ambient: float = 0.15,
    color: Sequence[float] = (1.0, 1.0, 1.0),
) -> DirectionalLight:
    direction = light_direction(azimuth_deg, elevation_deg)
    return DirectionalLight(direction, intensity, ambient, tuple(float(c) for c in color))


def tonemap(linear: np.ndarray) -> np.ndarray:
    """Identity up to the knee, then a tanh shoulder that approaches 1 smoothly."""
    knee = _TONEMAP_KNEE
    shoulder = knee + (1 - knee) * np.tanh((linear - knee) / (1 - knee))
    return np.where(linear <= knee, linear, shoulder).clip(0.0, 1.0)


# --- shapes in their local frame: ray intervals, normals, uvs ----------------------------------
# Rays in a batch share one direction d (camera rays, or shadow rays toward one light), so the
# quadric's leading coefficient is a scalar. Each interval is (t_near, t_far); empty is (inf, -inf).

Interval = tuple[np.ndarray, np.ndarray]


def _slab(o: np.ndarray, d: float, lo: float, hi: float) -> Interval:
    if abs(d) < _FLAT_EPS:
        inside = (o >= lo) & (o <= hi)
        return np.where(inside, -np.inf, np.inf), np.where(inside, np.inf, -np.inf)
    t_lo, t_hi = (lo - o) / d, (hi - o) / d
    return (t_lo, t_hi) if d > 0 else (t_hi, t_lo)


def _intersect(a: Interval, b: Interval) -> Interval:
    return np.maximum(a[0], b[0]), np.minimum(a[1], b[1])


def _quadric_between(a: float, b: np.ndarray, c: np.ndarray) -> Interval:
    """Where a t^2 + 2 b t + c <= 0, for a > 0."""
    disc = b * b - a * c
    root = np.sqrt(np.maximum(disc, 0.0))
    hit = disc >= 0
    return np.where(hit, (-b - root) / a, np.inf), np.where(hit, (-b + root) / a, -np.inf)


def _ellipsoid_interval(o: np.ndarray, d: np.ndarray, size: np.ndarray) -> Interval:
    o, d = o / size[:, None], d / size
    return _quadric_between(float(d @ d), d @ o, np.einsum("ij,ij->j", o, o) - 1.0)


def _box_interval(o: np.ndarray, d: np.ndarray, size: np.ndarray) -> Interval:
    span = _slab(o[0], d[0], -size[0], size[0])
    span = _intersect(span, _slab(o[1], d[1], -size[1], size[1]))
    return _intersect(span, _slab(o[2], d[2], -size[2], size[2]))


def _infinite_cylinder(o: np.ndarray, d: np.ndarray, radius: float) -> Interval:
    a = max(float(d[0] ** 2 + d[1] ** 2), _FLAT_EPS)
    b = o[0] * d[0] + o[1] * d[1]
    return _quadric_between(a, b, o[0] ** 2 + o[1] ** 2 - radius**2)


def _cylinder_interval(o: np.ndarray, d: np.ndarray, size: np.ndarray) -> Interval:
    side = _infinite_cylinder(o, d, size[0])
    return _intersect(side, _slab(o[2], d[2], -size[2], size[2]))


def _sphere_interval(o: np.ndarray, d: np.ndarray, center_z: float, radius: float) -> Interval:
    oz = o[2] - center_z
    b = o[0] * d[0] + o[1] * d[1] + oz * d[2]
    return _quadric_between(float(d @ d), b, o[0] ** 2 + o[1] ** 2 + oz**2 - radius**2)


def _capsule_interval(o: np.ndarray, d: np.ndarray, size: np.ndarray) -> Interval:
    radius, half = size[0], size[2]
    parts = (
        _cylinder_interval(o, d, np.array([radius, radius, half])),
        _sphere_interval(o, d, -half, radius),
        _sphere_interval(o, d, half, radius),
    )
    # a convex union: along a line it is one interval
    lo = np.minimum(np.minimum(parts[0][0], parts[1][0]), parts[2][0])
    hi = np.maximum(np.maximum(parts[0][1], parts[1][1]), parts[2][1])
    return lo, hi


def _cone_interval(o: np.ndarray, d: np.ndarray, size: np.ndarray) -> Interval:
    radius, height = size[0], size[2]
    k2 = (radius / height) ** 2
    m = height - o[2]
    a = float(d[0] ** 2 + d[1] ** 2 - k2 * d[2] ** 2)
    b = o[0] * d[0] + o[1] * d[1] + k2 * m * d[2]
    c = o[0] ** 2 + o[1] ** 2 - k2 * m * m
    slab = _slab(o[2], d[2], 0.0, height)
    if a >= 0:
        return _intersect(_quadric_between(max(a, _FLAT_EPS), b, c), slab)
    # a < 0: the double cone covers (-inf, r1] and [r2, inf); one of them meets the slab
    disc = b * b - a * c
    root = np.sqrt(np.maximum(disc, 0.0))
    whole = disc < 0
    r1 = np.where(whole, np.inf, (-b + root) / a)
    r2 = np.where(whole, -np.inf, (-b - root) / a)
    first = _intersect((np.full_like(r1, -np.inf), r1), slab)
    second = _intersect((r2, np.full_like(r2, np.inf)), slab)
    use_first = first[0] <= first[1]
    return np.where(use_first, first[0], second[0]), np.where(use_first, first[1], second[1])


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=0, keepdims=True), 1e-12)


def _ellipsoid_normal(p: np.ndarray, size: np.ndarray) -> np.ndarray:
    return _unit(p / (size * size)[:, None])


def _box_normal(p: np.ndarray, size: np.ndarray) -> np.ndarray:
    axis = np.argmax(np.abs(p) / size[:, None], axis=0)
    normal = np.zeros_like(p)
    columns = np.arange(p.shape[1])
    normal[axis, columns] = np.sign(p[axis, columns])
    return normal


def _radial(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    rho = np.maximum(np.hypot(p[0], p[1]), 1e-12)
    return rho, np.stack([p[0] / rho, p[1] / rho, np.zeros_like(rho)])


def _cylinder_normal(p: np.ndarray, size: np.ndarray) -> np.ndarray:
    rho, side = _radial(p)
    cap = np.abs(p[2]) / size[2] > rho / size[0]
    cap_normal = np.stack([np.zeros_like(rho), np.zeros_like(rho), np.sign(p[2])])
    return np.where(cap, cap_normal, side)


def _cone_normal(p: np.ndarray, size: np.ndarray) -> np.ndarray:
    radius, height = size[0], size[2]
    k = radius / height
    rho, side = _radial(p)
    side[2] = k
    side /= math.sqrt(1 + k * k)
    base = p[2] < (k * (height - p[2]) - rho) / math.sqrt(1 + k * k)
    base_normal = np.stack([np.zeros_like(rho), np.zeros_like(rho), -np.ones_like(rho)])
    return np.where(base, base_normal, side)


def _capsule_normal(p: np.ndarray, size: np.ndarray) -> np.ndarray:
    axis_point = np.clip(p[2], -size[2], size[2])
    return _unit(np.stack([p[0], p[1], p[2] - axis_point]))


def _spherical_uv(p: np.ndarray, n: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, ...]:
    radius = float(size.mean())
    cos_polar = np.clip(p[2] / np.maximum(np.linalg.norm(p, axis=0), 1e-12), -1, 1)
    return np.arctan2(p[1], p[0]) * radius, np.arccos(cos_polar) * radius


def _box_uv(p: np.ndarray, n: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, ...]:
    axis = np.argmax(np.abs(n), axis=0)
    u = np.where(axis == 0, p[1], p[0])
    v = np.where(axis == 2, p[1], p[2])
    return u, v


def _cylindrical_uv(p: np.ndarray, n: np.ndarray, size: np.ndarray) -> tuple[np.ndarray, ...]:
    cap = np.abs(n[2]) > 0.999
    u = np.where(cap, p[0], np.arctan2(p[1], p[0]) * size[0])
    return u, np.where(cap, p[1], p[2])


def _ellipsoid_bound(size: np.ndarray) -> float:
    return float(size.max())


def _box_bound(size: np.ndarray) -> float:
    return float(np.linalg.norm(size))


def _cylinder_bound(size: np.ndarray) -> float:
    return float(math.hypot(size[0], size[2]))


def _cone_bound(size: np.ndarray) -> float:
    return float(max(size[0], size[2]))


def _capsule_bound(size: np.ndarray) -> float:
    return float(size[0] + size[2])


def _ellipsoid_support(u: np.ndarray, size: np.ndarray) -> float:
    return float(np.linalg.norm(u * size))


def _box_support(u: np.ndarray, size: np.ndarray) -> float:
    return float(np.abs(u) @ size)


def _cylinder_support(u: np.ndarray, size: np.ndarray) -> float:
    return float(size[2] * abs(u[2]) + size[0] * math.sqrt(max(0.0, 1 - u[2] ** 2)))


def _cone_support(u: np.ndarray, size: np.ndarray) -> float:
    return float(max(size[2] * u[2], size[0] * math.sqrt(max(0.0, 1 - u[2] ** 2))))


def _capsule_support(u: np.ndarray, size: np.ndarray) -> float:
    return float(size[2] * abs(u[2]) + size[0])


@dataclass(frozen=True)
class _Kind:
    interval: Callable[[np.ndarray, np.ndarray, np.ndarray], Interval]
    normal: Callable[[np.ndarray, np.ndarray], np.ndarray]
    uv: Callable[[np.ndarray, np.ndarray, np.ndarray], tuple[np.ndarray, ...]]
    bound: Callable[[np.ndarray], float]  # radius of a sphere about the local origin
    support: Callable[[np.ndarray, np.ndarray], float]  # max of p . u over the solid


_ELLIPSOID = _Kind(
    _ellipsoid_interval, _ellipsoid_normal, _spherical_uv, _ellipsoid_bound, _ellipsoid_support
)
KINDS: dict[str, _Kind] = {
    "sphere": _ELLIPSOID,
    "ellipsoid": _ELLIPSOID,
    "box": _Kind(_box_interval, _box_normal, _box_uv, _box_bound, _box_support),
    "cylinder": _Kind(
        _cylinder_interval, _cylinder_normal, _cylindrical_uv, _cylinder_bound, _cylinder_support
    ),
    "cone": _Kind(_cone_interval, _cone_normal, _cylindrical_uv, _cone_bound, _cone_support),
    "capsule": _Kind(
        _capsule_interval, _capsule_normal, _cylindrical_uv, _capsule_bound, _capsule_support
    ),
}


def bounding_radius(shape: Shape) -> float:
    return KINDS[shape.kind].bound(np.asarray(shape.size, np.float64))


# --- materials -----------------------------------------------------------------------------------


def _filtered_square(x: np.ndarray, width: np.ndarray) -> np.ndarray:
    """Box-filtered step(frac(x) >= 0.5) over a window `width` wide: an anti-aliased square wave."""

    def integral(s: np.ndarray) -> np.ndarray:
        whole = np.floor(s)
        return whole * 0.5 + np.maximum(s - whole - 0.5, 0.0)

    width = np.maximum(width, 1e-4)
    return (integral(x + width / 2) - integral(x - width / 2)) / width


def _value_noise(seed: int, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    grid = np.random.default_rng(seed).random((_NOISE_CELLS, _NOISE_CELLS))
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    fx, fy = fx * fx * (3 - 2 * fx), fy * fy * (3 - 2 * fy)
    xa, ya = x0.astype(np.int64) % _NOISE_CELLS, y0.astype(np.int64) % _NOISE_CELLS
    xb, yb = (xa + 1) % _NOISE_CELLS, (ya + 1) % _NOISE_CELLS
    top = grid[ya, xa] * (1 - fx) + grid[ya, xb] * fx
    bottom = grid[yb, xa] * (1 - fx) + grid[yb, xb] * fx
    return top * (1 - fy) + bottom * fy


def _pattern_weight(
    material: Material, u: np.ndarray, v: np.ndarray, footprint: np.ndarray
) -> np.ndarray:
    """0..1 blend from color_a to color_b; `footprint` is a pixel's size in scene units."""
    f = material.frequency
    along = u * math.cos(material.angle) + v * math.sin(material.angle)
    if material.pattern == "stripes":
        return _filtered_square(along * f, footprint * f)
    if material.pattern == "checks":
        sx, sy = _filtered_square(u * f, footprint * f), _filtered_square(v * f, footprint * f)
        return sx + sy - 2 * sx * sy
    if material.pattern == "noise":
        fine = _value_noise(material.seed + 1, u * 2.7 * f, v * 2.7 * f)
        noise = 0.65 * _value_noise(material.seed, u * f, v * f) + 0.35 * fine
        return np.clip((noise - 0.5) * 2.2 + 0.5, 0.0, 1.0)
    if material.pattern == "gradient":
        return np.clip(0.5 + 0.5 * along * f, 0.0, 1.0)
    return np.zeros_like(u)


def material_albedo(
    material: Material, u: np.ndarray, v: np.ndarray, footprint: np.ndarray, pixel: float
) -> np.ndarray:
    """Albedo [N, 3] at uv (scene units); `pixel` is the pixel size for photo mip selection."""
    color_a = np.asarray(material.color_a, np.float32)
    if material.pattern == "photo":
        texels_per_unit = material.frequency * TEXTURE_SIDE
        x = u * texels_per_unit + material.offset[0] * TEXTURE_SIDE
        y = -v * texels_per_unit + material.offset[1] * TEXTURE_SIDE
        photo = sample_texture(material.texture, x, y, texels_per_unit * pixel)
        return (0.04 + 0.86 * photo * color_a).astype(np.float32)
    if material.pattern == "flat":
        return np.broadcast_to(color_a, (u.shape[0], 3)).astype(np.float32)
    weight = _pattern_weight(material, u, v, footprint).astype(np.float32)[:, None]
    return color_a * (1 - weight) + np.asarray(material.color_b, np.float32) * weight


# --- ray casting ---------------------------------------------------------------------------------


def _rotation(shape: Shape) -> np.ndarray:
    return np.asarray(shape.rotation, np.float64)


def _local_interval(shape: Shape, origins: np.ndarray, direction: np.ndarray) -> Interval:
    rotation = _rotation(shape)
    local = rotation.T @ (origins - np.asarray(shape.center)[:, None])
    return KINDS[shape.kind].interval(local, rotation.T @ direction, np.asarray(shape.size))


def _pixel_axes(size: int, crop: Crop | None) -> tuple[np.ndarray, np.ndarray, float]:
    """Scene x of each column, y of each row, and the pixel size in scene units."""
    crop = crop or Crop(size, 0, 0)
    if crop.top < 0 or crop.left < 0 or max(crop.top, crop.left) + size > crop.frame_size:
        raise ValueError(f"crop: a {size}px window does not fit in {crop}")
    pixel = 2.0 / crop.frame_size
    columns = np.arange(crop.left, crop.left + size, dtype=np.float64)
    rows = np.arange(crop.top, crop.top + size, dtype=np.float64)
    return -1.0 + (columns + 0.5) * pixel, 1.0 - (rows + 0.5) * pixel, pixel


def _first_hits(
    scene: Scene, x: np.ndarray, y: np.ndarray, skip: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Per camera ray through (x, y): surface index (planes first, then objects), z of the hit."""
    best_z = np.full(x.shape, -np.inf)
    best = np.full(x.shape, -1, np.int64)
    for index, plane in enumerate(scene.planes):
        n = plane.normal
        z = (plane.offset - n[0] * x - n[1] * y) / n[2]
        nearer = z > best_z
        best_z[nearer], best[nearer] = z[nearer], index
    down = np.array([0.0, 0.0, -1.0])
    for k, shape in enumerate(scene.objects):
        if skip == k + 1:
            continue
        radius, (cx, cy, _) = bounding_radius(shape), shape.center
        near = np.flatnonzero((np.abs(x - cx) <= radius) & (np.abs(y - cy) <= radius))
        if near.size == 0:
            continue
        origins = np.stack([x[near], y[near], np.full(near.size, _CAMERA_Z)])
        lo, hi = _local_interval(shape, origins, down)
        z = np.where(lo <= hi, _CAMERA_Z - lo, -np.inf)
        nearer = z > best_z[near]
        best_z[near[nearer]], best[near[nearer]] = z[nearer], len(scene.planes) + k
    return best, best_z


@dataclass(frozen=True)
class _Surfaces:
    """What camera rays see, one entry per pixel (flattened)."""

    index: np.ndarray  # [N] surface index, planes first
    points: np.ndarray  # [3, N]
    normals: np.ndarray  # [3, N]
    albedo: np.ndarray  # [N, 3] float32
    specular: np.ndarray  # [N]
    shininess: np.ndarray  # [N]
    pixel: float  # pixel size in scene units


def _surfaces(scene: Scene, size: int, crop: Crop | None, skip: int | None) -> _Surfaces:
    xs, ys, pixel = _pixel_axes(size, crop)
    x, y = (grid.ravel() for grid in np.meshgrid(xs, ys))
    index, z = _first_hits(scene, x, y, skip)
    return _describe(scene, np.stack([x, y, z]), index, pixel)


def _describe(scene: Scene, points: np.ndarray, index: np.ndarray, pixel: float) -> _Surfaces:
    """Normals and materials at `points` lying on surfaces `index`."""
    normals = np.empty_like(points)
    albedo = np.empty((index.size, 3), np.float32)
    specular, shininess = np.zeros(index.size), np.ones(index.size)
    for s, surface in enumerate([*scene.planes, *scene.objects]):
        where = np.flatnonzero(index == s)
        if where.size == 0:
            continue
        if isinstance(surface, Plane):
            n, u, v = _plane_frame(surface, points[:, where])
        else:
            n, u, v = _shape_frame(surface, points[:, where])
        normals[:, where] = n
        footprint = pixel / np.maximum(np.abs(n[2]), 0.25)
        albedo[where] = material_albedo(surface.material, u, v, footprint, pixel)
        specular[where] = surface.material.specular
        shininess[where] = surface.material.shininess
    return _Surfaces(index, points, normals, albedo, specular, shininess, pixel)


def _without_object(scene: Scene, surfaces: _Surfaces, object_id: int) -> _Surfaces:
    """`surfaces` with object `object_id` taken away: only the pixels it covered are re-traced."""
    where = np.flatnonzero(surfaces.index == len(scene.planes) + object_id - 1)
    x, y = surfaces.points[0, where], surfaces.points[1, where]
    index, z = _first_hits(scene, x, y, object_id)
    behind = _describe(scene, np.stack([x, y, z]), index, surfaces.pixel)
    merged = {}
    for name in ("index", "points", "normals", "albedo", "specular", "shininess"):
        whole = getattr(surfaces, name).copy()
        if name in ("points", "normals"):  # [3, N]
            whole[:, where] = getattr(behind, name)
        else:
            whole[where] = getattr(behind, name)
        merged[name] = whole
    return _Surfaces(**merged, pixel=surfaces.pixel)


def _plane_frame(plane: Plane, p: np.ndarray) -> tuple[np.ndarray, ...]:
    normal, tangent = np.asarray(plane.normal), np.asarray(plane.tangent)
    n = np.broadcast_to(normal[:, None], p.shape)
    return n, tangent @ p, np.cross(normal, tangent) @ p


def _shape_frame(shape: Shape, p: np.ndarray) -> tuple[np.ndarray, ...]:
    kind, rotation, size = KINDS[shape.kind], _rotation(shape), np.asarray(shape.size)
    local = rotation.T @ (p - np.asarray(shape.center)[:, None])
    local_normal = kind.normal(local, size)
    u, v = kind.uv(local, local_normal, size)
    return rotation @ local_normal, u, v


def _light_reaches(
    scene: Scene, surfaces: _Surfaces, direction: np.ndarray, skip: int | None
) -> np.ndarray:
    """1 where the surface faces the light and no object blocks the shadow ray."""
    facing = direction @ surfaces.normals > 0
    origins = surfaces.points + _SHADOW_OFFSET * surfaces.normals
    # cull in the plane across the light: only points in an object's "light shadow cylinder"
    across = _orthonormal_basis(direction)
    projected = across @ origins
    blocked = np.zeros(facing.shape, bool)
    planes = len(scene.planes)
    for k, shape in enumerate(scene.objects):
        if skip == k + 1:
            continue
        center = np.asarray(shape.center)
        radius = bounding_radius(shape)
        offset = projected - (across @ center)[:, None]
        near_axis = offset[0] ** 2 + offset[1] ** 2 < radius**2
        toward = offset[2] < radius  # the object is not entirely behind the point
        candidates = np.flatnonzero(facing & ~blocked & near_axis & toward)
        candidates = candidates[surfaces.index[candidates] != planes + k]  # convex: no self-shadow
        if candidates.size:
            lo, hi = _local_interval(shape, origins[:, candidates], direction)
            blocked[candidates] = (lo <= hi) & (hi > 0)
    return (facing & ~blocked).astype(np.float32)


def _orthonormal_basis(direction: np.ndarray) -> np.ndarray:
    """Rows: two unit vectors across `direction`, then `direction` itself."""
    helper = np.array([1.0, 0.0, 0.0]) if abs(direction[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    first = np.cross(direction, helper)
    first /= np.linalg.norm(first)
    return np.stack([first, np.cross(direction, first), direction])


def _shade(
    surfaces: _Surfaces, light: DirectionalLight, visibility: np.ndarray, specular: bool
) -> np.ndarray:
    direction = np.asarray(light.direction)
    color = np.asarray(light.color, np.float32)
    n_dot_l = np.maximum(direction @ surfaces.normals, 0.0)
    direct = light.intensity * n_dot_l * visibility + light.ambient
    linear = surfaces.albedo * (direct.astype(np.float32)[:, None] * color)
    if specular:
        shiny = np.flatnonzero((surfaces.specular > 0) & (visibility > 0))
        halfway = _unit((direction + np.array([0.0, 0.0, 1.0]))[:, None])[:, 0]
        n_dot_h = np.maximum(halfway @ surfaces.normals[:, shiny], 0.0)
        highlight = surfaces.specular[shiny] * n_dot_h ** surfaces.shininess[shiny]
        linear[shiny] += (light.intensity * highlight).astype(np.float32)[:, None] * color
    return tonemap(linear)


def render_views(
    scene: Scene,
    size: int,
    lights: Sequence[LightLike],
    remove_object: int | None = None,
    crop: Crop | None = None,
    specular: bool = True,
) -> Views:
    """The scene, less object id `remove_object` (1-based) if given, under each light."""
    surfaces = _surfaces(scene, size, crop, remove_object)
    return _views(scene, surfaces, lights, remove_object, size, specular)


def _views(
    scene: Scene,
    surfaces: _Surfaces,
    lights: Sequence[LightLike],
    removed: int | None,
    size: int,
    specular: bool,
) -> Views:
    images, visibilities = [], []
    for light in map(as_light, lights):
        direction = np.asarray(light.direction, np.float64)
        visibility = _light_reaches(scene, surfaces, direction, removed)
        images.append(_shade(surfaces, light, visibility, specular).reshape(size, size, 3))
        visibilities.append(visibility.reshape(size, size))
    planes = len(scene.planes)
    ids = np.where(surfaces.index >= planes, surfaces.index - planes + 1, 0)
    return Views(
        images=tuple(images),
        visibility=tuple(visibilities),
        normals=surfaces.normals.T.reshape(size, size, 3).astype(np.float32),
        albedo=surfaces.albedo.reshape(size, size, 3),
        object_ids=ids.reshape(size, size).astype(np.int32),
        surface_z=surfaces.points[2].reshape(size, size).astype(np.float32),
    )


def render_with_light(
    scene: Scene, size: int, light: LightLike, crop: Crop | None = None
) -> np.ndarray:
    """The whole scene under `light`."""
    return render_views(scene, size, [light], crop=crop).images[0]


def render_relit_target(
    scene: Scene, size: int, light: LightLike, crop: Crop | None = None
) -> np.ndarray:
    """Ground truth for relighting the target: the target under `light`, the rest as it was
    under the scene's own light (shadows in the rest unchanged)."""
    views = render_views(scene, size, [scene.light, light], crop=crop)
    on_target = (views.object_ids == scene.target)[..., None]
    return np.where(on_target, views.images[1], views.images[0])


def render_passes(
    scene: Scene,
    size: int,
    crop: Crop | None = None,
    specular: bool = True,
    supersample: int = 1,
) -> dict[str, Any]:
    """Every training pass for `scene` (see render_sample).

    supersample: render supersample x finer and box-average (anti-aliased edges); masks then
    hold pixel coverage 0..1 and object_masks the id covering most of each pixel.
    """
    if supersample > 1:
        crop = crop or Crop(size, 0, 0)
        fine_crop = Crop(*(supersample * v for v in (crop.frame_size, crop.top, crop.left)))
        fine = render_passes(scene, size * supersample, fine_crop, specular)
        return {**_box_downsampled(fine, supersample), "crop": crop}
    surfaces = _surfaces(scene, size, crop, None)
    views = _views(scene, surfaces, [scene.light, scene.light2], None, size, specular)
    target = _visible_target(scene, views.object_ids)
    revealed = _without_object(scene, surfaces, target)
    without = _views(scene, revealed, [scene.light], target, size, specular)
    target_mask = views.object_ids == target
    shadow = (without.visibility[0] > views.visibility[0]) & ~target_mask
    return {
        "image": views.images[0],
        "image_light2": views.images[1],
        "light": scene.light.as_dict(),
        "light2": scene.light2.as_dict(),
        "normals": views.normals,
        "albedo": views.albedo,
        "visibility": views.visibility[0],
        "surface_z": views.surface_z,
        "object_masks": views.object_ids,
        "target": target,
        "target_mask": target_mask.astype(np.float32),
        "image_without_target": without.images[0],
        "shadow_mask": shadow.astype(np.float32),
        "curved": scene.objects[target - 1].kind in CURVED_KINDS,
        "crop": crop or Crop(size, 0, 0),
        "scene": scene,
    }


def _box_downsampled(passes: dict[str, Any], factor: int) -> dict[str, Any]:
    def mean(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[0] // factor, image.shape[1] // factor
        blocks = image.reshape(h, factor, w, factor, *image.shape[2:])
        return blocks.mean(axis=(1, 3), dtype=np.float32)

    ids = passes["object_masks"]
    coverage = np.stack([mean((ids == k).astype(np.float32)) for k in range(ids.max() + 1)])
    normals = mean(passes["normals"])
    normals /= np.maximum(np.linalg.norm(normals, axis=2, keepdims=True), 1e-12)
    smoothed = {k: mean(v) for k, v in passes.items() if isinstance(v, np.ndarray) and v.ndim >= 2}
    return {
        **passes,
        **smoothed,
        "normals": normals,
        "object_masks": np.argmax(coverage, axis=0).astype(np.int32),
    }


def _visible_target(scene: Scene, object_ids: np.ndarray, min_fraction: float = 0.002) -> int:
    """The scene's target, or the most visible object when the target is (nearly) hidden."""
    counts = np.bincount(object_ids.ravel(), minlength=len(scene.objects) + 1)
    if counts[scene.target] >= min_fraction * object_ids.size or counts[1:].max() == 0:
        return scene.target
    return int(np.argmax(counts[1:]) + 1)


def render_sample(
    seed: int, size: int = 128, frame_size: int | None = None, supersample: int = 1
) -> dict[str, Any]:
    """One training sample, deterministic in `seed`.

    frame_size: the scene is framed for frame_size pixels and a size x size window of it that
    contains the target is rendered (None: the whole frame at `size`).
    supersample: anti-aliasing factor (see render_passes); 1 = one ray per pixel.
    Keys: image, image_light2 (H x W x 3, 0..1); light, light2 (dicts: direction (3,),
    intensity, ambient, color (3,)); normals (H x W x 3, -1..1); albedo; visibility (of light 1);
    surface_z (z of the visible surface, larger is nearer); object_masks (H x W int32,
    0 = planes); target (object id); target_mask, shadow_mask (H x W float32, 0/1, or
    coverage when supersampled); image_without_target; curved (bool); crop; scene.
    """
    scene = sample_scene(seed)
    crop = None
    if frame_size is not None and frame_size != size:
        crop = crop_around_target(scene, size, frame_size, np.random.default_rng([seed, 1]))
    return render_passes(scene, size, crop, supersample=supersample)


def crop_around_target(scene: Scene, size: int, frame_size: int, rng: np.random.Generator) -> Crop:
    """A random size x size window of the frame holding the target's bounding circle."""
    if frame_size < size:
        raise ValueError(f"frame_size: expected at least size={size}, got {frame_size}")
    shape = scene.objects[scene.target - 1]
    half = frame_size / 2
    col, row = (shape.center[0] + 1) * half - 0.5, (1 - shape.center[1]) * half - 0.5
    radius = bounding_radius(shape) * half
    return Crop(
        frame_size,
        _window_start(rng, row, radius, size, frame_size),
        _window_start(rng, col, radius, size, frame_size),
    )


def _window_start(
    rng: np.random.Generator, center: float, radius: float, size: int, frame: int
) -> int:
    lo = max(0, math.ceil(center + radius - size + 1))
    hi = min(frame - size, math.floor(center - radius))
    if lo > hi:
        return int(np.clip(round(center - size / 2), 0, frame - size))
    return int(rng.integers(lo, hi + 1))


# --- random scenes -------------------------------------------------------------------------------

_KIND_WEIGHTS = {
    "box": 0.25,
    "sphere": 0.15,
    "ellipsoid": 0.15,
    "cylinder": 0.15,
    "cone": 0.15,
    "capsule": 0.15,
}
_OBJECT_PATTERNS = {
    "flat": 0.3,
    "stripes": 0.13,
    "checks": 0.1,
    "noise": 0.15,
    "gradient": 0.07,
    "photo": 0.25,
}
_PLANE_PATTERNS = {
    "flat": 0.2,
    "stripes": 0.08,
    "checks": 0.1,
    "noise": 0.2,
    "gradient": 0.07,
    "photo": 0.35,
}
_WARM, _COOL = np.array([1.0, 0.72, 0.45]), np.array([0.6, 0.78, 1.0])


def _pick(rng: np.random.Generator, weights: Mapping[str, float]) -> str:
    names = list(weights)
    p = np.array([weights[n] for n in names])
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _random_color(rng: np.random.Generator, saturation_max: float = 0.8) -> Vec3:
    hue, sat, val = rng.random(), rng.uniform(0, saturation_max), rng.uniform(0.25, 0.9)
    return colorsys.hsv_to_rgb(hue, sat, val)


def sample_material(rng: np.random.Generator, pattern_weights: Mapping[str, float]) -> Material:
    pattern = _pick(rng, pattern_weights)
    color_a, color_b = _random_color(rng), _random_color(rng)
    frequency = {"stripes": 6.0, "checks": 4.0, "noise": 3.0, "gradient": 1.0, "photo": 0.6}
    base = frequency.get(pattern, 1.0)
    texture = ""
    if pattern == "photo":
        texture = PHOTO_TEXTURES[int(rng.integers(len(PHOTO_TEXTURES)))]
        color_a = tuple(float(c) for c in 1 - rng.uniform(0, 0.25) * rng.random(3))
    matte = rng.random() < 0.35
    return Material(
        pattern=pattern,
        color_a=color_a,
        color_b=color_b,
        frequency=float(base * rng.uniform(0.5, 2.0)),
        angle=float(rng.uniform(0, math.pi)),
        seed=int(rng.integers(2**31)),
        texture=texture,
        offset=(float(rng.random()), float(rng.random())),
        specular=0.0 if matte else float(rng.uniform(0.08, 0.6)),
        shininess=float(np.exp(rng.uniform(math.log(6), math.log(120)))),
    )


def _matte(material: Material) -> Material:
    return replace(material, specular=0.0)


def sample_light(rng: np.random.Generator, ground: Vec3 | None = None) -> DirectionalLight:
    """A light on the hemisphere facing the camera (elevation 5..90 degrees); with a `ground`
    normal, only from above that ground (at least 5 degrees), as a real table top would have."""
    while True:
        azimuth, elevation = rng.uniform(0, 360), rng.uniform(*LIGHT_ELEVATION)
        direction = light_direction(azimuth, elevation)
        if ground is None or np.dot(direction, ground) >= _MIN_LIGHT_SIN:
            break
    return light_from_angles(
        azimuth,
        elevation,
        intensity=float(rng.uniform(*LIGHT_INTENSITY)),
        ambient=float(rng.uniform(*LIGHT_AMBIENT)),
        color=_light_color(rng),
    )


def sample_second_light(
    rng: np.random.Generator,
    first: DirectionalLight,
    ground: Vec3 | None = None,
    min_deg: float = 60.0,
) -> DirectionalLight:
    """A random light (see sample_light) at least `min_deg` away from `first`."""
    first_direction = np.asarray(first.direction)
    while True:
        light = sample_light(rng, ground)
        if np.asarray(light.direction) @ first_direction <= math.cos(math.radians(min_deg)):
            return light


def _light_color(rng: np.random.Generator) -> Vec3:
    tint = _WARM if rng.random() < 0.5 else _COOL
    amount = 0.8 * rng.random() ** 2  # mostly near white
    color = 1 + amount * (tint - 1)
    return tuple(float(c) for c in color / color.max())


def _random_rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q *= np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _axis_rotation(axis: int, angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    i, j = [a for a in range(3) if a != axis]
    m = np.eye(3)
    m[i, i], m[i, j], m[j, i], m[j, j] = c, -s, s, c
    return m


def _sample_size(rng: np.random.Generator, kind: str) -> Vec3:
    u = rng.uniform
    if kind == "sphere":
        r = u(0.12, 0.3)
        return (r, r, r)
    if kind == "ellipsoid":
        return (u(0.08, 0.3), u(0.08, 0.3), u(0.08, 0.3))
    if kind == "box":
        return (u(0.07, 0.25), u(0.07, 0.25), u(0.07, 0.25))
    if kind == "cylinder":
        r = u(0.07, 0.22)
        return (r, r, u(0.08, 0.3))
    if kind == "cone":
        r = u(0.1, 0.25)
        return (r, r, u(0.15, 0.45))
    r = u(0.06, 0.16)
    return (r, r, u(0.06, 0.25))


def _resting_rotation(rng: np.random.Generator, kind: str, ground: np.ndarray) -> np.ndarray:
    """Local z up along the ground normal, or lying on the ground for some kinds."""
    yaw = _axis_rotation(2, rng.uniform(0, 2 * math.pi))
    lying = {"cylinder": 0.4, "capsule": 0.6, "cone": 0.15}.get(kind, 0.0)
    if kind in ("sphere", "ellipsoid"):
        return _random_rotation(rng)
    if rng.random() < lying:
        return ground @ yaw @ _axis_rotation(0, math.pi / 2)
    return ground @ yaw


@dataclass(frozen=True)
class _Layout:
    ground: np.ndarray | None  # columns: x, depth (receding), normal; None when no ground
    ground_offset: float
    wall_z: float | None

    def place(
        self, rng: np.random.Generator, kind: str, size: Vec3, x: float, y: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rotation and centre of an object whose centre shows at image position (x, y)."""
        if self.ground is None:
            rotation = _random_rotation(rng)
            bound = KINDS[kind].bound(np.asarray(size))
            return rotation, np.array([x, y, self.wall_z + bound + rng.uniform(0.03, 0.5)])
        rotation = _resting_rotation(rng, kind, self.ground)
        normal = self.ground[:, 2]
        lift = KINDS[kind].support(rotation.T @ -normal, np.asarray(size))
        foot_y = y - lift * normal[1]
        foot_z = (self.ground_offset - normal[1] * foot_y) / normal[2]
        return rotation, np.array([x, foot_y, foot_z]) + lift * normal


def _sample_layout(rng: np.random.Generator) -> tuple[_Layout, list[Plane]]:
    layout = _pick(rng, {"ground+wall": 0.4, "ground": 0.35, "wall": 0.25})
    wall = Plane(
        (0.0, 0.0, 1.0), 0.0, (1.0, 0.0, 0.0), _matte(sample_material(rng, _PLANE_PATTERNS))
    )
    if layout == "wall":
        return _Layout(None, 0.0, 0.0), [wall]
    tilt = math.radians(rng.uniform(15, 80))  # how far the camera looks down on the ground
    normal = np.array([0.0, math.cos(tilt), math.sin(tilt)])
    depth = np.array([0.0, math.sin(tilt), -math.cos(tilt)])
    frame = np.stack([np.array([1.0, 0.0, 0.0]), depth, normal], axis=1)
    horizon = rng.uniform(0.1, 0.8) if layout == "ground+wall" else 0.0
    offset = float(normal[1] * horizon)  # the ground meets the wall (z = 0) at y = horizon
    material = _matte(sample_material(rng, _PLANE_PATTERNS))
    ground = Plane(tuple(normal.tolist()), offset, (1.0, 0.0, 0.0), material)
    planes = [ground, wall] if layout == "ground+wall" else [ground]
    return _Layout(frame, offset, 0.0 if layout == "ground+wall" else None), planes


def _fits(
    layout: _Layout, center: np.ndarray, bound: float, placed: list[tuple[np.ndarray, float]]
) -> bool:
    if layout.wall_z is not None and center[2] - bound < layout.wall_z + 0.02:
        return False
    if not placed:
        return True
    target_center, target_bound = placed[0]
    for other, other_bound in placed:
        if np.linalg.norm(center - other) < bound + other_bound + 0.01:
            return False
    # keep the target (placed first) mostly in view: nothing in front may cover its middle
    in_front = center[2] > target_center[2]
    near = np.hypot(*(center[:2] - target_center[:2])) < bound + 0.5 * target_bound
    return not (in_front and near)


def sample_scene(seed: int) -> Scene:
    """A random scene: planes, 1-5 resting objects, two lights 60+ degrees apart, a target."""
    rng = np.random.default_rng(seed)
    layout, planes = _sample_layout(rng)
    wanted = int(rng.choice([1, 2, 3, 4, 5], p=[0.15, 0.25, 0.25, 0.2, 0.15]))
    shapes: list[Shape] = []
    placed: list[tuple[np.ndarray, float]] = []
    for attempt in range(wanted * 25):
        if len(shapes) == wanted:
            break
        kind = _pick(rng, _KIND_WEIGHTS)
        size = _sample_size(rng, kind)
        if not shapes and attempt >= 20:  # a lone target that will not fit: shrink it
            size = tuple(0.6 * s for s in size)
        span = 0.7 if not shapes else 0.85
        x, y = rng.uniform(-span, span, size=2)
        rotation, center = layout.place(rng, kind, size, float(x), float(y))
        bound = KINDS[kind].bound(np.asarray(size))
        if not _fits(layout, center, bound, placed):
            continue
        placed.append((center, bound))
        material = sample_material(rng, _OBJECT_PATTERNS)
        shapes.append(Shape(kind, tuple(center.tolist()), _rows(rotation), size, material))
    if not shapes:
        raise RuntimeError(f"sample_scene({seed}): could not place any object")
    order = rng.permutation(len(shapes))
    ground = None if layout.ground is None else planes[0].normal
    light = sample_light(rng, ground)
    return Scene(
        planes=tuple(planes),
        objects=tuple(shapes[i] for i in order),
        light=light,
        light2=sample_second_light(rng, light, ground),
        target=int(np.flatnonzero(order == 0)[0]) + 1,
    )


def _rows(matrix: np.ndarray) -> tuple[Vec3, Vec3, Vec3]:
    return tuple(tuple(float(v) for v in row) for row in matrix)


# --- script: timing and an example grid --------------------------------------------------------


def example_grid(seeds: Sequence[int], size: int = 128, frame_size: int | None = None):
    """Rows of image | image_light2 | image_without_target | normals | albedo (uint8)."""
    rows = []
    for seed in seeds:
        sample = render_sample(seed, size, frame_size)
        tiles = [
            sample["image"],
            sample["image_light2"],
            sample["image_without_target"],
            sample["normals"] * 0.5 + 0.5,
            sample["albedo"],
        ]
        rows.append(np.concatenate(tiles, axis=1))
    return (np.concatenate(rows, axis=0).clip(0, 1) * 255).round().astype(np.uint8)


def _time_per_sample(size: int, count: int, frame_size: int | None, supersample: int) -> float:
    import time

    for name in PHOTO_TEXTURES:  # load every texture first: loading is a one-off cost
        texture_levels(name)
    start = time.perf_counter()
    for seed in range(1, count + 1):
        render_sample(seed, size, frame_size, supersample)
    return (time.perf_counter() - start) / count


def main(argv: Sequence[str]) -> None:
    from PIL import Image

    out = Path(argv[0]) if argv else Path("/tmp/render_examples.png")
    for size, frame, supersample in ((128, None, 1), (128, 256, 1), (256, None, 1), (128, 256, 2)):
        seconds = _time_per_sample(size, 40 if size == 128 else 20, frame, supersample)
        setting = f"size {size} frame {frame or size} supersample {supersample}"
        print(f"{setting}: {seconds * 1000:.1f} ms per sample")
    Image.fromarray(example_grid(range(8), 128, frame_size=256)).save(out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main(sys.argv[1:])


def depth_map(surface_z: np.ndarray) -> np.ndarray:
    """The renderer's surface z as a depth estimator would give it: 0..1, white = near."""
    low, high = float(surface_z.min()), float(surface_z.max())
    return (surface_z - low) / max(high - low, 1e-6)
