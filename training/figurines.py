"""Random figurine-like subjects for the learned shape prior: unions of ellipsoids arranged as a
four-legged animal, an upright bird or doll, a sitting animal, or loose blobs; seen from the
front and up to 29 degrees above, under one light with ambient, painted with smooth albedo and
marks. Rendered orthographically by ray casting each ellipsoid (x right, y up, z toward the
viewer, the pack's frame). 4 ms a subject at 128 px."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

Part = tuple[tuple[float, float, float], tuple[float, float, float], tuple[float, float, float]]
MAX_ELEVATION = 0.5  # rad: the camera looks down on the figurine by up to this
MIN_RADIUS = 0.03


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * torch.rand((), generator=generator).item()


def rotation(axis: int, angle: float) -> Tensor:
    """3x3 rotation about x (0), y (1) or z (2)."""
    c, s = math.cos(angle), math.sin(angle)
    i, j = [k for k in range(3) if k != axis]
    matrix = torch.eye(3)
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    if axis == 1:  # keep the right-handed sense about y
        matrix[i, j], matrix[j, i] = s, -s
    return matrix


def quadruped(g: torch.Generator) -> list[Part]:
    u = _uniform
    length, leg, body_h, body_w = u(g, 0.6, 1.2), u(g, 0.3, 0.9), u(g, 0.25, 0.45), u(g, 0.2, 0.4)
    parts: list[Part] = [
        ((0, leg + body_h * 0.7, 0), (length, body_h, body_w), (0, 0, u(g, -0.15, 0.15)))
    ]
    leg_r = u(g, 0.06, 0.14)
    for sx in (-1, 1):
        for sz in (-1, 1):
            centre = (sx * length * u(g, 0.55, 0.8), leg * 0.55, sz * body_w * 0.6)
            parts.append((centre, (leg_r, leg * 0.6, leg_r), (0, 0, u(g, -0.3, 0.3))))
    neck = u(g, 0.2, 0.6)
    parts.append(
        (
            (length * 0.85, leg + body_h + neck * 0.5, 0),
            (u(g, 0.12, 0.22), neck * 0.7, u(g, 0.1, 0.18)),
            (0, 0, u(g, -0.8, -0.2)),
        )
    )
    head = u(g, 0.15, 0.3)
    parts.append(
        (
            (length * 1.05, leg + body_h + neck, 0),
            (head * u(g, 1.0, 1.8), head, head * 0.8),
            (0, 0, u(g, -0.6, 0.3)),
        )
    )
    if u(g, 0, 1) < 0.6:  # tail
        parts.append(
            (
                (-length * 1.05, leg + body_h * 0.9, 0),
                (u(g, 0.25, 0.5), 0.06, 0.06),
                (0, 0, u(g, -0.9, 0.9)),
            )
        )
    return parts


def upright(g: torch.Generator) -> list[Part]:
    u = _uniform
    body_h, body_w = u(g, 0.6, 1.1), u(g, 0.35, 0.7)
    body_d = body_w * u(g, 0.7, 1.1)
    parts: list[Part] = [((0, body_h * 0.95, 0), (body_w, body_h, body_d), (0, 0, 0))]
    head = body_w * u(g, 0.6, 1.0)
    top = body_h * 1.8
    parts.append(
        ((0, top + head * 0.4, u(g, 0, 0.15)), (head * u(g, 0.9, 1.2), head, head * 0.9), (0, 0, 0))
    )
    if u(g, 0, 1) < 0.7:  # wings or arms
        for s in (-1, 1):
            parts.append(
                (
                    (s * body_w * 0.9, body_h * u(g, 0.8, 1.2), -0.05),
                    (body_w * 0.3, body_h * u(g, 0.5, 0.8), body_d * 0.6),
                    (0, 0, s * u(g, 0.0, 0.4)),
                )
            )
    if u(g, 0, 1) < 0.5:  # ear tufts
        for s in (-1, 1):
            parts.append(
                (
                    (s * head * 0.6, top + head * 1.3, 0),
                    (head * 0.2, head * 0.4, head * 0.15),
                    (0, 0, -s * 0.4),
                )
            )
    if u(g, 0, 1) < 0.6:  # feet
        for s in (-1, 1):
            parts.append(((s * body_w * 0.4, 0.08, body_d * 0.6), (0.12, 0.08, 0.18), (0, 0, 0)))
    if u(g, 0, 1) < 0.4:  # a base
        parts.append(((0, 0.05, 0), (body_w * 1.3, 0.1, body_d * 1.3), (0, 0, 0)))
    return parts


def sitting(g: torch.Generator) -> list[Part]:
    u = _uniform
    body = u(g, 0.4, 0.7)
    head = body * u(g, 0.45, 0.65)
    parts: list[Part] = [
        ((0, body * 0.9, -0.1), (body, body * 0.9, body * 1.1), (0, 0, 0)),
        ((0, body * 1.6, 0.1), (body * 0.6, body * 0.8, body * 0.6), (u(g, -0.3, 0.0), 0, 0)),
        ((0, body * 2.35, 0.2), (head * 1.1, head, head), (0, 0, 0)),
    ]
    for s in (-1, 1):
        parts.append(
            (
                (s * head * 0.6, body * 2.35 + head, 0.2),
                (head * 0.22, head * 0.4, head * 0.15),
                (0, 0, -s * 0.3),
            )
        )
        parts.append(
            ((s * body * 0.35, body * 0.6, body * 0.7), (0.09, body * 0.6, 0.09), (0, 0, 0))
        )
    if u(g, 0, 1) < 0.7:  # tail
        parts.append(((body * 0.6, 0.1, body * 0.5), (body * 0.8, 0.08, 0.1), (0, u(g, -1, 1), 0)))
    return parts


def blobs(g: torch.Generator) -> list[Part]:
    u = _uniform
    return [
        (
            (u(g, -0.6, 0.6), u(g, 0.2, 1.6), u(g, -0.3, 0.3)),
            (u(g, 0.1, 0.6), u(g, 0.1, 0.7), u(g, 0.1, 0.5)),
            (u(g, -1, 1), u(g, -1, 1), u(g, -1, 1)),
        )
        for _ in range(int(u(g, 2, 7)))
    ]


KINDS: tuple[Callable[[torch.Generator], list[Part]], ...] = (quadruped, upright, sitting, blobs)


def render(
    parts: list[Part], yaw: float, elevation: float, size: int, margin: float = 1.2
) -> tuple[Tensor, Tensor]:
    """(mask [S,S] bool, normals [S,S,3]) of the union of ellipsoids (centre, radii, x/y/z
    angles), turned by `yaw` about the vertical and seen `elevation` from above, framed with
    `margin` around it. Each ray meets the nearest ellipsoid; flat normals off the subject."""
    view = rotation(0, elevation) @ rotation(1, yaw)
    centres = torch.stack([view @ torch.tensor(c, dtype=torch.float32) for c, _, _ in parts])
    radii = torch.stack(
        [torch.tensor(r, dtype=torch.float32).clamp_min(MIN_RADIUS) for _, r, _ in parts]
    )
    turns = torch.stack(
        [view @ rotation(2, a[2]) @ rotation(1, a[1]) @ rotation(0, a[0]) for _, _, a in parts]
    )
    reach = radii.max(1).values[:, None]
    low = (centres[:, :2] - reach).min(0).values
    high = (centres[:, :2] + reach).max(0).values
    span, middle = float((high - low).max()) * margin, (high + low) / 2
    ys = torch.linspace(1, -1, size) * span / 2 + middle[1]
    xs = torch.linspace(-1, 1, size) * span / 2 + middle[0]
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    origin = torch.stack([x, y, torch.full_like(x, 100.0)], -1)
    # Each ellipsoid in its own unit-sphere frame: p + t q, |.| = 1.
    p = (
        torch.einsum("kji,khwj->khwi", turns, origin[None] - centres[:, None, None])
        / radii[:, None, None]
    )
    q = torch.einsum("kji,j->ki", turns, torch.tensor([0.0, 0.0, -1.0])) / radii
    a = (q * q).sum(-1)[:, None, None]
    b = 2 * (p * q[:, None, None]).sum(-1)
    c = (p * p).sum(-1) - 1
    disc = b * b - 4 * a * c
    t = torch.where(disc > 0, (-b - disc.clamp_min(0).sqrt()) / (2 * a), torch.inf)
    nearest, index = t.min(0)
    mask = torch.isfinite(nearest)
    local = p.gather(0, index[None, ..., None].expand(1, *index.shape, 3))[0]
    local = local + nearest.clamp(max=1e6)[..., None] * q[index]
    normals = F.normalize(torch.einsum("hwij,hwj->hwi", turns[index], local / radii[index]), dim=-1)
    return mask, torch.where(mask[..., None], normals, torch.tensor([0.0, 0.0, 1.0]))


def _smooth_noise(size: int, g: torch.Generator, cells: int) -> Tensor:
    noise = torch.rand((1, 1, max(2, size // cells), max(2, size // cells)), generator=g)
    return F.interpolate(noise, size=(size, size), mode="bicubic", align_corners=False)[0, 0]


def shaded(mask: Tensor, normals: Tensor, g: torch.Generator) -> Tensor:
    """The grey picture [S,S] of a subject as a photo shows it (display-encoded): smooth albedo
    with painted marks, one light from the front hemisphere with ambient, a little gloss."""
    u = _uniform
    size = mask.shape[0]
    azimuth, elevation = u(g, -1.2, 1.2), u(g, -0.3, 1.0)
    light = torch.tensor(
        [
            math.sin(azimuth) * math.cos(elevation),
            math.sin(elevation),
            math.cos(azimuth) * math.cos(elevation),
        ]
    )
    albedo = u(g, 0.3, 0.9) * (1 + u(g, 0, 0.5) * (_smooth_noise(size, g, int(u(g, 4, 32))) - 0.5))
    if u(g, 0, 1) < 0.5:
        marks = (_smooth_noise(size, g, int(u(g, 6, 20))) > u(g, 0.7, 0.9)).float()
        albedo = albedo * (1 - marks * u(g, -0.5, 0.8))
    facing = (normals * light).sum(-1)
    mirror = (2 * facing[..., None] * normals - light)[..., 2].clamp_min(0)
    linear = albedo * (u(g, 0.03, 0.35) + facing.clamp_min(0)) + u(g, 0, 0.3) * mirror**20
    linear = linear * mask + torch.randn(linear.shape, generator=g) * 0.005
    return linear.clamp_min(0) ** (1 / 2.2)


def figurine(size: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
    """(mask [S,S] bool, normals [S,S,3], grey [S,S]) of one random figurine, mirrored at
    random."""
    kind = KINDS[int(torch.randint(0, len(KINDS), (), generator=g))]
    parts = kind(g)
    mask, normals = render(
        parts,
        _uniform(g, 0, 2 * math.pi),
        _uniform(g, 0.0, MAX_ELEVATION),
        size,
        _uniform(g, 1.05, 1.4),
    )
    if _uniform(g, 0, 1) < 0.5:
        mask, normals = mask.flip(1), normals.flip(1) * torch.tensor([-1.0, 1.0, 1.0])
    return mask, normals, shaded(mask, normals, g)
