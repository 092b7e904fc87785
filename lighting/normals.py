"""Surface normals of the subject: decoding users' normal maps, depth to normals, and the pack's
own estimate from the mask's silhouette.

Frame (the pack's): x right, y up, z toward the viewer. A NORMAL map is an IMAGE with
RGB = (n + 1) / 2 in that frame ("y_up", OpenGL); "y_down" (DirectX) stores -y in green.

The estimate inflates the silhouette: h solves the Poisson equation lap(h) = -1 inside the mask
with h = 0 on its boundary, and z = sqrt(c * h). For a disc of radius R this is exactly a
sphere (c = 4) and for a strip of half-width a exactly a cylinder (c = 2); c = 3 sits between.
Normals fall to the image plane at the silhouette, as they do at an occluding contour. The
image border is not a boundary (a subject cut by the frame continues past it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from ..conditioning.filters import gaussian_blur

CONVENTIONS = ("y_up", "y_down")
INFLATION = 3.0  # c in z = sqrt(c h): 4 makes discs spheres, 2 makes strips cylinders
SOLVE_SIDE = 192  # the Poisson solve runs at most this many pixels a side, then is upsampled
_COARSEST = 8
_SWEEPS = 40
_BACKGROUND_VALUE = 0.02  # encoded pixels darker than this are an estimator's empty background
_UNIT_TOLERANCE = 0.25
_BAD_SHARE = 0.1
FLAT = (0.0, 0.0, 1.0)
DEPTH_STEP = 1.0 / 255.0  # the quantisation step of a depth map saved as an 8-bit image
DEQUANTIZE_SWEEPS = 20


def _check_convention(convention: str) -> None:
    if convention not in CONVENTIONS:
        raise ValueError(f"normal_convention: expected one of {CONVENTIONS}, got {convention!r}")


def decode_normal_map(image: Tensor, convention: str = "y_up") -> Tensor:
    """IMAGE [B,H,W,3] 0..1 -> raw vectors [B,H,W,3] (not normalised: see check_normal_map)."""
    _check_convention(convention)
    vectors = image[..., :3].float() * 2.0 - 1.0
    if convention == "y_down":
        vectors = vectors * vectors.new_tensor([1.0, -1.0, 1.0])
    return vectors


def encode_normal_map(normals: Tensor, convention: str = "y_up") -> Tensor:
    """Unit normals [B,H,W,3] -> IMAGE [B,H,W,3] 0..1."""
    _check_convention(convention)
    if convention == "y_down":
        normals = normals * normals.new_tensor([1.0, -1.0, 1.0])
    return ((normals + 1.0) / 2.0).clamp(0.0, 1.0)


def unit_normals(vectors: Tensor) -> Tensor:
    """Normalised, facing the viewer (z >= 0); zero vectors become the flat normal."""
    length = vectors.norm(dim=-1, keepdim=True)
    flat = vectors.new_tensor(FLAT).expand_as(vectors)
    unit = torch.where(length > 1e-6, vectors / length.clamp_min(1e-6), flat)
    return torch.cat([unit[..., :2], unit[..., 2:].clamp_min(0.0)], dim=-1)


def check_normal_map(image: Tensor, mask: Tensor, name: str = "normal_map") -> None:
    """Refuse an IMAGE that is not a normal map inside the mask: its pixels must decode to unit
    vectors (8-bit rounding and resizing allowed for). Black background pixels are ignored."""
    vectors = image[..., :3].float() * 2.0 - 1.0
    inside = mask > 0.5
    background = image[..., :3].amax(dim=-1) < _BACKGROUND_VALUE
    judged = inside & ~background
    if int(judged.sum()) == 0:
        return
    length = vectors.norm(dim=-1)[judged]
    bad = ((length - 1.0).abs() > _UNIT_TOLERANCE).float().mean()
    if float(bad) > _BAD_SHARE:
        raise ValueError(
            f"{name}: inside the mask {float(bad):.0%} of the pixels do not decode to unit "
            "vectors (RGB = (n + 1) / 2); expected a normal map such as DSINE, BAE, Marigold or "
            "Lotus produce. A depth map goes into the depth_map input instead"
        )


def prepare_normal_map(
    image: Tensor, mask: Tensor, height: int, width: int, convention: str = "y_up"
) -> Tensor:
    """A user's normal map as unit normals [B,H,W,3] at (height, width): resized if it has
    another size (bilinear on the vectors, then renormalised), checked inside the mask."""
    image = image[..., :3].float()
    if tuple(image.shape[1:3]) != (height, width):
        image = _resize(image, height, width)
    mask = _resize(mask[..., None].float(), height, width)[..., 0]
    if image.shape[0] == 1 and mask.shape[0] > 1:
        image = image.expand(mask.shape[0], -1, -1, -1)
    check_normal_map(image, mask)
    return unit_normals(decode_normal_map(image, convention))


def _resize(image: Tensor, height: int, width: int) -> Tensor:
    """[B,H,W,C] bilinear resize."""
    resized = F.interpolate(image.movedim(-1, 1), size=(height, width), mode="bilinear")
    return resized.movedim(1, -1)


def normals_from_heights(heights: Tensor) -> Tensor:
    """Unit normals [B,H,W,3] of a height field [B,H,W] in pixels (row 0 is the top: +y)."""
    padded = F.pad(heights[:, None], (1, 1, 1, 1), mode="replicate")[:, 0]
    dz_dcol = (padded[:, 1:-1, 2:] - padded[:, 1:-1, :-2]) / 2.0
    dz_drow = (padded[:, 2:, 1:-1] - padded[:, :-2, 1:-1]) / 2.0
    # x = col, y = -row: n ~ (-dz/dx, -dz/dy, 1) = (-dz/dcol, +dz/drow, 1)
    vectors = torch.stack([-dz_dcol, dz_drow, torch.ones_like(heights)], dim=-1)
    return unit_normals(vectors)


def integrable_normals(normals: Tensor, inside: Tensor, min_facing: float = 0.3) -> Tensor:
    """Normals [B,H,W,3] of the surface whose slopes come nearest, in least squares, to those of
    `normals` inside `inside` [B,H,W] bool (Frankot-Chellappa: the slopes projected onto the
    gradients of one height field, by FFT); outside, `normals` as given. Why: a field of normals
    that turns on its own (each pixel corrected apart) need not be any surface's, and one that
    is a surface's tells, from its turns along one direction, its turns along the other.
    min_facing: the normals are taken to face the viewer at least this much (z), bounding a
    silhouette's rim, whose slope grows without bound."""
    facing = normals[..., 2].clamp_min(min_facing)
    slope_col = torch.where(inside, -normals[..., 0] / facing, 0.0)
    slope_row = torch.where(inside, normals[..., 1] / facing, 0.0)
    height, width = inside.shape[1:]
    slope_col, slope_row = mirrored(slope_col), mirrored(slope_row)
    freq_row = torch.fft.fftfreq(2 * height) * 2 * torch.pi
    freq_col = torch.fft.fftfreq(2 * width) * 2 * torch.pi
    wy, wx = torch.meshgrid(freq_row, freq_col, indexing="ij")
    denominator = (wx**2 + wy**2).clamp_min(1e-12)
    spectrum = -1j * (wx * torch.fft.fft2(slope_col) + wy * torch.fft.fft2(slope_row))
    spectrum = spectrum / denominator
    spectrum[..., 0, 0] = 0.0
    heights = torch.fft.ifft2(spectrum).real[:, :height, :width]
    return torch.where(inside[..., None], normals_from_heights(heights), normals)


def mirrored(values: Tensor) -> Tensor:
    """[B,2H,2W]: values [B,H,W] beside their mirror images, so the FFT sees no step where the
    image wraps around."""
    rows = torch.cat([values, values.flip(1)], 1)
    return torch.cat([rows, rows.flip(2)], 2)


def heights_from_depth(depth: Tensor, relief: float = 0.3) -> Tensor:
    """A depth IMAGE or MASK (white = near, as ComfyUI's depth estimators give it) as heights in
    pixels: the map's range spans `relief` times the image's longer side."""
    if depth.ndim == 4:
        depth = depth[..., :3].float().mean(dim=-1)
    if not math.isfinite(relief) or relief <= 0:
        raise ValueError(f"depth_relief: expected a positive number, got {relief}")
    return dequantize_depth(depth.float()) * relief * max(depth.shape[1:3])


def dequantize_depth(depth: Tensor, step: float = DEPTH_STEP) -> Tensor:
    """depth [B,H,W] 0..1 smoothed within its quantisation step. Why: a depth map saved as an
    8-bit image is a staircase, and its normals are rings (the contour lines of a sphere) that
    the relight then paints on the subject. Smoothing while each pixel stays within half a step
    of its value removes the steps on gentle slopes without blurring across real depth edges
    (there, neighbouring values differ by many steps); a last 1 px blur rounds the kinks. On
    rendered scenes at 256 px this brings 8-bit normals from 5.9 to 2.0 deg mean error."""
    low, high = depth - step / 2, depth + step / 2
    smooth = depth
    for _ in range(DEQUANTIZE_SWEEPS):
        smooth = gaussian_blur(smooth[:, None], 1.0)[:, 0]
        smooth = torch.maximum(torch.minimum(smooth, high), low)
    return gaussian_blur(smooth[:, None], 1.0)[:, 0]


def _jacobi(h: Tensor, inside: Tensor, sweeps: int) -> Tensor:
    """Relax lap(h) = -1 inside, h = 0 outside; the image border reflects (no boundary there)."""
    keep = inside.to(h.dtype)
    for _ in range(sweeps):
        p = F.pad(h, (1, 1, 1, 1), mode="replicate")
        total = p[..., :-2, 1:-1] + p[..., 2:, 1:-1] + p[..., 1:-1, :-2] + p[..., 1:-1, 2:]
        h = (total + 1.0).mul_(0.25 * keep)
    return h


def poisson_heights(mask: Tensor) -> Tensor:
    """h with lap(h) = -1 inside the mask [B,H,W], 0 outside, in pixels^2 (multigrid)."""
    inside = (mask > 0.5).float()[:, None]
    levels = [inside]
    while min(levels[-1].shape[-2:]) > _COARSEST:
        levels.append((F.avg_pool2d(levels[-1], 2, ceil_mode=True) > 0.5).float())
    h = torch.zeros_like(levels[-1])
    for level in reversed(levels):
        if h.shape[-2:] != level.shape[-2:]:
            h = F.interpolate(h, size=level.shape[-2:], mode="bilinear") * 4.0
        h = _jacobi(h * level, level > 0.5, _SWEEPS if level is not inside else 2 * _SWEEPS)
    return h[:, 0]


def inflate_heights(mask: Tensor, inflation: float = INFLATION) -> Tensor:
    """Heights [B,H,W] in pixels of the inflated silhouette (see the module's docstring)."""
    height, width = mask.shape[-2:]
    scale = min(1.0, SOLVE_SIDE / max(height, width))
    small = mask.float()
    if scale < 1.0:
        size = (max(1, round(height * scale)), max(1, round(width * scale)))
        small = F.interpolate(mask.float()[:, None], size=size, mode="area")[:, 0]
    z = (inflation * poisson_heights(small)).clamp_min(0.0).sqrt()
    if scale < 1.0:
        z = F.interpolate(z[:, None], size=(height, width), mode="bilinear")[:, 0] / scale
    return z * (mask > 0.5)


def flat_normals(mask: Tensor) -> Tensor:
    """Normals [B,H,W,3] all facing the viewer."""
    return mask.new_tensor(FLAT).expand(*mask.shape, 3)


def estimate_normals(mask: Tensor) -> tuple[Tensor, Tensor]:
    """(normals [B,H,W,3], heights [B,H,W]) for the masked subject; flat outside the mask."""
    heights = inflate_heights(mask)
    normals = normals_from_heights(heights)
    flat = normals.new_tensor(FLAT).expand_as(normals)
    return torch.where((mask > 0.5)[..., None], normals, flat), heights


def angular_error_degrees(a: Tensor, b: Tensor, mask: Tensor) -> Tensor:
    """Median angle between normal fields [B,H,W,3] inside the mask, per image."""
    cosine = (F.normalize(a, dim=-1) * F.normalize(b, dim=-1)).sum(-1).clamp(-1.0, 1.0)
    angles = torch.rad2deg(torch.acos(cosine))
    return torch.stack([angles[i][mask[i] > 0.5].median() for i in range(a.shape[0])])


def depth_plane(depth_map: Tensor, height: int, width: int) -> Tensor:
    """A depth IMAGE [B,H,W,C] or MASK [B,H,W] as one plane [B,height,width] (resized)."""
    depth = depth_map.float() if depth_map.ndim == 3 else depth_map[..., :3].float().mean(-1)
    if tuple(depth.shape[1:3]) != (height, width):
        depth = _resize(depth[..., None], height, width)[..., 0]
    return depth


def subject_normals(
    mask: Tensor,
    normal_map: Tensor | None = None,
    depth_map: Tensor | None = None,
    convention: str = "y_up",
    relief: float = 0.3,
) -> tuple[Tensor, Tensor | None]:
    """(normals [B,H,W,3], heights [B,H,W] or None) of the masked subject at the mask's size:
    from a user's normal map, else from a depth map, else the pack's silhouette estimate.
    Heights (for cast shadows) come only from a depth map: the silhouette estimate is convex,
    so it casts no shadow on the subject, and its discretised rim would only add false ones."""
    height, width = mask.shape[-2:]
    if normal_map is not None:
        return prepare_normal_map(normal_map, mask, height, width, convention), None
    if depth_map is not None:
        heights = heights_from_depth(depth_plane(depth_map, height, width), relief)
        return normals_from_heights(heights), heights
    return estimate_normals(mask)[0], None
