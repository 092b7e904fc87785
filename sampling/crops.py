"""The sampler's crop-and-stitch path: each masked region is cut out with its context, worked
at the model's resolution (prepare / sample in relight_sampling), brought back to the crop's
size (upscale.restore_detail), matched at its edge (seam.match_seam) and composited into a copy
of the photo. Pixels where the final mask is 0 are the photo's, bit for bit; memory and time
follow the crops, not the photo.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import comfy.sample
import torch

from ..conditioning.checks import require_workable_size
from ..conditioning.composite import composite, preview_image, resize_image
from ..conditioning.crop_stitch import Box, crop_map, fitted_job, plan_crops
from ..conditioning.mask import MaskedImage, as_mask_batch, match_batch, resize_mask
from ..conditioning.seam import match_seam
from ..lighting.light import Light
from ..lighting.shadows import paint_cast_shadow
from ..model_loader.relight_model import with_refiner
from .relight_sampling import (
    Geometry,
    check_mode,
    prepare,
    require_info,
    sample,
    size_multiple,
)

RELIGHT_LONG_SIDE = 512  # the pack's model: about the scale of its 256 px training scenes
ICLIGHT_SIDES = (512, 1024)  # SD1.5's native range for the longer side
MIN_CROP = 128  # px a side, where the image allows: a model needs some surroundings
BATCH_PIXELS = 4 * 1024 * 1024  # crops of one size are sampled together up to this many pixels
PREVIEW_SIDE = 2048  # the shading preview's longer side at most


@dataclass(frozen=True)
class CropJob:
    index: int  # which image of the batch
    box: Box
    size: tuple[int, int]  # (h, w) the model works at


@dataclass
class Stitched:
    image: torch.Tensor  # [B, H, W, 3]
    latent: torch.Tensor  # the first crop group's sampled latent
    shading: torch.Tensor  # [B, h, w, 3] preview: the light map inside the crops
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class CropOptions:
    """How crops are cut and brought back (see relight_crops)."""

    context: float
    resolution: int
    conditioning: dict  # positive / negative / background (IC-Light)
    geometry: Geometry | None
    restore: object  # upscale.Restore or None
    match_edges: bool


@dataclass(frozen=True)
class Sampling:
    """What every crop is sampled with."""

    seed: int
    steps: int
    cfg: float
    sampler_name: str
    scheduler: str
    denoise: float


REFINER_CHOICES = ("auto", "on", "off")
# What `auto` picks per mode for the pack's shading models, as measured on real photos
# (benchmarks/realphotos.py, benchmarks/look.py): the refiner, trained on rendered scenes, put
# a dark veil and silhouette shadows over real portraits; a fill needs it (it paints the hole).
REFINER_AUTO = {"relight": False, "fill": True}


def refiner_model(model, info: dict, mode: str, refiner: str):
    """The model as `refiner` asks: unchanged for IC-Light and older files (they have no
    separate re-shading to give), else a clone told whether its relights are refined."""
    if refiner not in REFINER_CHOICES:
        raise ValueError(f"refiner: expected one of {REFINER_CHOICES}, got {refiner!r}")
    if info["kind"] != "relight" or not info.get("shaded"):
        return model
    refine = REFINER_AUTO[mode] if refiner == "auto" else refiner == "on"
    return with_refiner(model, refine)


# The pack's default model as its workflows sample it: one step (it ignores the noisy input).
ONE_STEP = Sampling(seed=0, steps=1, cfg=1.0, sampler_name="euler", scheduler="simple", denoise=1)


def check_image_size(height: int, width: int) -> None:
    require_workable_size("mask_cond", height, width)


def long_side_for(info: dict, box: Box, resolution: int) -> tuple[int, bool]:
    """(the long side a crop is worked at, whether a small crop is upscaled to it)."""
    if info["kind"] == "relight":
        return resolution or RELIGHT_LONG_SIDE, False
    low, high = ICLIGHT_SIDES
    if resolution:
        return resolution, True
    return min(max(max(box.height, box.width), low), high), True


def plan_jobs(info: dict, masked: MaskedImage, context: float, resolution: int) -> tuple:
    """(CropJobs of every image in the batch, warnings)."""
    jobs, warnings = [], []
    multiple = size_multiple(info)
    for index in range(masked.batch_size):
        plan = plan_crops(masked.mask[index], context, MIN_CROP)
        warnings += [w for w in plan.warnings if w not in warnings]
        for box in plan.boxes:
            long_side, upscale = long_side_for(info, box, resolution)
            mask = masked.mask[index]
            jobs.append(CropJob(index, *fitted_job(box, long_side, multiple, mask, upscale)))
    return jobs, warnings


def group_jobs(jobs: list[CropJob]) -> list[list[CropJob]]:
    """Jobs of one working size sampled together, up to BATCH_PIXELS per group."""
    groups: dict[tuple[int, int], list[list[CropJob]]] = {}
    for job in jobs:
        chunks = groups.setdefault(job.size, [[]])
        if chunks[-1] and (len(chunks[-1]) + 1) * job.size[0] * job.size[1] > BATCH_PIXELS:
            chunks.append([])
        chunks[-1].append(job)
    return [chunk for chunks in groups.values() for chunk in chunks]


def cut(masked: MaskedImage, job: CropJob) -> MaskedImage:
    rows, cols = job.box.slices
    image = resize_image(masked.image[job.index : job.index + 1, rows, cols], *job.size)
    mask = resize_mask(masked.mask[job.index : job.index + 1, rows, cols], *job.size)
    return MaskedImage(image=image, mask=mask)


def cut_maps(image: torch.Tensor | None, jobs: list[CropJob], full) -> torch.Tensor | None:
    """The part of a whole-image map (normals, depth, background: any size, batch 1 or B)
    under each job's crop, at the jobs' working size."""
    if image is None:
        return None
    if image.ndim == 3:  # a depth MASK
        image = image[..., None]
    pick = [min(j.index, image.shape[0] - 1) for j in jobs]
    parts = [crop_map(image[i : i + 1], j.box, full) for i, j in zip(pick, jobs, strict=True)]
    return torch.cat([resize_image(p[..., :3], *jobs[0].size) for p in parts])


def cut_geometry(geometry: Geometry, jobs: list[CropJob], full: tuple[int, int]) -> Geometry:
    return Geometry(
        normal_map=cut_maps(geometry.normal_map, jobs, full),
        depth_map=cut_maps(geometry.depth_map, jobs, full),
        convention=geometry.convention,
        light_map=geometry.light_map,
    )


def group_light(light: Light, jobs: list[CropJob]) -> Light:
    lights = [light.select(job.index) for job in jobs]
    grouped = lights[0]
    for other in lights[1:]:
        grouped = grouped.concat(other)
    return grouped


def preview_canvas(image: torch.Tensor) -> torch.Tensor:
    """The photo at preview size, dimmed: the shading preview shows the crops on it."""
    return preview_image(image[..., :3], PREVIEW_SIDE) * 0.35


def paste_preview(canvas: torch.Tensor, shading: torch.Tensor, job: CropJob, full) -> None:
    scale_h, scale_w = canvas.shape[1] / full[0], canvas.shape[2] / full[1]
    top, left = round(job.box.top * scale_h), round(job.box.left * scale_w)
    bottom = max(top + 1, round(job.box.bottom * scale_h))
    right = max(left + 1, round(job.box.right * scale_w))
    part = resize_image(shading[None].to(canvas), bottom - top, right - left)
    canvas[job.index, top:bottom, left:right] = part[0]


def relight_crops(
    model,
    vae,
    masked: MaskedImage,
    light: Light,
    mode: str,
    settings: Sampling,
    context: float,
    resolution: int = 0,
    conditioning: dict | None = None,
    geometry: Geometry | None = None,
    restore=None,
    match_edges: bool = True,
    shadow: torch.Tensor | None = None,
    refiner: str = "auto",
) -> Stitched:
    """The photo with every masked region re-done through its own crop. conditioning: the
    positive / negative / background inputs (IC-Light); restore(generated, original, mask,
    mode) brings a crop worked below its size back to full detail (None: bilinear);
    match_edges: seam matching (off only to measure what it does); shadow: a cast shadow mask
    (ShadowMask): fill removes it with the subject, relight paints it for the light; refiner:
    auto / on / off (the pack's shading models: whether the network refines the re-shading)."""
    info = require_info(model)
    check_mode(info, mode)
    model = refiner_model(model, info, mode, refiner)
    height, width = masked.image.shape[1:3]
    check_image_size(height, width)
    light = light.repeat_to(masked.batch_size)
    shadow = checked_shadow(shadow, masked)
    if shadow is not None and mode == "fill":
        masked = MaskedImage(masked.image, torch.maximum(masked.mask, shadow))
    options = CropOptions(context, resolution, conditioning or {}, geometry, restore, match_edges)
    stitched = _stitch_crops(model, vae, masked, light, mode, settings, options, info)
    if shadow is not None and mode == "relight" and settings.denoise > 0:
        if stitched.image is masked.image:
            stitched.image = masked.image.clone()
        paint_cast_shadow(stitched.image, shadow, masked.mask)
    return stitched


def checked_shadow(shadow: torch.Tensor | None, masked: MaskedImage) -> torch.Tensor | None:
    """The shadow MASK as [B, H, W] matching the photo, or None when absent or empty."""
    if shadow is None:
        return None
    shadow = as_mask_batch(shadow).to(masked.image)
    if tuple(shadow.shape[-2:]) != tuple(masked.image.shape[1:3]):
        raise ValueError(
            f"shadow: expected a mask of the photo's size {list(masked.image.shape[1:3])}, got "
            f"{list(shadow.shape[-2:])} (connect Shadow Mask's output for this photo)"
        )
    shadow = match_batch(shadow, masked.batch_size, "shadow")
    return shadow if float(shadow.amax()) > 0 else None


EMPTY_MASK = (
    "mask: empty, so nothing was repainted: paint the region in the MaskEditor (right-click the "
    "photo) or click the object in Select by Clicks"
)


def _stitch_crops(model, vae, masked, light, mode, settings, options, info) -> Stitched:
    height, width = masked.image.shape[1:3]
    jobs, warnings = plan_jobs(info, masked, options.context, options.resolution)
    if masked.is_empty:
        warnings.append(EMPTY_MASK)
    for warning in warnings:
        logging.warning("Relight Inpaint: %s", warning)
    canvas = preview_canvas(masked.image)
    if not jobs or settings.denoise == 0:
        nothing = comfy.sample.fix_empty_latent_channels(model, torch.zeros(1, 4, 8, 8))
        return Stitched(masked.image, nothing, canvas, warnings)
    output = masked.image.clone()
    latent = None
    for jobs_of_size in group_jobs(jobs):
        samples = _run_group(model, vae, masked, light, mode, settings, options, jobs_of_size)
        warnings += [note for note in samples[2] if note not in warnings]
        latent = samples[0] if latent is None else latent
        decoded = vae.decode(samples[0])[..., :3].to(masked.image.dtype)
        for k, job in enumerate(jobs_of_size):
            _stitch(output, masked, decoded[k : k + 1], job, mode, options)
            paste_preview(canvas, samples[1][k], job, (height, width))
    return Stitched(output, latent, canvas, warnings)


def _run_group(model, vae, masked, light, mode, settings, options, jobs):
    crops = [cut(masked, job) for job in jobs]
    group = MaskedImage(
        image=torch.cat([c.image for c in crops]), mask=torch.cat([c.mask for c in crops])
    )
    full = masked.image.shape[1:3]
    conditioning = options.conditioning
    geometry = cut_geometry(options.geometry or Geometry(), jobs, full)
    background = cut_maps(conditioning.get("background"), jobs, full)
    prepared = prepare(
        model,
        vae,
        group,
        group_light(light, jobs),
        mode,
        conditioning.get("positive"),
        conditioning.get("negative"),
        background,
        geometry,
    )
    samples = sample(
        model,
        prepared,
        settings.seed,
        settings.steps,
        settings.cfg,
        settings.sampler_name,
        settings.scheduler,
        settings.denoise,
    )
    return samples, prepared.shading, prepared.notes


def _stitch(output, masked, decoded, job: CropJob, mode: str, options: CropOptions) -> None:
    restore = options.restore
    rows, cols = job.box.slices
    original = masked.image[job.index : job.index + 1, rows, cols]
    mask = masked.mask[job.index : job.index + 1, rows, cols]
    if restore is None or tuple(decoded.shape[1:3]) == tuple(original.shape[1:3]):
        generated = resize_image(decoded, *original.shape[1:3])
    else:
        generated = restore(decoded, original, mask, mode)
    generated = generated.clamp(0.0, 1.0)
    if options.match_edges:
        generated = match_seam(generated, original, mask, fill=mode == "fill")
    output[job.index, rows, cols] = composite(original, generated, mask)[0]
