"""The spatial conditioning each model kind gets, as plain torch (channels-first tensors).

- The pack's model: `c_concat` = the image (-1..1; for fill, the hole pre-filled from its
  border) + mask + light map + mode flag; a shading model (`shading_map` in its config) also
  gets the shading map of the subject's normals, and in relight mode its image channels hold the
  subject already re-shaded for the light (lighting/reshade): it refines that.
- IC-Light: the foreground on a grey matte (fc), plus a background (fbc), as latents; the
  light enters as the starting latent (a light gradient image), the way IC-Light was trained.
"""

from __future__ import annotations

import torch

from ..conditioning.exemplar_fill import exemplar_fill, exemplar_fill_rounds
from ..lighting.light import Light, light_map_channels
from ..lighting.normals import flat_normals
from ..lighting.progress import Tick
from ..lighting.reshade import reshade
from ..lighting.shading import shading_map
from ..model_loader.relight_format import channel_slice

SHADED_CHANNELS = ("light_map", "shading_map")  # zeroed together for the unconditional branch


def model_image(
    image: torch.Tensor, mask: torch.Tensor, mode: str, tick: Tick = None
) -> torch.Tensor:
    """The image channels the model sees, [B,3,H,W] in -1..1: the image; for fill, its hole
    pre-filled from the image's own patches (exemplar_fill), so a fill never starts from the
    object it removes and the model refines a texture instead of inventing one. `tick`: the
    fill's progress (fill_rounds(mask) ticks)."""
    pixels = image[..., :3].movedim(-1, 1) * 2.0 - 1.0
    if mode != "fill":
        return pixels
    hard = (mask > 0.5).to(pixels.dtype)[:, None]
    return exemplar_fill(pixels, 1.0 - hard, tick=tick)


def fill_rounds(mask: torch.Tensor, mode: str) -> int:
    """How many ticks model_image makes for `mask` [B,H,W] (0 unless mode is fill)."""
    if mode != "fill":
        return 0
    return exemplar_fill_rounds(1.0 - (mask > 0.5).float()[:, None])


def shaded_inputs(
    image: torch.Tensor,
    mask: torch.Tensor,
    light: Light,
    mode: str,
    normals: torch.Tensor | None,
    heights: torch.Tensor | None = None,
    prefilled: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...]]:
    """(image channels [B,3,H,W] in -1..1, shading map [B,H,W,3], notes on the subject's shape
    for the node) for a shading model.
    relight: the subject re-shaded for `light` with `normals` (None: the re-shading finds the
    subject's shape itself: a face mesh, the person in the region, the silhouette), and their
    shading; fill: the pre-filled hole (`prefilled`, when the caller has it), and the light's
    shading of flat ground (the hole has no subject)."""
    if mode == "fill":
        pixels = model_image(image, mask, mode) if prefilled is None else prefilled
        return pixels, shading_map(flat_normals(mask), light), ()
    relit = reshade(image[..., :3], mask, light, normals, heights)
    return relit.image.movedim(-1, 1) * 2.0 - 1.0, relit.shading, relit.notes


def start_image(
    image: torch.Tensor, mask: torch.Tensor, mode: str, pixels: torch.Tensor | None = None
) -> torch.Tensor:
    """What sampling starts from (denoise < 1), [B,H,W,3] in 0..1: the model's image channels.
    pixels: model_image(image, mask, mode), when the caller has it already."""
    if mode != "fill":
        return image[..., :3]
    if pixels is None:
        pixels = model_image(image, mask, mode)
    return (pixels.movedim(1, -1) + 1.0) / 2.0


def relight_concat(
    image: torch.Tensor,
    mask: torch.Tensor,
    light: Light,
    mode: str,
    concat: list[str],
    pixels: torch.Tensor | None = None,
    shading: torch.Tensor | None = None,
) -> torch.Tensor:
    """[B, C, H, W] conditioning for the pack's model. image [B,H,W,3] 0..1, mask [B,H,W];
    pixels: model_image(image, mask, mode) (a shading model: shaded_inputs' image), when the
    caller has it; shading: shaded_inputs' shading map, needed when concat has shading_map."""
    batch, height, width, _ = image.shape
    if pixels is None:
        pixels = model_image(image, mask, mode)
    if "shading_map" in concat and shading is None:
        raise ValueError("shading: this model needs the shading map of the subject's normals")
    parts = {
        "masked_image": pixels,
        "mask": mask[:, None].to(pixels.dtype),
        "mode": torch.full(
            (batch, 1, height, width), 1.0 if mode == "fill" else 0.0, device=pixels.device
        ),
        "light_map": lambda: light_map_channels(light, height, width),
        "shading_map": lambda: shading.movedim(-1, 1),
    }
    return torch.cat([_part(parts[name]).to(pixels) for name in concat], dim=1)


def _part(value):
    return value() if callable(value) else value


def without_light(condition: torch.Tensor, concat: list[str]) -> torch.Tensor:
    """The conditioning with its light channels (light map, shading map) zeroed: the
    unconditional branch of light guidance."""
    unlit = condition.clone()
    for name in SHADED_CHANNELS:
        if name in concat:
            unlit[:, channel_slice(concat, name)] = 0.0
    return unlit


def foreground_on_grey(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """IC-Light's input: the masked content on a 50% grey matte (a black matte darkens results)."""
    m = mask[..., None].to(image.dtype)
    return image[..., :3] * m + 0.5 * (1.0 - m)


def edit_strength(start: torch.Tensor, answer: torch.Tensor, denoise: float) -> torch.Tensor:
    """denoise for a model that ignores the noisy input (every sampler step gives one answer, so
    partial noise would change nothing): the answer moved `denoise` of the way from the start."""
    return start + denoise * (answer.to(start.dtype) - start)


def blend_latents(outside: torch.Tensor, inside: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """outside where mask = 0, inside where mask = 1; mask [B,H,W] at any size."""
    m = torch.nn.functional.interpolate(
        mask[:, None].float(), size=outside.shape[-2:], mode="bilinear"
    )
    return outside * (1.0 - m) + inside * m
