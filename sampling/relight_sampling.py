"""Masked, light-conditioned sampling on ComfyUI's own sampling stack.

prepare() brings image and mask to a size the model takes, encodes them with the VAE and builds
the conditioning; sample() runs comfy.sample with the mask as the denoise mask (outside the mask
the latent is reset to the original, noised to the current sigma, at every step); finish()
decodes, resizes back and composites, so pixels outside the mask are bit-identical to the input.
This is the whole-image path (Relight Conditioning's, and the tests'); RelightInpaintSampler
runs prepare() and sample() per crop (sampling/crops.py), which stitches its own way.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import comfy.model_management
import comfy.sample
import comfy.utils
import latent_preview
import torch

from ..conditioning.composite import composite, resize_image, resize_to_multiple
from ..conditioning.mask import MaskedImage, resize_mask
from ..lighting.light import Light, angles_from_direction
from ..lighting.normals import subject_normals
from ..lighting.shading import iclight_ramp, shading_map
from ..model_loader.relight_model import model_info
from .progress import progress_ticker
from .spatial import (
    blend_latents,
    edit_strength,
    fill_rounds,
    foreground_on_grey,
    model_image,
    relight_concat,
    shaded_inputs,
    start_image,
    without_light,
)

IC_LIGHT_MULTIPLE = 64  # SD1.5: VAE 8x, UNet 3 downsamplings
MAX_SIDE = 8192
MAX_MEGAPIXELS = 16.8  # 4096 x 4096: a whole-image latent (Relight Conditioning) above this
EMPTY_CONTEXT_DIM = 8
LIGHT_MAPS = ("shading", "iclight_gradient")  # what IC-Light fc starts from inside the mask


@dataclass
class Geometry:
    """The subject's shape, as the user gave it or the pack estimates it."""

    normal_map: torch.Tensor | None = None  # IMAGE, RGB = (n + 1) / 2
    depth_map: torch.Tensor | None = None  # IMAGE or MASK, white = near
    convention: str = "y_up"
    light_map: str = "shading"  # IC-Light fc's start: the shading or the official ramp


@dataclass
class Prepared:
    positive: list
    negative: list
    latent_image: torch.Tensor
    noise_mask: torch.Tensor  # [B, h, w] at the model's pixel size
    shading: torch.Tensor  # [B, h, w, 3] 0..1: the light map the model was told, for preview
    notes: tuple[str, ...] = ()  # what the relight found of the subject (face mesh, matte)


def require_info(model) -> dict:
    info = model_info(model)
    if info is None:
        raise ValueError(
            "model: this MODEL is not a Relight Inpaint model; load one with LoadRelightUNet "
            "(the pack's own model, or IC-Light applied onto an SD1.5 MODEL)"
        )
    return info


def size_multiple(info: dict) -> int:
    return info["downscale"] if info["kind"] == "relight" else IC_LIGHT_MULTIPLE


def model_size(height: int, width: int, multiple: int) -> tuple[int, int]:
    """The size the model runs at: the nearest multiple; refuse sides it cannot take."""
    if min(height, width) < multiple:
        raise ValueError(
            f"mask_cond: the image is {width}x{height} px; this model needs sides of at least "
            f"{multiple} px (it works on multiples of {multiple}): upscale the image first"
        )
    megapixels = height * width / 1e6
    if max(height, width) > MAX_SIDE or megapixels > MAX_MEGAPIXELS:
        raise ValueError(
            f"mask_cond: the image is {width}x{height} px ({megapixels:.1f} MP); the limit is "
            f"{MAX_MEGAPIXELS} MP and {MAX_SIDE} px a side for a whole-image latent (Relight "
            "Conditioning feeds a stock sampler the whole image); Relight Inpaint Sampler works "
            "masked regions as crops and takes photos of any size"
        )
    return resize_to_multiple(height, width, multiple)


def light_range_warnings(info: dict, light: Light) -> list[str]:
    """What in `light` lies outside the range the model was trained on (it still runs)."""
    trained = info.get("light_range") or {}
    _, elevation = angles_from_direction(light.direction)
    values = {"elevation": elevation, "intensity": light.intensity, "ambient": light.ambient}
    warnings = []
    for term, (low, high) in trained.items():
        outside = [float(v) for v in values[term] if not low - 1e-4 <= float(v) <= high + 1e-4]
        if outside:
            warnings.append(
                f"light: {term} {outside[0]:.3g} is outside the range this model was trained on "
                f"({low:g}..{high:g}); it runs, but the result may not follow the light"
            )
    return warnings


def check_mode(info: dict, mode: str) -> None:
    modes = info["modes"] if info["kind"] == "relight" else ["relight"]
    if mode not in modes:
        what = "this model was trained for" if info["kind"] == "relight" else "IC-Light supports"
        raise ValueError(f"mode: {mode!r} is not available: {what} {', '.join(modes)}")


def empty_conditioning() -> list:
    return [[torch.zeros(1, 1, EMPTY_CONTEXT_DIM), {}]]


def with_concat(conditioning: list, concat: torch.Tensor) -> list:
    return [[c, {**options, "noise_concat": concat}] for c, options in conditioning]


def prepare(
    model,
    vae,
    masked: MaskedImage,
    light: Light,
    mode: str,
    positive: list | None = None,
    negative: list | None = None,
    background: torch.Tensor | None = None,
    geometry: Geometry | None = None,
) -> Prepared:
    info = require_info(model)
    check_mode(info, mode)
    geometry = geometry or Geometry()
    if geometry.light_map not in LIGHT_MAPS:
        raise ValueError(f"light_map: expected one of {LIGHT_MAPS}, got {geometry.light_map!r}")
    light = light.repeat_to(masked.batch_size)
    for warning in light_range_warnings(info, light):
        logging.warning("Relight Inpaint: %s", warning)
    height, width = masked.image.shape[1:3]
    h, w = model_size(height, width, size_multiple(info))
    image = resize_image(masked.image, h, w)
    soft = resize_mask(masked.mask, h, w)
    # The model sees the region as it was trained on it, hard; the feather only blends the
    # answer back in (the composite, and the sampler's noise mask).
    mask = (soft > 0.5).to(soft.dtype)
    given = geometry.normal_map is not None or geometry.depth_map is not None
    if info["kind"] == "relight" and info.get("shaded") and not given:
        normals, heights = None, None  # the re-shading finds the subject's shape itself
    else:
        normals, heights = subject_normals(
            mask, geometry.normal_map, geometry.depth_map, geometry.convention
        )
    if info["kind"] == "relight":
        prepared = _prepare_relight(info, vae, image, mask, light, mode, normals, heights)
    else:
        prepared = _prepare_iclight(
            model, info, vae, image, mask, light, positive, negative, background, normals, geometry
        )
    prepared.noise_mask = soft
    return prepared


def _prepare_relight(info, vae, image, mask, light, mode, normals, heights) -> Prepared:
    rounds = fill_rounds(mask, mode)  # fill: the exemplar pre-fill, computed once
    prefilled = model_image(image, mask, mode, progress_ticker(rounds) if rounds else None)
    if info.get("shaded"):
        pixels, shading, notes = shaded_inputs(
            image, mask, light, mode, normals, heights, prefilled
        )
    else:  # trained on the gradient light map: runs as it always did
        pixels, shading, notes = prefilled, shading_map(normals, light), ()
    lit = relight_concat(image, mask, light, mode, info["concat"], pixels, shading)
    # The unconditional branch sees no light: cfg > 1 then pushes toward the requested light.
    unlit = without_light(lit, info["concat"])
    return Prepared(
        positive=with_concat(empty_conditioning(), lit),
        negative=with_concat(empty_conditioning(), unlit),
        # denoise < 1 starts from this: for fill, the pre-filled hole rather than the object
        latent_image=vae.encode(start_image(image, mask, mode, prefilled)),
        noise_mask=mask,
        shading=shading.clamp(0.0, 1.0),
        notes=notes,
    )


def iclight_start(light: Light, normals, image, light_map: str) -> torch.Tensor:
    """IC-Light fc's light image: the subject's shading, or the official flat ramp."""
    if light_map == "iclight_gradient":
        return iclight_ramp(light.repeat_to(image.shape[0]), *image.shape[1:3])
    return shading_map(normals, light).clamp(0.0, 1.0)


def _prepare_iclight(
    model, info, vae, image, mask, light, positive, negative, background, normals, geometry
) -> Prepared:
    if positive is None or negative is None:
        missing = "positive" if positive is None else "negative"
        raise ValueError(f"{missing}: IC-Light needs text conditioning (CLIPTextEncode) for both")
    process_in = model.model.process_latent_in  # noise_concat bypasses the sampler's scaling
    concat = [process_in(vae.encode(foreground_on_grey(image, mask)))]
    if info["variant"] == "fbc":
        if background is None:
            raise ValueError("background: IC-Light fbc weights need a background image")
        bg = resize_image(background[..., :3], *image.shape[1:3])
        concat.append(process_in(vae.encode(comfy.utils.repeat_to_batch_size(bg, image.shape[0]))))
    concat = torch.cat(concat, dim=1)
    original = vae.encode(image[..., :3])
    light_image = iclight_start(light, normals, image, geometry.light_map)
    if info["variant"] == "fbc":  # as the official fbc: the light comes from the background
        start = original
    else:
        start = blend_latents(original, vae.encode(light_image), mask)
    return Prepared(
        positive=with_concat(positive, concat),
        negative=with_concat(negative, concat),
        latent_image=start,
        noise_mask=mask,
        shading=light_image,
    )


def interruptible_callback(model, steps: int):
    """ComfyUI's live preview + progress bar, checking for cancel on every step.

    The server's progress hook checks too, but an in-process run (CLI, tests) has no hook.
    """
    preview = latent_preview.prepare_callback(model, steps)

    def callback(step, x0, x, total_steps):
        comfy.model_management.throw_exception_if_processing_interrupted()
        preview(step, x0, x, total_steps)

    return callback


def sample(model, prepared: Prepared, seed, steps, cfg, sampler_name, scheduler, denoise):
    latent = comfy.sample.fix_empty_latent_channels(model, prepared.latent_image)
    noise = comfy.sample.prepare_noise(latent, seed)
    samples = comfy.sample.sample(
        model,
        noise,
        steps,
        cfg,
        sampler_name,
        scheduler,
        prepared.positive,
        prepared.negative,
        latent,
        denoise=denoise,
        noise_mask=prepared.noise_mask,
        callback=interruptible_callback(model, steps),
        disable_pbar=not comfy.utils.PROGRESS_BAR_ENABLED,
        seed=seed,
    )
    if model_info(model).get("ignores_noise"):
        samples = edit_strength(latent, samples, denoise)
    return samples


def finish(vae, samples: torch.Tensor, masked: MaskedImage) -> torch.Tensor:
    """The answer at the input's size, composited: outside the mask the input, bit for bit."""
    decoded = vae.decode(samples)[..., :3].to(masked.image.dtype)
    decoded = resize_image(decoded, *masked.image.shape[1:3])
    return composite(masked.image[..., :3], decoded, masked.mask)
