"""The dominant light of an image region, from its normals and shading.

Lambertian fit on luminance: Y = a + w . n where n . w > 0 (attached shadow: ambient only
there), solved by least squares and re-solved with the lit set updated (as the benchmark's
metric does). direction = w / |w|, intensity = |w|, ambient = a, in the region's own units:
the region's albedo scales both, so only their ratio and the direction are the light's.

The confidence says whether the fit can be believed. It is the product of
- coverage: enough usable pixels (neither clipped nor black);
- spread: the normals must point different ways (a flat region cannot tell a direction), from
  the smallest eigenvalue of their covariance in the directions that matter;
- fit: the share of the luminance variance the model explains (R^2);
- contrast: the directional term must stand out of the ambient (a featureless region has none).

A scene around a pasted object has a depth map but few normals (floor, walls): there
`estimate_scene_light` also scores the shadows the depth map's shapes cast (below).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from ..conditioning.composite import size_within
from .light import Light, angles_from_direction
from .normals import heights_from_depth, normals_from_heights
from .progress import Tick, advance
from .shading import cast_shadows

LUMA = (0.2126, 0.7152, 0.0722)
CLIPPED = 0.98
BLACK = 0.02
MIN_PIXELS = 30
FULL_COVERAGE = 400  # pixels at which coverage stops limiting the confidence
FULL_SPREAD = 0.05  # normal covariance eigenvalue at which spread stops limiting it
FULL_CONTRAST = 0.25  # intensity / (ambient + intensity) at which contrast stops limiting it
ITERATIONS = 8
FULL_TRUST = 0.25  # confidence from which the fitted light is believed in full
FALLBACK = (0.0, 0.0, 1.0)  # reported (with confidence 0) when nothing can be fitted


@dataclass(frozen=True)
class LightEstimate:
    light: Light  # direction, intensity, ambient (region units), white
    confidence: Tensor  # [B] in 0..1
    explained: Tensor  # [B] R^2 of the fit
    pixels: Tensor  # [B] usable pixels

    def summary(self, index: int = 0) -> str:
        azimuth, elevation = angles_from_direction(self.light.direction[index])
        return (
            f"azimuth {float(azimuth):.1f} deg, elevation {float(elevation):.1f} deg, "
            f"intensity {float(self.light.intensity[index]):.3f}, "
            f"ambient {float(self.light.ambient[index]):.3f}, "
            f"confidence {float(self.confidence[index]):.2f} "
            f"(R^2 {float(self.explained[index]):.2f}, {int(self.pixels[index])} px)"
        )


def luminance(image: Tensor) -> Tensor:
    return (image[..., :3].float() * image.new_tensor(LUMA).float()).sum(-1)


def _solve(normals: Tensor, values: Tensor, lit: Tensor, weight: Tensor) -> Tensor:
    design = torch.cat([normals * lit[:, None], torch.ones_like(values)[:, None]], dim=1)
    root = weight.sqrt()[:, None].double()
    solution = torch.linalg.lstsq(design.double() * root, values.double()[:, None] * root)
    return solution.solution[:, 0].float()


def _robust_weight(residual: Tensor) -> Tensor:
    """Cauchy weights: texture edges, highlights and cast shadows are outliers of the fit."""
    scale = 1.4826 * (residual - residual.median()).abs().median().clamp_min(1e-4)
    return 1.0 / (1.0 + (residual / (2.0 * scale)) ** 2)


def _fit_one(normals: Tensor, values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(w [3], a, R^2) for one region's normals [N,3] and luminance [N]."""
    lit = torch.ones_like(values, dtype=torch.bool)
    weight = torch.ones_like(values)
    solution = _solve(normals, values, lit, weight)
    for _ in range(ITERATIONS):
        lit = normals @ solution[:3] > 0
        if int(lit.sum()) < 4:
            break
        residual = values - (normals @ solution[:3]).clamp_min(0.0) - solution[3]
        weight = _robust_weight(residual)
        solution = _solve(normals, values, lit, weight)
    predicted = (normals @ solution[:3]).clamp_min(0.0) + solution[3]
    variance = values.var(unbiased=False).clamp_min(1e-8)
    explained = (1.0 - ((values - predicted) ** 2).mean() / variance).clamp(0.0, 1.0)
    return solution[:3], solution[3], explained


def _spread(normals: Tensor) -> Tensor:
    """The middle eigenvalue of the normals' covariance: 0 for a flat region (one normal) or a
    crease (normals along one line), which cannot fix a 3-D direction."""
    centred = normals - normals.mean(dim=0)
    covariance = centred.T @ centred / max(1, len(normals))
    return torch.linalg.eigvalsh(covariance.double())[1].clamp_min(0.0).float()


def estimate_light(image: Tensor, normals: Tensor, mask: Tensor) -> LightEstimate:
    """The light of the region mask > 0.5 of each image [B,H,W,3] with normals [B,H,W,3]."""
    values = luminance(image)
    rows = [_estimate_one(values[i], normals[i].float(), mask[i] > 0.5) for i in range(len(image))]
    directions, intensities, ambients, confidences, explained, pixels = map(
        torch.stack, zip(*rows, strict=True)
    )
    light = Light(
        direction=directions,
        intensity=intensities,
        ambient=ambients,
        color=torch.ones(len(image), 3),
    )
    return LightEstimate(light, confidences, explained, pixels)


def light_trust(estimate: LightEstimate) -> Tensor:
    """[B] 0..1: how far the fitted light is believed (FULL_TRUST): the re-shading divides it
    out, and the shape from shading reads the subject's shape from it, this far."""
    return (estimate.confidence / FULL_TRUST).clamp(0.0, 1.0)


def _estimate_one(values: Tensor, normals: Tensor, region: Tensor):
    usable = region & (values < CLIPPED) & (values > BLACK)
    count = int(usable.sum())
    if count < MIN_PIXELS:
        return _unknown(count)
    n, y = normals[usable], values[usable]
    w, ambient, explained = _fit_one(n, y)
    intensity = w.norm()
    if float(intensity) < 1e-6:
        return _unknown(count, float(explained))
    direction = w / intensity
    ambient = ambient.clamp_min(0.0)
    coverage = min(1.0, count / FULL_COVERAGE)
    spread = (_spread(n) / FULL_SPREAD).clamp(max=1.0)
    contrast = (intensity / (intensity + ambient).clamp_min(1e-6) / FULL_CONTRAST).clamp(max=1.0)
    confidence = coverage * spread * explained * contrast
    return (
        direction,
        intensity,
        ambient,
        confidence.float(),
        explained.float(),
        torch.tensor(float(count)),
    )


def _unknown(count: int, explained: float = 0.0):
    return (
        torch.tensor(FALLBACK),
        torch.tensor(0.0),
        torch.tensor(0.0),
        torch.tensor(0.0),
        torch.tensor(explained),
        torch.tensor(float(count)),
    )


# --- the scene's light: shading and cast shadows of a depth map --------------------------------

SCENE_WORK_SIDE = 96  # the search runs at this longer side: shadows need shape, not detail
SCENE_COARSE_SIDE = 48  # every candidate is scored at this side first (see _scene_one)
# The best this many (direction, relief) pairs are scored again at SCENE_WORK_SIDE. Rendered
# scenes (30, the light outside the mask): the full search at 96 px mean error 44.4 deg,
# median 27.5, the confident half's median 15.4; coarse 48 px then 48 pairs at 96: 43.7, 33.5
# (one scene crosses the middle) and 15.4, in 38 % of the time (then 16 pairs: 44.4, 33.5,
# 17.6).
SCENE_REFINED = 16
# The shadow march samples the nearest pixel: a third of bilinear's time, the same ranking (30
# rendered scenes: median error 33.5 deg both, confident half 15.4 both, mean 43.2 -> 44.2 with
# 16 refined, not 48; template 3's scene: the same light, 0.6-0.9 -> 0.4 s).
SCENE_SAMPLE = "nearest"
SCENE_RELIEFS = (0.25, 0.5, 1.0, 2.0)  # a user's depth map has no scale: the fit picks one
SCENE_DIRECTIONS = 100  # candidate directions over the hemisphere facing the viewer
SCENE_MIN_ELEVATION_SIN = 0.05
SCENE_FAR_COS = 0.9  # candidates beyond ~25 degrees of the best one measure its margin
FULL_MARGIN = 0.15  # relative loss margin at which the margin stops limiting the confidence
IRLS_ROUNDS = 3


def hemisphere_directions(count: int) -> Tensor:
    """`count` unit vectors spread evenly (a Fibonacci spiral) over z >= 0.05."""
    index = torch.arange(count, dtype=torch.float64) + 0.5
    z = SCENE_MIN_ELEVATION_SIN + (1.0 - SCENE_MIN_ELEVATION_SIN) * index / count
    phi = index * math.pi * (3.0 - math.sqrt(5.0))
    radius = (1.0 - z * z).sqrt()
    return torch.stack([radius * phi.cos(), radius * phi.sin(), z], dim=1).float()


def estimate_scene_light(
    image: Tensor, depth: Tensor, mask: Tensor, tick: Tick = None
) -> LightEstimate:
    """The light of the scene region mask > 0.5 of each image [B,H,W,3], from a depth map
    [B,H,W] of the whole image (0..1, white = near, any estimator's).

    Why not the Lambertian fit alone: a scene is mostly floor and walls, whose few normals
    cannot fix a direction, while the shadows the objects cast on them can. Every candidate
    direction (and depth scale: a depth estimator's map has none) is scored by how well
    ambient + s * visibility * max(0, n . l) explains the luminance, with visibility the cast
    shadows of the depth map's heights, robustly (texture and highlights are outliers). The
    confidence is the loss margin of the best candidate over every candidate more than 25
    degrees away (in the coarse pass, where all are scored), times the coverage: it falls
    where the scene cannot tell one light from another (flat, featureless, shadowless or tiny
    regions). tick: called scene_light_ticks(B) times in all, one per depth scale tried and one
    for the refinement."""
    values = luminance(image)
    rows = [_scene_one(values[i], depth[i].float(), mask[i] > 0.5, tick) for i in range(len(image))]
    directions, intensities, ambients, confidences, explained, pixels = map(
        torch.stack, zip(*rows, strict=True)
    )
    light = Light(directions, intensities, ambients, torch.ones(len(image), 3))
    return LightEstimate(light, confidences, explained, pixels)


def scene_light_ticks(batch: int) -> int:
    """How many times estimate_scene_light calls its tick for a batch of `batch` images."""
    return batch * (len(SCENE_RELIEFS) + 1)


@dataclass(frozen=True)
class _SceneSamples:
    """The scene at one working size: luminance and unit-relief heights, and the usable pixels."""

    values: Tensor  # [h,w]
    unit_heights: Tensor  # [1,h,w]
    usable: Tensor  # [h,w] bool

    @classmethod
    def at(cls, values: Tensor, depth: Tensor, region: Tensor, side: int) -> _SceneSamples:
        size = size_within(*values.shape, side)
        small = F.interpolate(
            torch.stack([values, depth, region.float()])[None], size=size, mode="area"
        )[0]
        values, depth, region = small[0], small[1], small[2] > 0.5
        usable = region & (values < CLIPPED) & (values > BLACK)
        return cls(values, heights_from_depth(depth[None], 1.0), usable)

    @property
    def count(self) -> int:
        return int(self.usable.sum())

    def shades(
        self, pairs: list[tuple[int, Tensor]], tick: Tick = None, sample: str = "bilinear"
    ) -> Tensor:
        """[K,N] visibility x Lambert over the usable pixels, for each (relief index,
        directions [k,3]) in `pairs`, rows in that order; one tick per pair. sample: the
        shadow march's (cast_shadows)."""
        rows = []
        for relief, directions in pairs:
            heights = self.unit_heights * SCENE_RELIEFS[relief]
            normals = normals_from_heights(heights)[0]
            lights = Light(
                directions,
                torch.ones(len(directions)),
                torch.zeros(len(directions)),
                torch.ones(len(directions), 3),
            )
            visible = cast_shadows(heights.expand(len(directions), -1, -1), lights, sample=sample)
            lambert = (normals @ directions.T).clamp_min(0.0).permute(2, 0, 1)
            rows.append((visible * lambert)[:, self.usable])
            advance(tick)
        return torch.cat(rows)


def _scene_one(values: Tensor, depth: Tensor, region: Tensor, tick: Tick = None):
    """Every (direction, relief) candidate scored at SCENE_COARSE_SIDE, the SCENE_REFINED best
    again at SCENE_WORK_SIDE: cast shadows cost the cube of the side, and the coarse ranking
    already holds the answer (a full search at 96 px took 3 s of template 3's CPU)."""
    fine = _SceneSamples.at(values, depth, region, SCENE_WORK_SIDE)
    if fine.count < MIN_PIXELS:
        advance(tick, len(SCENE_RELIEFS) + 1)
        return _unknown(fine.count)
    coarse = _SceneSamples.at(values, depth, region, SCENE_COARSE_SIDE)
    if coarse.count < MIN_PIXELS:
        coarse = fine  # a small region: searched at the working side alone
    candidates = hemisphere_directions(SCENE_DIRECTIONS)
    every = [(relief, candidates) for relief in range(len(SCENE_RELIEFS))]
    coarse_shades = coarse.shades(every, tick, SCENE_SAMPLE)
    coarse_loss, _, _ = _robust_line_fits(coarse_shades, coarse.values[coarse.usable])
    if not bool(torch.isfinite(coarse_loss).any()):
        advance(tick)
        return _unknown(fine.count)
    best_coarse = coarse_loss.argsort()[:SCENE_REFINED].tolist()
    count = len(candidates)
    kept, pairs = [], []
    for relief in range(len(SCENE_RELIEFS)):  # one shadow march per relief
        indices = [index for index in best_coarse if index // count == relief]
        if indices:
            kept += indices
            pairs.append((relief, candidates[[index % count for index in indices]]))
    shade = fine.shades(pairs, sample=SCENE_SAMPLE)
    advance(tick)
    y = fine.values[fine.usable]
    loss, scale, offset = _robust_line_fits(shade, y)
    best = int(loss.argmin())
    if not bool(torch.isfinite(loss[best])):
        return _unknown(fine.count)
    direction = candidates[kept[best] % count]
    far = (candidates @ direction < SCENE_FAR_COS).repeat(len(SCENE_RELIEFS))
    own = coarse_loss[kept[best]]
    margin = (coarse_loss[far].min() - own) / own.clamp_min(1e-6)
    coverage = min(1.0, fine.count / FULL_COVERAGE)
    confidence = coverage * (margin / FULL_MARGIN).clamp(0.0, 1.0)
    predicted = offset[best] + scale[best] * shade[best]
    variance = y.var(unbiased=False).clamp_min(1e-8)
    explained = (1.0 - ((y - predicted) ** 2).mean() / variance).clamp(0.0, 1.0)
    return (
        direction,
        scale[best].clamp_min(0.0),
        offset[best].clamp_min(0.0),
        confidence.float(),
        explained.float(),
        torch.tensor(float(fine.count)),
    )


def _robust_line_fits(shade: Tensor, values: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """For each row of shade [K,N]: values ~ offset + scale * shade, fitted with Cauchy weights;
    (loss [K] on one common residual scale, so rows compare; inf where scale <= 0, scale,
    offset)."""
    weight = torch.ones_like(shade)
    for _ in range(IRLS_ROUNDS):
        sw, sx, sy = weight.sum(1), (weight * shade).sum(1), (weight * values).sum(1)
        sxx, sxy = (weight * shade * shade).sum(1), (weight * shade * values).sum(1)
        scale = (sw * sxy - sx * sy) / (sw * sxx - sx * sx).clamp_min(1e-9)
        offset = (sy - scale * sx) / sw.clamp_min(1e-9)
        residual = values - offset[:, None] - scale[:, None] * shade
        spread = 1.4826 * residual.abs().median(dim=1, keepdim=True).values.clamp_min(1e-4)
        weight = 1.0 / (1.0 + (residual / (2.0 * spread)) ** 2)
    common = 1.4826 * residual.abs().median().clamp_min(1e-4)
    loss = torch.log1p((residual / (2.0 * common)) ** 2).mean(dim=1)
    return torch.where(scale > 0, loss, torch.full_like(loss, math.inf)), scale, offset
