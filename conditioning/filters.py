"""Small image filters shared by the conditioning functions."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """x [B,C,H,W] blurred by a separable Gaussian (radius 3 sigma), edges replicated."""
    radius = max(1, int(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel = kernel / kernel.sum()
    channels = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels)


WIDE_SIGMA = 8.0  # px: from this sigma wide_gaussian_blur works on a smaller copy


def wide_gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """x [B,C,H,W] blurred by a Gaussian of `sigma` at a cost that does not grow with it: from
    WIDE_SIGMA on, on a copy shrunk by sigma / 4 (the box means' own blur adds under 1 % to the
    variance) and scaled back bilinearly. gaussian_blur's kernel spans 6 sigma: at sigma 100
    on a megapixel it took over a second."""
    factor = int(sigma // 4)
    if sigma < WIDE_SIGMA or factor < 2:
        return gaussian_blur(x, sigma)
    small = F.avg_pool2d(F.pad(x, _to_multiple(x, factor), mode="replicate"), factor)
    blurred = gaussian_blur(small, sigma / factor)
    grown = F.interpolate(blurred, scale_factor=factor, mode="bilinear", align_corners=False)
    return grown[..., : x.shape[-2], : x.shape[-1]]


def masked_average(values: Tensor, weight: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """(values [B,C,H,W] averaged over `weight` [B,H,W] with a Gaussian of `sigma` px (by
    wide_gaussian_blur), [B,H,W] the weight's own blur: how much weight the average had)."""
    both = wide_gaussian_blur(torch.cat([values * weight[:, None], weight[:, None]], dim=1), sigma)
    return both[:, :-1] / both[:, -1:].clamp_min(1e-6), both[:, -1]


def _to_multiple(x: Tensor, factor: int) -> tuple[int, int, int, int]:
    """F.pad's (left, right, top, bottom) that makes x's height and width multiples of factor."""
    return 0, -x.shape[-1] % factor, 0, -x.shape[-2] % factor
