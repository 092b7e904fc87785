"""Sizing images for a model and pasting the generated pixels back into the original."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .mask import as_mask_batch, match_batch


def resize_to_multiple(
    height: int, width: int, multiple: int, min_side: int | None = None
) -> tuple[int, int]:
    """(h, w) rounded to the nearest multiple (half up), each side at least the minimum.

    The minimum is `multiple`, or `min_side` rounded up to a multiple when given.
    """
    for name, value in (("height", height), ("width", width), ("multiple", multiple)):
        if value < 1:
            raise ValueError(f"{name}: expected an integer >= 1, got {value}")
    if min_side is not None and min_side < 1:
        raise ValueError(f"min_side: expected an integer >= 1, got {min_side}")
    smallest = multiple if min_side is None else -(-min_side // multiple) * multiple
    # floor(side / multiple + 1/2) in integers, so ties round up exactly.
    nearest = [(2 * side + multiple) // (2 * multiple) * multiple for side in (height, width)]
    return max(nearest[0], smallest), max(nearest[1], smallest)


def resize_image(image: Tensor, height: int, width: int) -> Tensor:
    """Bilinear resize of IMAGE [B, H, W, C] to [B, height, width, C]; antialiased shrink."""
    if image.ndim != 4:
        raise ValueError(f"image: expected shape [B, H, W, C], got {list(image.shape)}")
    if height < 1 or width < 1:
        raise ValueError(f"size: expected height and width >= 1, got {height}x{width}")
    if image.shape[1:3] == (height, width):
        return image
    shrinking = height < image.shape[1] or width < image.shape[2]
    resized = F.interpolate(
        image.permute(0, 3, 1, 2),
        size=(height, width),
        mode="bilinear",
        align_corners=False,
        antialias=shrinking,
    )
    return resized.permute(0, 2, 3, 1).contiguous()


def size_within(height: int, width: int, side: int) -> tuple[int, int]:
    """(height, width) scaled so the longer side is at most `side` px (never enlarged)."""
    scale = min(1.0, side / max(height, width))
    return max(1, round(height * scale)), max(1, round(width * scale))


def preview_image(image: Tensor, side: int) -> Tensor:
    """IMAGE [B, H, W, C] at most `side` px a side, for a preview. A large photo is first
    subsampled by striding (a view), so no full-size copy is ever made."""
    height, width = image.shape[1:3]
    if max(height, width) <= side:
        return image
    step = max(1, max(height, width) // side)  # the strided view stays near `side`
    strided = image[:, ::step, ::step].contiguous()
    scale = side / max(height, width)
    return resize_image(strided, max(1, round(height * scale)), max(1, round(width * scale)))


def _check_image(name: str, image: Tensor) -> None:
    if image.ndim != 4 or image.shape[-1] != 3:
        raise ValueError(f"{name}: expected shape [B, H, W, 3], got {list(image.shape)}")


def _mask_for(image: Tensor, mask: Tensor) -> Tensor:
    """The mask as [B, H, W] on the image's device, checked against the image's size."""
    mask = as_mask_batch(mask)
    if mask.shape[-2:] != image.shape[1:3]:
        raise ValueError(
            f"mask: expected size {list(image.shape[1:3])} (the image's H, W), "
            f"got {list(mask.shape[-2:])}"
        )
    mask = match_batch(mask, image.shape[0], "mask")
    return mask.to(device=image.device, dtype=image.dtype)


def composite(original: Tensor, generated: Tensor, mask: Tensor) -> Tensor:
    """original·(1−m) + generated·m; exactly the original where m == 0, generated where m == 1."""
    _check_image("original", original)
    _check_image("generated", generated)
    if generated.shape != original.shape:
        raise ValueError(
            f"generated: expected the original's shape {list(original.shape)}, "
            f"got {list(generated.shape)}"
        )
    m = _mask_for(original, mask)[..., None]
    generated = generated.to(device=original.device, dtype=original.dtype).clamp(0.0, 1.0)
    blended = original * (1.0 - m) + generated * m
    # Selecting instead of trusting the arithmetic keeps untouched pixels bit-identical.
    blended = torch.where(m >= 1.0, generated, blended)
    return torch.where(m <= 0.0, original, blended)
