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
from torch import Tensor

from .light import Light
from .light_estimate import LightEstimate, estimate_light, luminance
from .normals import estimate_normals
from .shading import cast_shadows, shading_map

MAX_GAIN = 20.0  # a pixel in the old attached shadow is brightened at most this much
MIN_SHADING = 0.05
MIN_LUMA = 1e-3  # below this the reference has no colour to keep


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
    gain = target / current.clamp_min(MIN_SHADING)
    gain = gain.clamp(0.0, MAX_GAIN)
    relit = keep_hue_in_range(image[..., :3] * gain)
    out = torch.where(region[..., None], relit, image[..., :3])
    return Reshaded(out, target, estimate, normals)


def keep_hue_in_range(image: Tensor) -> Tensor:
    """Brightened pixels scaled down to fit 0..1 as a whole: clamping each channel would turn a
    brightened brown yellow (red clips first, green goes on rising)."""
    image = image.clamp_min(0.0)
    return image / image.amax(dim=-1, keepdim=True).clamp_min(1.0)


def keep_colours(answer: Tensor, reference: Tensor) -> Tensor:
    """answer [B,H,W,3] 0..1 with its own luminance and the chromaticity of `reference` (the
    re-shaded subject: its albedo times the light's colour). Why: the refiner, a small network
    trained on rendered scenes, learns shadows, highlights and edges, but on real photos it also
    moves colours (grey-blue casts on a white cup); the re-shaded subject already has exactly the
    colours a relight should have, so only the refiner's brightness is kept."""
    answer_luma = luminance(answer)
    reference_luma = luminance(reference)
    usable = reference_luma > MIN_LUMA
    ratio = answer_luma / reference_luma.clamp_min(MIN_LUMA)
    kept = reference[..., :3] * ratio[..., None]
    return keep_hue_in_range(torch.where(usable[..., None], kept, answer[..., :3]))
