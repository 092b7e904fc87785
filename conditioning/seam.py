"""Seam matching: the repainted region is brought to its surroundings' tone and colour at the
mask's edge, so no edge shows where it is pasted back (the top complaint about crop-and-stitch
packs: a colour step around every crop).

The model regenerates its whole crop; just outside the repaint region (where the original is
kept) its answer should equal the original. Their difference there is the model's tone and
colour drift. It is spread smoothly over the region (push-pull from the ring, then blurred) and
subtracted: in full for fill (the whole hole is new and should match), fading with distance
from the edge for relight (the subject keeps its new light; only the edge is matched).
"""

from __future__ import annotations

import torch
from scipy import ndimage

from .filters import gaussian_blur
from .mask import grow_mask
from .prefill import push_pull_fill

RING = 6  # px outside the repaint region where drift is measured
FADE_SHARE = 0.08  # relight: the correction fades over this share of the region's size
MIN_FADE = 6.0  # px


def drift_ring(mask: torch.Tensor) -> torch.Tensor:
    """[B, H, W] bool: pixels kept from the original (mask == 0) within RING px of the region."""
    region = (mask > 0).to(torch.float32)
    return (grow_mask(region, RING) > 0) & (mask <= 0)


def edge_fade(mask: torch.Tensor) -> torch.Tensor:
    """[B, H, W] 0..1: 1 where the region is soft (its feathered edge), falling off with the
    distance into its solid part, over FADE_SHARE of the region's size."""
    fades = []
    for m in mask.cpu().numpy():
        solid = m >= 1.0
        if not solid.any():
            fades.append(torch.ones(m.shape))
            continue
        distance = ndimage.distance_transform_edt(solid)
        rows, cols = solid.any(axis=1).nonzero()[0], solid.any(axis=0).nonzero()[0]
        size = max(rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
        fade = max(MIN_FADE, FADE_SHARE * float(size))
        fades.append(torch.from_numpy(distance / fade).float().neg().exp())
    return torch.stack(fades).to(mask.device)


def match_seam(
    generated: torch.Tensor, original: torch.Tensor, mask: torch.Tensor, fill: bool
) -> torch.Tensor:
    """generated [B,H,W,3] matched to original [B,H,W,3] at the edge of mask [B,H,W] (soft,
    1 = repaint). Returns generated unchanged where there is no ring to measure from."""
    ring = drift_ring(mask)
    has_ring = ring.flatten(1).any(dim=1)
    if not bool(has_ring.any()):
        return generated
    ring = torch.where(has_ring[:, None, None], ring, torch.ones_like(ring))
    drift = (original - generated).movedim(-1, 1).float()
    known = ring[:, None].to(drift.dtype)
    spread = push_pull_fill(drift * known, known)
    spread = gaussian_blur(spread, RING / 2.0).movedim(1, -1)
    strength = torch.ones_like(mask) if fill else edge_fade(mask)
    strength = strength * has_ring[:, None, None].to(strength.dtype)
    return (generated + spread.to(generated) * strength[..., None].to(generated)).clamp(0.0, 1.0)
