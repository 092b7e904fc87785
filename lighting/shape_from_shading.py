"""Shape from shading on the prior: the photo's own shading corrects the estimated normals.

A silhouette dome or a face mesh guesses the subject's shape; the photo, lit by the light that
Estimate Light fits, says how far each lit pixel turns from that light: its luminance over the
local albedo is ambient + (1 - ambient) n.l. Each normal is turned, in the plane it spans with
the light, to the angle its shading says, and keeps the prior's direction around the light
(which one image cannot tell). A pixel in its attached shadow says only that it faces away:
a prior facing the light is turned to the terminator, one facing away stays (uncorrected, a
face mesh lit on a dark half-face cut the old-shadow fill into patches). The albedo is the
photo over the prior's shading, averaged over the lit pixels at ALBEDO_SCALE of the subject's
side: finer changes of brightness are read as shape (a painted eye is taken for a dent; the
blend weight and the smoothing keep that mild). Only the correction is smoothed: a face mesh
keeps its features.

On objects the correction alternates with the surface nearest the normals (SURFACE_ROUNDS):
the shading says how far a normal turns from the light, a surface's slopes along one direction
say how it turns along the other.

Measured against photometric stereo on the shared real photos (median degrees over the
subject, the median over its photos, prior -> one correction -> with the surface rounds): cat
29.6 -> 26.7 -> 24.4, horse 31.0 -> 27.2 -> 23.9, owl 37.6 -> 33.0 -> 24.9; the Yale face
16.8 -> 16.5 (one correction: people get no rounds). Tried: halving the dome's downward normals
(objects stand on something): normals a further 2-4 degrees better, the horse's relight 0.5 dB
worse; not taken.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..conditioning.filters import masked_average
from .light_estimate import LightEstimate, estimate_light, light_trust, luminance
from .normals import integrable_normals

SHADING_WEIGHT = 0.7  # how far a lit pixel's normal moves to the angle its shading says
ALBEDO_SCALE = 0.08  # of the subject's side: brightness changes finer than this are shape
NORMAL_SMOOTHING = 3.0  # px: the corrected normals' pixel noise smoothed out
ROUNDS = 3  # albedo and normals re-read from each other
IN_SHADOW = 0.05  # n.l read below this: the pixel is in its attached shadow
MIN_LIT = 0.2  # n.l from which a pixel's prior shading is trusted to read the albedo
MIN_LIT_SHARE = 0.05  # of a pixel's albedo neighbourhood lit: below, its albedo is unknown
DARK = 0.02  # linear luminance below which a pixel does not tell the albedo
CLIPPED = 0.97  # linear luminance from which a pixel may be clipped: its shading is unread
WORK_SIDE = 384  # px: the correction is read at most this size a side and scaled up
MIN_TILT = 0.05  # a prior normal this close to the light has no direction around it
# On objects the correction and a surface alternate: each round corrects the normals by the
# shading, then takes the surface nearest to them (normals.integrable_normals). One image's
# shading tells only how far each normal turns from the light, not around it; a surface's turns
# along one direction tell those along the other. Real photos against photometric stereo (median
# degrees, 4 photos per subject; one correction -> 8 rounds): cat 26.6 -> 24.4, horse
# 27.5 -> 23.9, owl 33.0 -> 24.9; re-shading alone (40 pairs) cat +0.65 -> +1.74 dB, horse
# +0.61 -> +0.96, owl +0.75 -> +0.89. Not on people: hair, clothes and make-up are read as
# shape, and the rounds compound it (the look benchmark's portraits: a hard line down a girl's
# face, a mottled forehead; colour 1.93 -> 2.05), though the grey Yale face gained 0.6 dB; on
# the face mesh alone as well (docs/relighting.md).
SURFACE_ROUNDS = 8
MIN_FACING = 0.3  # a rim's normals are taken to face the viewer at least this much (z)


def corrected_by_shading(
    linear: Tensor, normals: Tensor, core: Tensor, surface: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """(normals [B,H,W,3] corrected by the photo's shading (linear [B,H,W,3]) under the light
    fitted to them inside `core` [B,H,W] bool, as far as that light is believed; that belief
    [B] 0..1). surface [B] bool: the images whose correction alternates with a surface
    (SURFACE_ROUNDS; subject.estimated_geometry says which), else one correction. Read on a
    copy at most WORK_SIDE a side (the correction is smooth), added to the full-size normals."""
    height, width = core.shape[1:]
    scale = min(1.0, WORK_SIDE / max(height, width))
    size = (max(1, round(height * scale)), max(1, round(width * scale)))
    small_linear = _resized(linear, size)
    small_normals = F.normalize(_resized(normals, size), dim=-1)
    small_core = _resized(core.float()[..., None], size)[..., 0] > 0.5
    luma = luminance(small_linear)
    estimate = estimate_light(small_linear, small_normals, small_core.float())
    trust = light_trust(estimate)
    corrected = shading_corrected(luma, small_normals, small_core, estimate, trust)
    if surface is not None and bool(surface.any()):
        rounded, refitted = surface_corrected(small_linear, luma, corrected, small_core)
        corrected = torch.where(surface[:, None, None, None], rounded, corrected)
        trust = torch.where(surface, torch.maximum(trust, refitted), trust)
    change = _resized(corrected - small_normals, (height, width))
    return torch.where(core[..., None], F.normalize(normals + change, dim=-1), normals), trust


def surface_corrected(
    linear: Tensor, luma: Tensor, corrected: Tensor, core: Tensor
) -> tuple[Tensor, Tensor]:
    """(normals [B,H,W,3] once `corrected` by the shading, taken to the surface nearest them and
    corrected again under the light refitted to them, SURFACE_ROUNDS times in all, the last a
    surface's; the belief [B] in the last light fitted). luma: luminance(linear). A light no
    fit believed on the prior may be read on its surface."""
    trust = linear.new_zeros(len(linear))
    for _ in range(SURFACE_ROUNDS - 1):
        corrected = integrable_normals(corrected, core, MIN_FACING)
        estimate = estimate_light(linear, corrected, core.float())
        trust = light_trust(estimate)
        corrected = shading_corrected(luma, corrected, core, estimate, trust)
    return integrable_normals(corrected, core, MIN_FACING), trust


def _resized(values: Tensor, size: tuple[int, int]) -> Tensor:
    """[B,H,W,C] resized to `size` (area when shrinking, bilinear when growing)."""
    if tuple(values.shape[1:3]) == size:
        return values
    moved = values.movedim(-1, 1)
    if size[0] < values.shape[1]:
        return F.interpolate(moved, size=size, mode="area").movedim(1, -1)
    return F.interpolate(moved, size=size, mode="bilinear", align_corners=False).movedim(1, -1)


def local_albedo(albedo: Tensor, lit: Tensor, side: Tensor) -> tuple[Tensor, Tensor]:
    """([B,H,W] the albedo averaged over the lit pixels at ALBEDO_SCALE of each subject's
    side, [B,H,W] bool: where lit pixels are near enough to tell it)."""
    levels, known = [], []
    for one, weight, size in zip(albedo, lit, side, strict=True):
        level, density = masked_average(one[None, None], weight[None], ALBEDO_SCALE * float(size))
        levels.append(level[0, 0])
        known.append(density[0] > MIN_LIT_SHARE)
    return torch.stack(levels), torch.stack(known)


def turned_to(prior: Tensor, direction: Tensor, cosine: Tensor) -> Tensor:
    """[B,H,W,3]: each prior normal turned, in the plane it spans with the light `direction`
    [B,3], to `cosine` [B,H,W] with the light; where the prior is the light, itself."""
    along = (prior * direction[:, None, None]).sum(-1, keepdim=True)
    across = prior - along * direction[:, None, None]
    size = across.norm(dim=-1, keepdim=True)
    across = across / size.clamp_min(1e-6)
    c = cosine.clamp(-1.0, 1.0)[..., None]
    turned = c * direction[:, None, None] + (1 - c * c).clamp_min(0.0).sqrt() * across
    return torch.where(size > MIN_TILT, turned, prior)


def shading_corrected(
    luma: Tensor, prior: Tensor, core: Tensor, estimate: LightEstimate, trust: Tensor
) -> Tensor:
    """Normals [B,H,W,3]: `prior` inside `core` [B,H,W] bool corrected by the photo's shading
    (luma [B,H,W], linear) under the fitted light, as far as it is trusted (`trust` [B] 0..1)."""
    direction = F.normalize(estimate.light.direction.to(prior), dim=-1)
    total = (estimate.light.ambient + estimate.light.intensity).clamp_min(1e-6)
    ambient = (estimate.light.ambient / total).to(prior)[:, None, None]
    side = core.flatten(1).sum(1).float().clamp_min(1).sqrt()
    readable = core & (luma < CLIPPED)
    weight = (SHADING_WEIGHT * trust.to(prior))[:, None, None]
    normals = prior
    for _ in range(ROUNDS):
        normals = _corrected_once(
            luma, prior, normals, core, readable, weight, direction, ambient, side
        )
    return normals


def _corrected_once(luma, prior, normals, core, readable, weight, direction, ambient, side):
    cosine = (normals * direction[:, None, None]).sum(-1).clamp_min(0.0)
    shading = ambient + (1 - ambient) * cosine
    lit = (readable & (cosine > MIN_LIT) & (luma > DARK)).float()
    albedo, known = local_albedo(luma / shading.clamp_min(MIN_LIT), lit, side)
    said = (luma / albedo.clamp_min(1e-4) - ambient) / (1 - ambient).clamp_min(1e-6)
    # a pixel in shadow says only that it faces away: a prior facing the light turns to the
    # terminator, one already facing away stays
    facing = (prior * direction[:, None, None]).sum(-1)
    said = torch.where(said < IN_SHADOW, facing.clamp_max(0.0), said.clamp_max(1.0))
    turned = turned_to(prior, direction, said)
    usable = (readable & known).float() * weight
    # the correction is smoothed, not the prior: a face mesh keeps its features
    change = usable[..., None] * (turned - prior)
    change = masked_average(change.movedim(-1, 1), core.float(), NORMAL_SMOOTHING)[0]
    change = change.movedim(1, -1)
    return torch.where(core[..., None], F.normalize(prior + change, dim=-1), prior)
