"""What the light does to a shape: the shading map, cast shadows from a height field, and
IC-Light's flat gradient (the official code's ramp) for models trained on it.

shading = colour * (ambient + intensity * max(0, n . l) * visibility), per pixel, the same law
the training renderer uses; it is the light map the pack's shading model is given, and the
factor a relight divides out (the current light) and multiplies in (the requested one).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .light import Light, shade_sphere

SHADOW_STEPS = 48  # samples along each shadow ray
_MIN_SIN = 0.05  # lights this close to the image plane cast shadows at most this long
_NO_RELIEF = -1.0e4  # occluder height where a relief has no value: it blocks nothing


def lambert(normals: Tensor, light: Light) -> Tensor:
    """max(0, n . l) [B,H,W] for normals [B,H,W,3]."""
    direction = light.direction.to(normals)[:, None, None, :]
    return (normals * direction).sum(-1).clamp_min(0.0)


def shading_map(normals: Tensor, light: Light, visibility: Tensor | None = None) -> Tensor:
    """RGB shading [B,H,W,3] of unit normals [B,H,W,3] under `light` (one per image or one)."""
    light = light.repeat_to(normals.shape[0])
    direct = lambert(normals, light)
    if visibility is not None:
        direct = direct * visibility
    level = (
        light.ambient.to(normals)[:, None, None]
        + light.intensity.to(normals)[:, None, None] * direct
    )
    return level[..., None] * light.color.to(normals)[:, None, None, :]


def march_shadows(
    occluder: Tensor,
    receiver: Tensor,
    light: Light,
    reach: float,
    steps: int = SHADOW_STEPS,
    *,
    sample: str = "bilinear",
    tolerance: float = 0.0,
    clip: bool = False,
) -> Tensor:
    """[B,H,W] bool: where the ray from the receiver [B,H,W] (heights in px) toward the light
    passes under the occluder [B,H,W] (it rises more than `tolerance` above the ray) within
    `reach` px, sampled at `steps` points. clip: points off the image block nothing (else
    the outside counts as height 0). A light (nearly) from the viewer casts no visible shadow.
    """
    batch, height, width = occluder.shape
    light = light.repeat_to(batch)
    direction = light.direction.to(occluder)
    planar = direction[:, :2].norm(dim=1)
    rise = direction[:, 2] / planar.clamp_min(1e-6)  # height gained per pixel toward the light
    step_col = direction[:, 0] / planar.clamp_min(1e-6)
    step_row = -direction[:, 1] / planar.clamp_min(1e-6)
    rows = torch.arange(height, device=occluder.device, dtype=occluder.dtype)
    cols = torch.arange(width, device=occluder.device, dtype=occluder.dtype)
    row_scale, col_scale = 2.0 / max(height - 1, 1), 2.0 / max(width - 1, 1)
    grid_row, grid_col = torch.meshgrid(rows * row_scale - 1, cols * col_scale - 1, indexing="ij")
    base = torch.stack([grid_col, grid_row], dim=-1)[None]  # grid_sample's (x, y) in -1..1
    shadowed = torch.zeros_like(occluder, dtype=torch.bool)
    field = occluder[:, None]
    padding = "border" if clip else "zeros"
    clear = _clear_distance(occluder, receiver, rise, tolerance, clip)
    # one light for the whole batch, nearest samples: each step is an integer shift, compared
    # on the overlap in place (grid_sample built and sampled a full grid per step)
    shifted = sample == "nearest" and bool((direction == direction[:1]).all())
    for k in range(1, steps + 1):
        distance = reach * k / steps
        if distance > clear:  # every ray is above the highest occluder from here on
            break
        # every pixel's ray steps by the same offset: one shift of the whole grid per step
        shift_row, shift_col = step_row * distance, step_col * distance
        if shifted:
            threshold = rise * distance + tolerance
            _block_shifted(shadowed, occluder, receiver, shift_row, shift_col, threshold, clip)
            continue
        offset = torch.stack([shift_col * col_scale, shift_row * row_scale], dim=-1)
        grid = base + offset[:, None, None, :]
        above = F.grid_sample(field, grid, mode=sample, padding_mode=padding, align_corners=True)[
            :, 0
        ]
        blocked = above > receiver + (rise * distance + tolerance)[:, None, None]
        if clip:
            on_rows = _on_image(rows, shift_row, height)[:, :, None]
            blocked &= on_rows & _on_image(cols, shift_col, width)[:, None, :]
        shadowed |= blocked
    frontal = (planar < _MIN_SIN)[:, None, None]
    return shadowed & ~frontal


def _block_shifted(
    shadowed: Tensor,
    occluder: Tensor,
    receiver: Tensor,
    shift_row: Tensor,
    shift_col: Tensor,
    threshold: Tensor,
    clip: bool,
) -> None:
    """shadowed [B,H,W] |= the occluder, shifted by the nearest whole pixel of (shift_row,
    shift_col) (the same for the whole batch), above receiver + threshold [B]; off the image
    the occluder is height 0, or blocks nothing where `clip`."""
    height, width = occluder.shape[1:]
    (r0, r1, d_row), (c0, c1, d_col) = (
        _overlap(float(shift[0]), size, clip)
        for shift, size in ((shift_row, height), (shift_col, width))
    )
    limit = threshold.to(receiver)[:, None, None]
    if r0 < r1 and c0 < c1:
        above = occluder[:, r0 + d_row : r1 + d_row, c0 + d_col : c1 + d_col]
        shadowed[:, r0:r1, c0:c1] |= above > receiver[:, r0:r1, c0:c1] + limit
    if not clip and bool((receiver < -limit).any()):
        below_ground = receiver < -limit  # the outside (height 0) rises above these rays
        below_ground[:, r0:r1, c0:c1] = False
        shadowed |= below_ground


def _overlap(shift: float, size: int, clip: bool) -> tuple[int, int, int]:
    """(first, end, offset): the positions p in first..end - 1 sampled on the image, each at
    p + offset (the nearest pixel). As grid_sample and _on_image decide it: clipped, p + shift
    itself must lie in 0 .. size - 1; else its nearest pixel must."""
    offset = round(shift)
    reach = shift if clip else float(offset)
    first = max(0, math.ceil(-reach))
    end = min(size, math.floor(size - 1 - reach) + 1)
    return first, max(first, end), offset


def _on_image(positions: Tensor, shift: Tensor, size: int) -> Tensor:
    """[B, size] bool: position + shift lies on the image (0 .. size - 1)."""
    moved = positions[None] + shift[:, None]
    return (moved >= 0) & (moved <= size - 1)


def _clear_distance(
    occluder: Tensor, receiver: Tensor, rise: Tensor, tolerance: float, clip: bool
) -> float:
    """How far along the rays anything can still block: past it every ray has risen above the
    highest occluder (0 beyond the image, unless clipped), seen from the lowest receiver. The
    march stops there with the same answer: a light at 30 degrees over a subject 100 px high
    needs 170 px of ray, not the 2 image sides a long shadow may need."""
    highest = occluder.flatten(1).amax(1)
    if not clip:
        highest = highest.clamp_min(0.0)
    lowest = receiver.flatten(1).amin(1)
    gap = (highest - lowest - tolerance).clamp_min(0.0)
    return float((gap / rise.clamp_min(1e-6)).max())


def cast_shadows(
    heights: Tensor, light: Light, max_length: float = 0.5, sample: str = "bilinear"
) -> Tensor:
    """Visibility [B,H,W] (1 = lit) of a height field [B,H,W] (pixels) toward the light: a pixel
    is shadowed when the field rises above the ray from it to the light (by half a pixel: its
    own interpolated slope is not a shadow). Rays run at most `max_length` of the image's
    longer side. sample "nearest": a third of the time, blockier edges (march_shadows)."""
    reach = max_length * max(heights.shape[1:])
    steps = min(SHADOW_STEPS, math.ceil(reach))  # a sample per pixel of ray is enough
    shadowed = march_shadows(heights, heights, light, reach, steps, sample=sample, tolerance=0.5)
    return (~shadowed).to(heights.dtype)


def self_shadows(relief: Tensor, light: Light, max_steps: int = 2 * SHADOW_STEPS) -> Tensor:
    """Visibility [B,H,W] (1 = lit) of a relief [B,H,W] (px toward the viewer) that covers only
    part of the image (NaN elsewhere, where it neither casts nor receives): a face mesh's nose
    shading its cheek. Marched over the relief's bounding box only, a sample per pixel of ray
    up to `max_steps`."""
    known = ~relief.isnan()
    visibility = torch.ones_like(relief)
    light = light.repeat_to(relief.shape[0])
    for i, (one, inside) in enumerate(zip(relief, known, strict=True)):
        one_light = light.select(i)
        if float(one_light.direction[0, 2]) <= 0.0:
            continue  # from behind, every point facing the viewer is in its attached shadow
        rows, cols = inside.any(1).nonzero(), inside.any(0).nonzero()
        if rows.numel() == 0:
            continue
        top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        box = one[top:bottom, left:right]
        occluder = torch.where(box.isnan(), torch.full_like(box, _NO_RELIEF), box)[None]
        receiver = torch.where(box.isnan(), box.nan_to_num(0.0).amax(), box)[None]
        reach = float(max(bottom - top, right - left))
        steps = min(max_steps, math.ceil(reach))
        shadowed = march_shadows(
            occluder, receiver, one_light, reach, steps, tolerance=0.5, clip=True
        )[0]
        visibility[i, top:bottom, left:right] = torch.where(
            inside[top:bottom, left:right] & shadowed, 0.0, 1.0
        )
    return visibility


def iclight_ramp(light: Light, height: int, width: int) -> Tensor:
    """IC-Light's light image [B,H,W,3] in 0..1, as its official demo draws it for the presets
    (e.g. 'Left Light': a linear ramp from 1 at the left edge to 0 at the right, no ambient),
    and the same ramp along any other direction's image-plane part, spanning the image corner
    to corner. The out-of-plane part raises the whole ramp toward uniform white (a frontal
    light is uniform). Intensity and colour multiply it."""
    light_dir = light.direction
    device = light_dir.device
    u = torch.linspace(-1.0, 1.0, width, device=device) if width > 1 else torch.zeros(1)
    v = torch.linspace(1.0, -1.0, height, device=device) if height > 1 else torch.zeros(1)
    vv, uu = torch.meshgrid(v.to(device), u.to(device), indexing="ij")
    lx, ly, lz = (c[:, None, None] for c in light_dir.unbind(-1))
    planar = (lx**2 + ly**2).sqrt()
    extent = (lx.abs() + ly.abs()).clamp_min(1e-6)  # the largest |u lx + v ly| over the image
    along = (uu * lx + vv * ly) / extent  # -1..1 corner to corner, +1 toward the light
    ramp = 0.5 * (1.0 + along) * planar + lz.clamp_min(0.0) * (1.0 - planar)
    ramp = ramp.clamp(0.0, 1.0) * light.intensity[:, None, None]
    return (ramp[..., None] * light.color[:, None, None, :]).clamp(0.0, 1.0)


def light_preview(light: Light, size: int = 256) -> Tensor:
    """Preview IMAGE [B, size, 2*size, 3]: a sphere shaded by the light (the shading map on a
    sphere) beside IC-Light's ramp for it."""
    return torch.cat([shade_sphere(light, size), iclight_ramp(light, size, size)], dim=2)
