"""Relight by re-shading: the subject's albedo (the image divided by its current shading) times
the shading of the requested light. Colours stay the input's under a white light, because the
ratio new / current shading is the same for R, G and B; a tinted light tints them.

The current light is estimated from the subject itself (light_estimate), in the subject's own
units: its albedo scales the fitted ambient and intensity alike, so only their ratio and the
direction are known. The current shading is therefore taken with the fitted direction and
ambient-to-intensity ratio, at the requested light's overall strength (ambient + intensity):
a relight moves the light, the scene around the mask says how bright it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from .filters import gaussian_blur
from .light import Light
from .light_estimate import LightEstimate, estimate_light, luminance
from .normals import estimate_normals
from .prefill import push_pull_fill
from .shading import cast_shadows, shading_map

# A pixel brightened by more than TRUSTED_GAIN has its noise, compression and the photo's
# shadow edges brightened as much (rings on a sphere's old dark side); its albedo is taken
# more and more from the well-lit part of the subject instead, entirely from 2x TRUSTED_GAIN.
TRUSTED_GAIN = 5.0
CORE_MARGIN = 0.08  # of the region's sqrt(area): what the albedo is not read from at its edge
WELL_LIT = 0.5  # the albedo is read where the old shading is at least this share of its peak
MIN_SHADING = 0.05
MIN_LUMA = 1e-3  # below this the reference has no colour to keep
# The refiner's brightness is kept at this scale (px at the model's size) and coarser, the
# re-shaded subject's detail below it: 1 px brings real skin texture back (0 turns a real face
# to plaster) at +1.5 deg light error on rendered scenes, where the finer shading the refiner
# adds is right (3 px: +5.6 deg; docs/training.md).
DETAIL_SIGMA = 1.0


@dataclass(frozen=True)
class Reshaded:
    image: Tensor  # [B,H,W,3] 0..1, changed only inside the mask
    shading: Tensor  # [B,H,W,3] the requested light's shading map (what the model is told)
    current: LightEstimate  # the subject's estimated current light
    normals: Tensor  # [B,H,W,3]


def current_light(estimate: LightEstimate, requested: Light) -> Light:
    """The estimated light rescaled to the requested light's strength, white (see above)."""
    fitted_total = (estimate.light.ambient + estimate.light.intensity).clamp_min(1e-6)
    share = estimate.light.ambient / fitted_total
    total = requested.ambient + requested.intensity
    trusted = estimate.confidence > 0
    ambient = torch.where(trusted, share * total, total)  # nothing fitted: flat shading
    return Light(
        direction=estimate.light.direction,
        intensity=torch.where(trusted, (1 - share) * total, torch.zeros_like(total)),
        ambient=ambient,
        color=torch.ones_like(estimate.light.color),
    )


def reshade(
    image: Tensor,
    mask: Tensor,
    light: Light,
    normals: Tensor | None = None,
    heights: Tensor | None = None,
    shadows: bool = True,
) -> Reshaded:
    """image [B,H,W,3] 0..1 and mask [B,H,W]: the masked subject re-shaded for `light`.
    normals: the subject's (a user's map, decoded) or None for the pack's estimate; heights
    (pixels, e.g. from a depth map) give cast shadows when `shadows` is on. The silhouette
    estimate's heights are convex and cast none on the subject, so they are not passed here."""
    light = light.repeat_to(image.shape[0])
    if normals is None:
        normals, _ = estimate_normals(mask)
    region = mask > 0.5
    estimate = estimate_light(image, normals, mask)
    visibility = None
    if shadows and heights is not None:
        visibility = cast_shadows(heights, light)
    current = shading_map(normals, current_light(estimate, light.repeat_to(len(image))))
    target = shading_map(normals, light, visibility)
    albedo = steady_albedo(image[..., :3], current, target, region)
    relit = keep_hue_in_range(albedo * target)
    out = torch.where(region[..., None], relit, image[..., :3])
    return Reshaded(out, target, estimate, normals)


def steady_albedo(image: Tensor, current: Tensor, target: Tensor, region: Tensor) -> Tensor:
    """The subject's albedo, image / current shading, where the relight brightens it by at most
    TRUSTED_GAIN; where it brightens more (the old attached shadow), blended toward the albedo
    of the subject's well-lit part, spread by push-pull. All [B,H,W,3] 0..1, region [B,H,W]."""
    shading = current.clamp_min(MIN_SHADING)
    albedo = image / shading
    gain = (target / shading).mean(-1)
    trust = ((2.0 * TRUSTED_GAIN - gain) / TRUSTED_GAIN).clamp(0.0, 1.0)
    core = subject_core(region)
    level = current.mean(-1) * core
    peak = level.flatten(1).amax(1).view(-1, 1, 1)
    well_lit = core & (level >= WELL_LIT * peak) & (peak > MIN_SHADING)
    has_source = well_lit.flatten(1).any(1)
    if not bool(has_source.any()):
        return albedo
    source = well_lit | ~has_source.view(-1, 1, 1)  # nothing well lit: the albedo as it is
    spread = push_pull_fill(albedo.movedim(-1, 1), source[:, None].to(albedo.dtype)).movedim(1, -1)
    return trust[..., None] * albedo + (1.0 - trust[..., None]) * spread


def subject_core(region: Tensor) -> Tensor:
    """The region [B,H,W] bool eroded by CORE_MARGIN of its size: a grown or feathered mask
    also covers the background around the subject, whose colour must not spread into it."""
    area = region.flatten(1).sum(1).float()
    margins = (CORE_MARGIN * area.sqrt()).round().clamp_min(1).long().tolist()
    cores = []
    for one, margin in zip(region, margins, strict=True):
        outside = (~one).float()[None, None]
        grown = F.max_pool2d(outside, 2 * margin + 1, stride=1, padding=margin)[0, 0]
        cores.append(one & (grown < 0.5))
    return torch.stack(cores)


def keep_hue_in_range(image: Tensor) -> Tensor:
    """Brightened pixels scaled down to fit 0..1 as a whole: clamping each channel would turn a
    brightened brown yellow (red clips first, green goes on rising)."""
    image = image.clamp_min(0.0)
    return image / image.amax(dim=-1, keepdim=True).clamp_min(1.0)


def keep_colours(answer: Tensor, reference: Tensor, detail_sigma: float = 0.0) -> Tensor:
    """answer [B,H,W,3] 0..1 with the chromaticity of `reference` (the re-shaded subject: its
    albedo times the light's colour) and the answer's luminance. Why: the refiner, a small
    network trained on rendered scenes, learns shadows, highlights and edges, but on real photos
    it also moves colours (grey-blue casts on a white cup) and smooths fine detail (skin turns to
    plaster); the re-shaded subject already has the colours and the detail a relight should have.
    detail_sigma > 0: only the answer's brightness at that scale (px) is kept, the finer detail is
    the reference's: the answer is the reference times the ratio of their blurred luminances."""
    answer_luma = luminance(answer)
    reference_luma = luminance(reference)
    if detail_sigma > 0:
        answer_luma, reference_luma = (
            gaussian_blur(luma[:, None], detail_sigma)[:, 0]
            for luma in (answer_luma, reference_luma)
        )
    usable = reference_luma > MIN_LUMA
    ratio = answer_luma / reference_luma.clamp_min(MIN_LUMA)
    kept = reference[..., :3] * ratio[..., None]
    return keep_hue_in_range(torch.where(usable[..., None], kept, answer[..., :3]))
