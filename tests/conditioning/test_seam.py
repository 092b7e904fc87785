"""Seam matching: a repaint that drifted in tone or colour meets its surroundings."""

from __future__ import annotations

import torch

from relight_inpaint.conditioning.mask import feather_mask
from relight_inpaint.conditioning.seam import match_seam


def scene(drift=(0.12, -0.05, 0.03)):
    g = torch.Generator().manual_seed(0)
    original = 0.4 + 0.2 * torch.rand(1, 96, 96, 3, generator=g)
    mask = torch.zeros(1, 96, 96)
    mask[:, 30:66, 30:66] = 1.0
    mask = feather_mask(mask, 6)
    generated = (original + torch.tensor(drift)).clamp(0, 1)  # the model's answer, drifted
    return original, generated, mask


def edge_step(image, original, mask):
    """Mean colour difference to the original just inside the solid region's edge."""
    inner = torch.zeros_like(mask, dtype=torch.bool)
    inner[:, 30:33, 30:66] = True
    return (image - original)[inner].abs().mean().item()


def test_fill_drift_is_removed_everywhere():
    original, generated, mask = scene()
    matched = match_seam(generated, original, mask, fill=True)
    assert edge_step(generated, original, mask) > 0.05
    assert edge_step(matched, original, mask) < 0.01
    assert (matched - original)[0, 40:56, 40:56].abs().mean() < 0.01


def test_relight_matches_the_edge_and_keeps_the_new_light_inside():
    original, generated, mask = scene()
    lit = generated.clone()
    lit[:, 40:56, 40:56] *= 0.5  # the relit subject, well inside the region
    matched = match_seam(lit, original, mask, fill=False)
    assert edge_step(matched, original, mask) < 0.35 * edge_step(lit, original, mask)
    centre = (slice(None), slice(46, 50), slice(46, 50))
    assert torch.allclose(matched[centre], lit[centre], atol=0.02)


def test_no_drift_no_change_and_no_ring_no_change():
    original, _, mask = scene()
    assert torch.allclose(match_seam(original, original, mask, fill=True), original, atol=1e-6)
    everything = torch.ones(1, 96, 96)
    other = original.flip(1)
    assert torch.equal(match_seam(other, original, everything, fill=True), other)


def test_relight_halo_on_the_regions_rim_is_brought_back_to_the_photo():
    """Re-shading the whole grown mask darkens its rim (surroundings) into a halo; the rim is
    matched to the photo while the subject further in keeps its new light."""
    original, _, mask = scene(drift=(0.0, 0.0, 0.0))
    relit = original.clone()
    relit[mask >= 1.0] *= 0.6
    matched = match_seam(relit, original, mask, fill=False)
    rim = torch.zeros_like(mask, dtype=torch.bool)
    rim[:, 30:32, 34:62] = True
    assert (relit - original)[rim].abs().mean() > 0.15
    assert (matched - original)[rim].abs().mean() < 0.05
    centre = (slice(None), slice(46, 50), slice(46, 50))
    assert torch.allclose(matched[centre], relit[centre], atol=0.01)


def test_a_tight_masks_rim_is_the_subject_and_keeps_its_new_light():
    """When the mask ends on the subject's own edge (a bright object on a dark ground), its rim
    does not look like the surroundings: the relight is kept there."""
    original = torch.full((1, 96, 96, 3), 0.1)
    mask = torch.zeros(1, 96, 96)
    mask[:, 30:66, 30:66] = 1.0
    original[mask > 0] = 0.8
    relit = original.clone()
    relit[mask > 0] = 0.5
    matched = match_seam(relit, original, mask, fill=False)
    assert torch.allclose(matched[mask > 0], relit[mask > 0], atol=0.01)
