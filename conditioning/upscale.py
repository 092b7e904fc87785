"""A crop worked below the photo's resolution, brought back without blur.

Two sources of detail, used together:
- super-resolution: the user's UPSCALE_MODEL (ComfyUI's own upscale path), when connected;
  otherwise a bilinear upscale;
- relight mode: the original's own detail above the working resolution's band, carried over
  as a ratio (original / original seen through the same down-and-up path) wherever the
  result's structure matches the original's (a relight changes the shading, not the edges).
  Fill mode never transfers: under its mask the original is the object being removed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from .composite import resize_image
from .filters import gaussian_blur

RATIO_LIMITS = (0.25, 4.0)  # detail ratios beyond these are noise or a changed edge
MATCH_SIGMA = 2.0  # px at the working resolution: the window structure is compared over
MATCH_FLOOR = 0.5  # local correlation below this: structure changed, no transfer
EPS = 1e-3

Restore = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, str], torch.Tensor]


def luminance(image: torch.Tensor) -> torch.Tensor:
    """[B,H,W,3] -> [B,1,H,W]."""
    weights = image.new_tensor([0.2126, 0.7152, 0.0722])
    return (image * weights).sum(-1)[:, None]


def structure(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """[B,H,W,3] -> [B,1,H,W]: log-luminance minus its blur at 4 sigma: edges and texture,
    without the shading a relight changes."""
    log = torch.log(luminance(image) + EPS)
    return log - gaussian_blur(log, 4.0 * sigma)


def local_correlation(a: torch.Tensor, b: torch.Tensor, sigma: float) -> torch.Tensor:
    """Windowed correlation of two [B,1,H,W] maps (Gaussian window), -1..1."""
    mean_a, mean_b = gaussian_blur(a, sigma), gaussian_blur(b, sigma)
    var_a = gaussian_blur(a * a, sigma) - mean_a**2
    var_b = gaussian_blur(b * b, sigma) - mean_b**2
    cov = gaussian_blur(a * b, sigma) - mean_a * mean_b
    return cov / (var_a.clamp_min(0) * var_b.clamp_min(0) + 1e-8).sqrt()


def transfer_detail(
    upscaled: torch.Tensor,
    original: torch.Tensor,
    work: tuple[int, int],
    elsewhere: torch.Tensor | None = None,
) -> torch.Tensor:
    """upscaled [B,H,W,3] (a result worked at `work` size, bilinearly upscaled) with the
    original's detail above that band restored where their structure agrees; `elsewhere`
    (e.g. a super-resolved result) where it does not (default: upscaled)."""
    height, width = original.shape[1:3]
    seen = resize_image(resize_image(original, *work), height, width)
    ratio = ((original + EPS) / (seen + EPS)).clamp(*RATIO_LIMITS)
    scale = max(height / work[0], width / work[1])
    window = MATCH_SIGMA * scale
    agree = local_correlation(structure(upscaled, window), structure(seen, window), window)
    gate = ((agree - MATCH_FLOOR) / (1.0 - MATCH_FLOOR)).clamp(0.0, 1.0)[:, 0, ..., None]
    detailed = upscaled * ratio
    other = upscaled if elsewhere is None else elsewhere
    return (other + gate * (detailed - other)).clamp(0.0, 1.0)


def upscale_with_model(upscale_model, image: torch.Tensor) -> torch.Tensor:
    """ComfyUI's own Upscale Image (using Model), as the node runs it (tiled, managed)."""
    from comfy_extras.nodes_upscale_model import ImageUpscaleWithModel

    output = ImageUpscaleWithModel.execute(upscale_model, image)
    return output.result[0] if hasattr(output, "result") else output[0]


def restorer(upscale_model=None, detail: bool = True) -> Restore:
    """restore(generated, original, mask, mode): `generated` (worked at a lower resolution)
    at the original's size: super-resolved when an upscale model is given, and in relight
    mode with the original's detail where the structure is unchanged."""

    def restore(generated, original, mask, mode):
        size = original.shape[1:3]
        plain = resize_image(generated.to(original), *size)
        resolved = plain
        if upscale_model is not None:
            resolved = upscale_with_model(upscale_model, generated).to(original)
            resolved = resize_image(resolved, *size)
        if not detail or mode == "fill":
            return resolved
        return transfer_detail(plain, original, tuple(generated.shape[1:3]), resolved)

    return restore
