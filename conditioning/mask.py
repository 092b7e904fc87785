"""Mask handling: batching, resizing, growing, feathering. Masks are [B, H, W], 1 = repaint."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .checks import require_photo

# Largest radius handed to one max-pool pass; bigger radii are done in several passes.
_MAX_POOL_RADIUS = 16
MASK_STEP = 1.0 / 255.0  # an 8-bit mask file is exact to this


def as_mask_batch(mask: Tensor) -> Tensor:
    """The mask as [B, H, W]; accepts [H, W], [B, H, W] and [B, 1, H, W]."""
    if mask.ndim == 2:
        mask = mask[None]
    elif mask.ndim == 4 and mask.shape[1] == 1:
        mask = mask[:, 0]
    elif mask.ndim != 3:
        raise ValueError(
            f"mask: expected shape [H, W], [B, H, W] or [B, 1, H, W], got {list(mask.shape)}"
        )
    if mask.numel() == 0:
        raise ValueError(f"mask: expected at least 1x1 pixel, got shape {list(mask.shape)}")
    return mask if mask.is_floating_point() else mask.float()


def snap_mask_ends(mask: Tensor) -> Tensor:
    """Values within one 8-bit step of 0 or 1 become exactly 0 or 1. A mask that went through
    8 bits is exact only to 1/255: newer ComfyUI's LoadImageMask gives white as 254/255, which
    would leak 0.4 % of the original into every filled pixel and cost the bit-exact outside."""
    mask = torch.where(mask >= 1.0 - MASK_STEP, torch.ones_like(mask), mask)
    return torch.where(mask <= MASK_STEP, torch.zeros_like(mask), mask)


def resize_mask(mask: Tensor, height: int, width: int) -> Tensor:
    """Bilinear resize to [B, height, width] (antialiased when shrinking), values in 0..1."""
    mask = as_mask_batch(mask)
    if mask.shape[-2:] == (height, width):
        return mask
    if height < 1 or width < 1:
        raise ValueError(f"size: expected height and width >= 1, got {height}x{width}")
    shrinking = height < mask.shape[-2] or width < mask.shape[-1]
    resized = F.interpolate(
        mask[:, None],
        size=(height, width),
        mode="bilinear",
        align_corners=False,
        antialias=shrinking,
    )
    return resized[:, 0].clamp(0.0, 1.0)


def _max_filter(mask: Tensor, radius: int) -> Tensor:
    """Square max filter of the given radius. On the CPU by OpenCV's dilate (24 MP grown 16 px:
    1.2 s, where torch's max-pool took 27 s: benchmarks/mask_speed.py); elsewhere separable
    max-pools in passes of bounded radius. Outside the image is neutral in both."""
    if mask.device.type == "cpu":
        element = cv2.getStructuringElement(cv2.MORPH_RECT, (2 * radius + 1, 2 * radius + 1))
        frames = mask.detach().to(torch.float32).numpy()
        grown = np.stack([cv2.dilate(frame, element) for frame in frames])
        return torch.from_numpy(grown).to(mask.dtype)
    return max_pool_filter(mask, radius)


def max_pool_filter(mask: Tensor, radius: int) -> Tensor:
    """Square max filter by torch's separable max-pools (any device)."""
    x = mask[:, None]
    while radius > 0:
        r = min(radius, _MAX_POOL_RADIUS)
        x = F.max_pool2d(x, kernel_size=(1, 2 * r + 1), stride=1, padding=(0, r))
        x = F.max_pool2d(x, kernel_size=(2 * r + 1, 1), stride=1, padding=(r, 0))
        radius -= r
    return x[:, 0]


def grow_mask(mask: Tensor, pixels: int) -> Tensor:
    """Dilate (pixels > 0) or erode (pixels < 0) with a square element; soft masks work too.

    Outside the image counts as neutral, so erosion does not eat in from the image border.
    """
    mask = as_mask_batch(mask)
    if pixels == 0:
        return mask
    if pixels > 0:
        return _max_filter(mask, pixels)
    return -_max_filter(-mask, -pixels)


def _gaussian_kernel(pixels: int, device: torch.device, dtype: torch.dtype) -> Tensor:
    sigma = pixels / 2.0
    radius = max(1, math.ceil(2.0 * sigma))
    offsets = torch.arange(-radius, radius + 1, device=device, dtype=dtype)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return kernel / kernel.sum()


def _blur(mask: Tensor, pixels: int) -> Tensor:
    """Separable Gaussian blur (sigma = pixels / 2) with replicated edges."""
    kernel = _gaussian_kernel(pixels, mask.device, mask.dtype)
    radius = kernel.numel() // 2
    x = F.pad(mask[:, None], (radius, radius, 0, 0), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1))
    x = F.pad(x, (0, 0, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, -1, 1))
    return x[:, 0]


def feather_mask(mask: Tensor, pixels: int) -> Tensor:
    """Soften the mask edge outward: max(mask, blur(mask)), so the repaint area never shrinks."""
    if pixels < 0:
        raise ValueError(f"feather: expected pixels >= 0, got {pixels}")
    mask = as_mask_batch(mask)
    if pixels == 0:
        return mask
    return torch.maximum(mask, _blur(mask, pixels).clamp(0.0, 1.0))


def match_batch(tensor: Tensor, batch: int, name: str) -> Tensor:
    """`tensor` with batch size `batch`: a batch of one is repeated, an equal batch kept."""
    n = tensor.shape[0]
    if n == batch:
        return tensor
    if n != 1:
        raise ValueError(f"{name}: batch of {n}, expected 1 or {batch} (the image batch)")
    return tensor.repeat(batch, *([1] * (tensor.ndim - 1)))


@dataclass(frozen=True)
class MaskedImage:
    """An IMAGE [B, H, W, 3] and its MASK [B, H, W] of the same size and batch."""

    image: Tensor
    mask: Tensor

    def __post_init__(self) -> None:
        if self.image.ndim != 4 or self.image.shape[-1] != 3:
            raise ValueError(f"image: expected shape [B, H, W, 3], got {list(self.image.shape)}")
        if self.mask.shape != self.image.shape[:3]:
            raise ValueError(
                f"mask: expected shape {list(self.image.shape[:3])} (the image's B, H, W), "
                f"got {list(self.mask.shape)}"
            )

    @property
    def is_empty(self) -> bool:
        return bool(self.mask.max() == 0)

    @property
    def batch_size(self) -> int:
        return self.image.shape[0]


def occupied_window(mask: Tensor, margin: int = 0) -> tuple[slice, slice] | None:
    """Rows and columns of mask [H, W] > 0, widened by `margin` (clipped); None when empty."""
    rows = torch.nonzero(mask.amax(dim=1) > 0).flatten()
    if rows.numel() == 0:
        return None
    cols = torch.nonzero(mask.amax(dim=0) > 0).flatten()
    height, width = mask.shape
    return (
        slice(max(0, int(rows[0]) - margin), min(height, int(rows[-1]) + 1 + margin)),
        slice(max(0, int(cols[0]) - margin), min(width, int(cols[-1]) + 1 + margin)),
    )


def grow_and_feather(mask: Tensor, grow: int, feather: int) -> Tensor:
    """feather_mask(grow_mask(mask, grow), feather), worked only around where the mask is set:
    the same values, but a small mask on a 100 MP photo costs what its surroundings cost."""
    mask = as_mask_batch(mask)
    if grow == 0 and feather == 0:
        return mask
    margin = max(grow, 0) + feather + 2  # beyond what dilation and the blur can reach
    result = torch.zeros_like(mask)
    for index, plane in enumerate(mask):
        window = occupied_window(plane, margin)
        if window is not None:
            part = plane[window][None]
            result[index][window] = feather_mask(grow_mask(part, grow), feather)[0]
    return result


def prepare_masked_image(image: Tensor, mask: Tensor, grow: int, feather: int) -> MaskedImage:
    """Fit the mask to the image (size, batch), then grow and feather it."""
    require_photo(image, mask)
    if feather < 0:
        raise ValueError(f"feather: expected pixels >= 0, got {feather}")
    image = image[..., :3]
    batch, height, width = image.shape[:3]
    mask = as_mask_batch(mask).to(device=image.device, dtype=image.dtype)
    mask = snap_mask_ends(mask.clamp(0.0, 1.0))
    mask = grow_and_feather(resize_mask(mask, height, width), grow, feather)
    return MaskedImage(image=image, mask=match_batch(mask, batch, "mask"))
