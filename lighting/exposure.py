"""Light arithmetic in linear light, and a relight that keeps the subject's exposure.

ComfyUI's IMAGEs are display-referred (sRGB): light adds and multiplies in linear radiance, so
shading ratios are applied to the decoded values and the result encoded again. Multiplying the
encoded values instead would act like the ratio to the power 2.2 on the light itself: a side
darkened by half would come out at a fifth (the dark veil of the first relights).
"""

from __future__ import annotations

import torch
from torch import Tensor


def to_linear(image: Tensor) -> Tensor:
    """sRGB-encoded 0..1 -> linear 0..1 (the exact piecewise curve)."""
    image = image.clamp(0.0, 1.0)
    return torch.where(image <= 0.04045, image / 12.92, ((image + 0.055) / 1.055) ** 2.4)


def to_srgb(linear: Tensor) -> Tensor:
    """linear 0..1 -> sRGB-encoded 0..1; to_srgb(to_linear(x)) == x within float rounding."""
    linear = linear.clamp(0.0, 1.0)
    return torch.where(
        linear <= 0.0031308, linear * 12.92, 1.055 * linear.clamp_min(1e-12) ** (1 / 2.4) - 0.055
    )


def exposure_gain(luma: Tensor, ratio: Tensor, weight: Tensor, change: Tensor) -> Tensor:
    """[B] factor for a shading ratio [B,H,W] so that the weighted mean luminance of the
    relit subject is `change` [B] times the photo's: a light moved to the side changes which
    half is bright, not how bright the subject is (a real face lit from the front and from
    60 degrees keeps 0.8-1.2 of its brightness)."""
    before = (luma * weight).flatten(1).sum(1)
    after = (luma * ratio * weight).flatten(1).sum(1)
    return torch.where(after > 1e-8, change * before / after.clamp_min(1e-8), change)


def keep_hue_in_range(image: Tensor) -> Tensor:
    """Brightened pixels scaled down to fit 0..1 as a whole: clamping each channel would turn a
    brightened brown yellow (red clips first, green goes on rising)."""
    image = image.clamp_min(0.0)
    return image / image.amax(dim=-1, keepdim=True).clamp_min(1.0)
