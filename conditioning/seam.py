"""Seam matching: the repainted region is brought to its surroundings' tone and colour at the
mask's edge, so no edge shows where it is pasted back (the top complaint about crop-and-stitch
packs: a colour step around every crop).

The model regenerates its whole crop; just outside the repaint region (where the original is
kept) its answer should equal the original: their difference there is the model's tone and
colour drift. In relight mode the region's own rim, where the photo there looks like its
surroundings (the mask grown around the subject), should also continue the photo; re-shading
the whole mask as the subject darkens or tints it into a halo. Where the rim is the subject's
own edge (a tight mask) it keeps its new light. The difference on these rings is spread
smoothly over the region (local averages on the rings, carried inward by push-pull) and added:
in full for fill (the whole hole is new and should match; under its mask the original is the
removed object, so only the outer ring counts), fading within a few pixels of the edge for
relight (the subject keeps its new light).
"""

from __future__ import annotations

import numpy as np
import torch
from scipy import ndimage

from .filters import gaussian_blur
from .mask import grow_mask
from .prefill import push_pull_fill

RING = 6  # px outside the region's edge where drift is measured
INNER_RING = 3  # relight: px inside the edge that should continue the surroundings
SURROUNDINGS_TOLERANCE = 0.1  # RGB distance at which a rim pixel stops counting as surroundings
FADE = 4.0  # relight: px over which the correction fades into the region's solid part


def _solid(mask: torch.Tensor) -> torch.Tensor:
    """The region's solid part (mask == 1), or where it is set at all for a mask never 1."""
    solid = mask >= 1.0
    has_solid = solid.flatten(1).any(dim=1)[:, None, None]
    return torch.where(has_solid, solid, mask > 0)


def rings(mask: torch.Tensor, fill: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(outer, inner) [B, H, W] bool: where the answer should equal the original. fill: the
    kept pixels (mask == 0) within RING px of the region; no inner ring (under the mask is the
    removed object). relight: within RING px outside the region's solid part (its feathered
    edge, the photo beyond), and within INNER_RING px inside it."""
    if fill:
        region = (mask > 0).to(torch.float32)
        return (grow_mask(region, RING) > 0) & (mask <= 0), None
    solid = _solid(mask).to(torch.float32)
    outer = (grow_mask(solid, RING) > 0) & (solid <= 0)
    inner = (solid > 0) & (grow_mask(solid, -INNER_RING) <= 0)
    return outer, inner


def edge_fade(mask: torch.Tensor) -> torch.Tensor:
    """[B, H, W] 0..1: 1 where the region is soft (its feathered edge) or within INNER_RING px
    of its edge, then falling off exponentially over FADE px into its solid part."""
    fades = []
    for solid in _solid(mask).cpu().numpy():
        distance = ndimage.distance_transform_edt(solid) if solid.any() else np.zeros(solid.shape)
        beyond = np.maximum(distance - INNER_RING, 0.0)
        fades.append(torch.from_numpy(np.exp(-beyond / FADE)).float())
    return torch.stack(fades).to(mask.device)


def spread(drift: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """drift [B,C,H,W] averaged locally over the `known` [B,H,W] pixels only (normalised
    convolution: texture averages out, nothing from outside the ring mixes in), then carried
    everywhere else by push-pull."""
    weight = known[:, None].to(drift.dtype)
    sigma = RING / 2.0
    coverage = gaussian_blur(weight, sigma)
    local = gaussian_blur(drift * weight, sigma) / coverage.clamp_min(1e-6)
    valid = (coverage > 1e-3).to(drift.dtype)
    return push_pull_fill(local * valid, valid)


def like_surroundings(original: torch.Tensor, outer: torch.Tensor) -> torch.Tensor:
    """[B,H,W] 0..1: how much each pixel of the photo looks like the surroundings just outside
    the region (its colour against theirs, carried inward). 1 on a grown mask's background rim,
    0 on the subject's own edge: only the first should continue the photo."""
    colours = gaussian_blur(original.movedim(-1, 1).float(), 2.0)  # texture is not a change
    surroundings = spread(colours, outer)
    distance = ((colours - surroundings) ** 2).sum(dim=1)
    return torch.exp(-distance / SURROUNDINGS_TOLERANCE**2)


def match_seam(
    generated: torch.Tensor, original: torch.Tensor, mask: torch.Tensor, fill: bool
) -> torch.Tensor:
    """generated [B,H,W,3] matched to original [B,H,W,3] at the edge of mask [B,H,W] (soft,
    1 = repaint). Images with no ring to measure from come back unchanged."""
    outer, inner = rings(mask, fill)
    has_ring = outer.flatten(1).any(dim=1)
    if inner is not None:
        has_ring &= inner.flatten(1).any(dim=1)
    if not bool(has_ring.any()):
        return generated
    drift = (original - generated).movedim(-1, 1).float()
    always = torch.ones_like(outer)
    correction = spread(drift, torch.where(has_ring[:, None, None], outer, always))
    strength = torch.ones_like(mask) if fill else edge_fade(mask)
    if inner is not None:  # relight: inside the solid part, only its rim's surroundings count
        like = like_surroundings(original, outer)
        rim = inner & (like > 0.5)
        inside = spread(drift, torch.where(rim.flatten(1).any(1)[:, None, None], rim, always))
        solid = _solid(mask)
        correction = torch.where(solid[:, None], inside * like[:, None], correction)
    strength = strength * has_ring[:, None, None].to(strength.dtype)
    correction = correction.movedim(1, -1) * strength[..., None]
    return (generated + correction.to(generated)).clamp(0.0, 1.0)
