"""A classical pre-fill of the masked region: push-pull (pyramid) interpolation from its border.

The pack's model starts its fill from this instead of a grey hole, so it only has to learn the
correction (texture, shadow removal): the first CPU experiment found a model filling a blank
hole barely beat OpenCV's Telea. Pure torch, no weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _push(values: torch.Tensor, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Half resolution: the weighted mean of known pixels, and which coarse pixels saw any."""
    pad_h, pad_w = values.shape[-2] % 2, values.shape[-1] % 2
    if pad_h or pad_w:
        values = F.pad(values, (0, pad_w, 0, pad_h), mode="replicate")
        weight = F.pad(weight, (0, pad_w, 0, pad_h), mode="constant", value=0.0)
    total = F.avg_pool2d(values * weight, 2)
    count = F.avg_pool2d(weight, 2)
    return total / count.clamp_min(1e-8), (count > 0).to(values.dtype)


def push_pull_fill(image: torch.Tensor, known: torch.Tensor) -> torch.Tensor:
    """Fill where known == 0 (image [B,C,H,W], known [B,1,H,W]); known pixels stay unchanged."""
    known = (known > 0.5).to(image.dtype)
    if known.amax(dim=(1, 2, 3)).min() == 0:
        raise ValueError("mask: nothing outside the mask to fill from (the mask covers the image)")
    pyramid = [(image, known)]
    while min(pyramid[-1][0].shape[-2:]) > 1:
        pyramid.append(_push(*pyramid[-1]))
    filled = pyramid[-1][0]
    for values, weight in reversed(pyramid[:-1]):
        coarse = F.interpolate(filled, size=values.shape[-2:], mode="bilinear", align_corners=False)
        filled = values * weight + coarse * (1.0 - weight)
    return torch.where(known > 0, image, filled)
