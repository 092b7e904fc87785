"""Cast shadows that move with the light: where a subject's shadow falls for a light, how dark
the scene's shadows are, and where a removed object's old shadow lies.

Geometry is a height field in pixels (the image as a relief seen from the front): a point is in
the subject's shadow when the ray from it toward the light passes under the subject's surface.
With a depth map (any estimator's: white = near) both the subject and the surface it stands on
come from the map; its unknown scale is fitted to the scene's own shadows when a scene light is
known (`fit_relief`). Without one, the subject is the silhouette's inflated relief resting on a
flat surface, which gets the direction of the shadow right but not its length.

Everything works on the window around the subject (its box plus the shadow's reach) at a
bounded resolution, so a 100 MP photo costs what its window costs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage
from torch import Tensor

from ..conditioning.composite import resize_image, size_within
from ..conditioning.crop_stitch import Box, bounding_box
from ..conditioning.filters import gaussian_blur
from ..conditioning.mask import grow_mask
from ..conditioning.prefill import push_pull_fill
from .light import Light
from .light_estimate import luminance
from .normals import heights_from_depth, inflate_heights, normals_from_heights
from .progress import Tick, advance
from .shading import march_shadows

WORK_SIDE = 512  # shadows are worked at most this many px a side (shape, not detail)
FIT_SIDE = 160  # fit_relief compares the reliefs' shadows at most this many px a side
RAY_STEPS = 128
REACH = 2.0  # a shadow reaches at most this many times the subject's longer side
NONE = -1.0e4  # occluder height where there is no subject
RELIEFS = tuple(round(0.1 * 1.5**k, 3) for k in range(11))  # 0.1 .. 5.8: tried by fit_relief
DEFAULT_RELIEF = 0.3  # heights_from_depth's default
DARK_RATIO = 0.82  # fill: darker than this share of the surroundings counts as shadow
SEARCH_GROW = 0.15  # fill: the predicted shadow is searched this share of the subject wider
CHROMA_TOLERANCE = 0.08  # fill: rg-chromaticity a shadow may move (noise, coloured fill light)
MIN_SHADOW_PIXELS = 30
TEXTURE_SHARE = 0.05  # fill: colours are compared smoothed over this share of the subject
OPENING = 0.04  # fill: dark parts thinner than this share of the subject are texture
GUESSED_SHAPE_STRENGTH = 0.5  # relight without a depth map: the length is a guess, so faint
NEGLIGIBLE = 1.0 / 255.0  # a shadow's blurred tail taking away less light than this is none
PENUMBRA = 1.5  # px (at the work size) of softening on a painted shadow's edge
TICKS_PER_IMAGE = len(RELIEFS) + 2  # progress: each relief tried, the new shadow, the old one


def shadow_rays(occluder: Tensor, receiver: Tensor, light: Light, reach: float) -> Tensor:
    """[B,H,W] 1 where the ray from the receiver toward the light passes under the occluder
    (heights in px; NONE where nothing occludes), 0 elsewhere: shading.march_shadows with
    nearest samples (NONE must not blend into a subject's edge) and the image's edge blocking
    nothing."""
    shadowed = march_shadows(
        occluder, receiver, light, reach, RAY_STEPS, sample="nearest", clip=True
    )
    return shadowed.to(occluder.dtype)


def relief_heights(subject: Tensor, depth: Tensor | None, relief: float) -> tuple[Tensor, Tensor]:
    """(occluder, receiver) height fields [B,H,W] in px: the subject over the surface."""
    if depth is None:
        return torch.where(subject > 0.5, inflate_heights(subject), NONE), torch.zeros_like(subject)
    heights = heights_from_depth(depth, relief)
    return torch.where(subject > 0.5, heights, NONE), heights


def cast_shadow(
    subject: Tensor, light: Light, depth: Tensor | None = None, relief: float = DEFAULT_RELIEF
) -> Tensor:
    """[B,H,W] 0/1: where the subject (mask [B,H,W]) casts its shadow for `light`, outside the
    subject. depth: [B,H,W] 0..1 white = near, at the mask's size, or None."""
    occluder, receiver = relief_heights(subject, depth, relief)
    reach = REACH * _subject_side(subject)
    return shadow_rays(occluder, receiver, light, reach) * (subject <= 0.5)


def _subject_side(subject: Tensor) -> float:
    rows = torch.nonzero((subject > 0.5).flatten(0, 1).any(dim=1)).numel() / subject.shape[0]
    cols = torch.nonzero((subject > 0.5).any(dim=1).flatten()).numel() / subject.shape[0]
    return max(rows, cols, 1.0)


def fit_relief(
    image: Tensor, depth: Tensor, region: Tensor, light: Light, tick: Tick = None
) -> float:
    """The depth map's scale (relief) whose cast shadows and shading best explain the
    luminance of `region` (the scene outside the subject) under the scene's `light`. Worked at
    FIT_SIDE px: a relief is a share of the image's side, so the shadows' lengths and the
    slopes are the same at any size, and eleven ray marches at the window's size took most of
    Shadow Mask's time."""
    image, depth, region = _fit_size(image, depth, region)
    values = luminance(image)
    best, best_loss = DEFAULT_RELIEF, math.inf
    usable = (region > 0.5) & (values > 0.02) & (values < 0.98)
    if int(usable.sum()) < 30:
        advance(tick, len(RELIEFS))
        return DEFAULT_RELIEF
    direction = light.direction[:1].to(values)
    unit = heights_from_depth(depth, 1.0)  # heights scale with the relief
    # every relief's rays in one march: the light is the same, so each step is one shift of
    # all the height fields (eleven marches of a 160 px field were mostly per-step overhead)
    heights = unit * unit.new_tensor(RELIEFS)[:, None, None]
    lights = light.select(0).repeat_to(len(RELIEFS))
    visible = 1.0 - shadow_rays(heights, heights, lights, 2.0 * max(depth.shape[1:]))
    shades = visible * (normals_from_heights(heights) @ direction[0]).clamp_min(0.0)
    observed = values[usable]
    for relief, shade in zip(RELIEFS, shades, strict=True):
        loss = _line_fit_loss(shade[usable[0]], observed)
        if loss < best_loss:
            best, best_loss = relief, loss
        advance(tick, 1)
    return best


def _fit_size(image: Tensor, depth: Tensor, region: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    size = size_within(*depth.shape[1:], FIT_SIDE)
    if size == tuple(depth.shape[1:]):
        return image, depth, region
    small = resize_image(
        torch.cat([image[..., :3], depth[..., None], region[..., None]], -1), *size
    )
    return small[..., :3], small[..., 3], small[..., 4]


def _line_fit_loss(shade: Tensor, values: Tensor) -> float:
    """Robust residual of values ~ a + b shade (b > 0), Cauchy-weighted."""
    design = torch.stack([torch.ones_like(shade), shade], dim=1)
    weight = torch.ones_like(values)
    for _ in range(5):
        w = weight.sqrt()[:, None]
        solution = torch.linalg.lstsq(design * w, (values * weight.sqrt())[:, None]).solution
        residual = values - (design @ solution)[:, 0]
        spread = 1.4826 * residual.abs().median().clamp_min(1e-4)
        weight = 1.0 / (1.0 + (residual / (2.0 * spread)) ** 2)
    if float(solution[1]) <= 0:
        return math.inf
    return float(torch.log1p((residual / 0.05) ** 2).mean())


def shadow_darkness(light: Light) -> Tensor:
    """[B] the share of light a shadow keeps on a surface facing the viewer: ambient over
    ambient + direct (the light's own ambient is the scene's shadow fill)."""
    direct = light.intensity * light.direction[:, 2].clamp_min(0.05)
    return light.ambient / (light.ambient + direct).clamp_min(1e-6)


def find_old_shadow(
    image: Tensor, subject: Tensor, light: Light, depth: Tensor | None = None, relief=None
) -> Tensor:
    """[B,H,W] 0/1: the shadow the subject casts in the photo under the scene's `light`: the
    predicted shadow (geometry), searched a little wider, where the photo is darker than its
    surroundings, kept where it touches the subject or the prediction."""
    relief = DEFAULT_RELIEF if relief is None else relief
    predicted = cast_shadow(subject, light, depth, relief)
    side = _subject_side(subject)
    search = grow_mask(
        torch.maximum(predicted, _attached(subject, light, side)), round(SEARCH_GROW * side)
    )
    search = search * (subject <= 0.5)
    dark = _darker_same_colour(image, search > 0, subject > 0.5, side)
    dark = _opened(dark, max(1, round(OPENING * side)))  # a texture's dark stripes are thin
    return _touching(dark, torch.maximum(predicted, grow_mask(subject, 2)) > 0.5).to(image.dtype)


def _around(image: Tensor, search: Tensor, subject: Tensor, side: float) -> Tensor:
    """[B,3,H,W]: the photo's lit surroundings (outside the search and the subject), carried
    into them by push-pull and smoothed: what each searched pixel would be without a shadow."""
    lit = (~search & ~subject).to(image.dtype)[:, None]
    colours = image.movedim(-1, 1)
    return gaussian_blur(push_pull_fill(colours * lit, lit), max(1.0, 0.05 * side))


def _darker_same_colour(image: Tensor, search: Tensor, subject: Tensor, side: float) -> Tensor:
    """Searched pixels darker than DARK_RATIO of their surroundings with the surroundings'
    chromaticity (a shadow darkens a surface, it does not change its colour: a dark red saucer
    on a light table is not a shadow)."""
    around = _around(image, search, subject, side)
    pixel = gaussian_blur(image.movedim(-1, 1), max(1.0, TEXTURE_SHARE * side))
    darker = luminance(pixel.movedim(1, -1)) < DARK_RATIO * luminance(around.movedim(1, -1))
    shift = (_chromaticity(pixel) - _chromaticity(around)).norm(dim=1)
    return darker & (shift < CHROMA_TOLERANCE) & search


def _chromaticity(colours: Tensor) -> Tensor:
    return colours[:, :2] / colours.sum(dim=1, keepdim=True).clamp_min(1e-4)


def measured_darkness(image: Tensor, subject: Tensor, old: Tensor) -> float | None:
    """How much light the photo's own shadows keep: the subject's existing shadow `old`
    [1,H,W] against its surroundings (median ratio), or None when none was found."""
    shadow = old[0] > 0.5
    if int(shadow.sum()) < MIN_SHADOW_PIXELS:
        return None
    side = _subject_side(subject)
    band = grow_mask(shadow[None].float(), max(2, round(0.1 * side))) > 0.5  # and its rim
    around = _around(image, band, subject > 0.5, side).movedim(1, -1)
    ratio = luminance(image)[0][shadow] / luminance(around)[0][shadow].clamp_min(1e-4)
    return float(ratio.median().clamp(0.05, 0.95))


def _opened(region: Tensor, radius: int) -> Tensor:
    """Morphological opening then closing of region [B,H,W] bool with a square of `radius`."""
    x = region.to(torch.float32)
    x = grow_mask(grow_mask(x, -radius), radius)
    return grow_mask(grow_mask(x, radius), -radius) > 0.5


def _attached(subject: Tensor, light: Light, side: float) -> Tensor:
    """The subject swept away from the light in the image plane over a short distance: where an
    object resting on a surface has its contact shadow."""
    direction = light.repeat_to(subject.shape[0]).direction.to(subject)
    planar = direction[:, :2]
    length = planar.norm(dim=1, keepdim=True)
    if float(length.min()) < 0.05:
        return torch.zeros_like(subject)
    away = -planar / length  # image-plane direction away from the light (x right, y up)
    swept = subject.clone()
    for k in range(1, 9):
        shift = 0.25 * side * k / 8
        dx, dy = away[:, 0] * shift, -away[:, 1] * shift  # rows grow downward
        swept = torch.maximum(swept, _shifted(subject, dx, dy))
    return swept


def _shifted(mask: Tensor, dx: Tensor, dy: Tensor) -> Tensor:
    batch, height, width = mask.shape
    theta = torch.zeros(batch, 2, 3, dtype=mask.dtype, device=mask.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    theta[:, 0, 2] = -2.0 * dx / max(width - 1, 1)
    theta[:, 1, 2] = -2.0 * dy / max(height - 1, 1)
    grid = F.affine_grid(theta, [batch, 1, height, width], align_corners=True)
    return F.grid_sample(mask[:, None], grid, align_corners=True)[:, 0]


def _touching(candidates: Tensor, seeds: Tensor) -> Tensor:
    """The connected parts of candidates [B,H,W] bool that overlap seeds [B,H,W] bool."""
    kept = []
    for cand, seed in zip(candidates.cpu().numpy(), seeds.cpu().numpy(), strict=True):
        labels, _ = ndimage.label(cand)
        hit = sorted(set(labels[seed & cand].tolist()) - {0})
        kept.append(torch.from_numpy(np.isin(labels, hit) & (labels > 0)))
    return torch.stack(kept).to(candidates.device)


def window(subject: Tensor, light: Light) -> Box | None:
    """The part of a full-size image a subject's shadow can reach: its box grown by REACH
    times its size toward every side (the light's side is cheap to include), clipped."""
    box = bounding_box(subject)
    if box is None:
        return None
    margin = round(REACH * max(box.height, box.width))
    return box.expanded(margin, *subject.shape)


def soft_edge(shadow: Tensor) -> Tensor:
    """A penumbra: the hard shadow's edge softened by PENUMBRA px."""
    return gaussian_blur(shadow[:, None], PENUMBRA)[:, 0].clamp(0.0, 1.0)


def shadow_mask(
    image: Tensor,
    subject: Tensor,
    light: Light,
    mode: str,
    depth: Tensor | None = None,
    relief: float | None = None,
    scene_light: Light | None = None,
    tick: Tick = None,
) -> Tensor:
    """[B,H,W] 0..1 at the image's size. relight: where the subject's shadow falls for `light`
    (the requested light), valued by how much light it takes away: the photo's own shadow
    darkness when `scene_light` is given and the subject's old shadow is found under it, else
    the light's (shadow_darkness); where that old shadow already is, nothing more; without a
    depth map (its length a guess from the silhouette) at half strength. fill: the
    subject's existing shadow under `light` (the scene's), 1 inside.
    relief None: fitted to the shadows in the photo under `scene_light` (default `light`) when
    a depth map is given (fit_relief). Worked on the window the shadow can reach, at most
    WORK_SIDE px a side. tick: called shadow_mask_ticks(B) times in all, as the work goes."""
    batch, height, width = subject.shape
    light = light.repeat_to(batch)
    scene = None if scene_light is None else scene_light.repeat_to(batch)
    result = torch.zeros_like(subject)
    for index in range(batch):
        box = window(subject[index], light.select(index))
        if box is None:
            advance(tick, TICKS_PER_IMAGE)
            continue
        rows, cols = box.slices
        size = size_within(box.height, box.width, WORK_SIDE)
        part_image = resize_image(image[index : index + 1, rows, cols, :3], *size)
        part_subject = resize_image(subject[index : index + 1, rows, cols, None], *size)[..., 0]
        part_depth = None
        if depth is not None:
            part_depth = resize_image(depth[index : index + 1, rows, cols, None], *size)[..., 0]
        # a relief is a share of the whole image's side; the window is smaller
        window_relief = (
            None if relief is None else relief * max(height, width) / max(box.height, box.width)
        )
        lights = light.select(index), None if scene is None else scene.select(index)
        found = _shadow_in_window(
            part_image, part_subject, lights, mode, part_depth, window_relief, tick
        )
        back = resize_image(found[..., None], box.height, box.width)[0, ..., 0].clamp(0.0, 1.0)
        back = torch.where(back < NEGLIGIBLE, torch.zeros_like(back), back)
        result[index, rows, cols] = back * (subject[index, rows, cols] <= 0.5)
    return result


def _shadow_in_window(image, subject, lights, mode, depth, relief, tick: Tick = None) -> Tensor:
    light, scene_light = lights  # scene_light: None when not given
    if relief is None and depth is not None:
        relief = fit_relief(image, depth, (subject <= 0.5).float(), scene_light or light, tick)
    else:
        advance(tick, len(RELIEFS))
    relief = DEFAULT_RELIEF if relief is None else relief
    if mode == "fill":  # grown a little: the penumbra goes with the shadow
        found = soft_edge(grow_mask(find_old_shadow(image, subject, light, depth, relief), 2))
        advance(tick, 2)
        return found
    new = soft_edge(cast_shadow(subject, light, depth, relief))
    advance(tick, 1)
    darkness = None
    if scene_light is not None:  # the photo's own shadow of the subject: its darkness, and
        old = find_old_shadow(image, subject, scene_light, depth, relief)
        darkness = measured_darkness(image, subject, old)
        new = new * (1.0 - soft_edge(old))  # where it is dark already it is not darkened twice
    advance(tick, 1)
    if darkness is None:
        darkness = float(shadow_darkness(light)[0])
    guessed = 1.0 if depth is not None else GUESSED_SHAPE_STRENGTH
    return new * (1.0 - darkness) * guessed


def shadow_mask_ticks(batch: int) -> int:
    """How many times shadow_mask calls its tick for a batch of `batch` images."""
    return batch * TICKS_PER_IMAGE


def paint_cast_shadow(output: Tensor, shadow: Tensor, subject: Tensor) -> None:
    """Darken output [B,H,W,3] in place where shadow [B,H,W] falls outside subject [B,H,W]:
    the shadow's value is the share of light it takes away. Only the shadow's window is
    touched, and pixels where the shadow is 0 are multiplied by exactly 1."""
    for index in range(output.shape[0]):
        box = bounding_box(shadow[index])
        if box is None:
            continue
        rows, cols = box.slices
        falls = shadow[index, rows, cols] * (1.0 - subject[index, rows, cols])
        output[index, rows, cols] = output[index, rows, cols] * (1.0 - falls[..., None])
