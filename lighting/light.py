"""Light description and the maps and previews made from it.

Camera frame: x to the right, y up, z toward the viewer. Azimuth 0° = light from the right,
90° = from the top (counter-clockwise as the viewer sees it); elevation 0° = in the image
plane, 90° = from the viewer (frontal).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

LIGHT_MAP_CHANNELS = 9

PRESET_DIRECTIONS: dict[str, tuple[float, float, float]] = {
    "left": (-1.0, 0.0, 0.0),
    "right": (1.0, 0.0, 0.0),
    "top": (0.0, 1.0, 0.0),
    "bottom": (0.0, -1.0, 0.0),
    "front": (0.0, 0.0, 1.0),
}

_MIN_NORM = 1e-6
_SPECULAR_EXPONENT = 32.0
_SPECULAR_WEIGHT = 0.3
_SPHERE_BACKGROUND = 0.1


@dataclass(frozen=True)
class Light:
    """A batch of B directional lights with ambient term and colour."""

    direction: Tensor  # [B, 3] unit vectors
    intensity: Tensor  # [B]
    ambient: Tensor  # [B]
    color: Tensor  # [B, 3] linear RGB 0..1

    def __post_init__(self) -> None:
        _expect_shape("light.direction", self.direction, (None, 3))
        batch = self.direction.shape[0]
        _expect_shape("light.intensity", self.intensity, (batch,))
        _expect_shape("light.ambient", self.ambient, (batch,))
        _expect_shape("light.color", self.color, (batch, 3))
        if batch == 0:
            raise ValueError("light: expected at least one light, got an empty batch")

    @property
    def batch_size(self) -> int:
        return self.direction.shape[0]

    def select(self, index: int) -> Light:
        """The light at `index` (negative counts from the end), as a batch of one."""
        n = self.batch_size
        if not -n <= index < n:
            raise ValueError(f"index: expected {-n}..{n - 1} for {n} lights, got {index}")
        index %= n
        part = slice(index, index + 1)
        return Light(
            self.direction[part], self.intensity[part], self.ambient[part], self.color[part]
        )

    def repeat_to(self, batch: int) -> Light:
        """This light batch stretched to `batch` lights (only a single light is repeated)."""
        if self.batch_size == batch:
            return self
        if self.batch_size != 1:
            raise ValueError(f"light: batch of {self.batch_size} lights, expected 1 or {batch}")
        return Light(
            self.direction.repeat(batch, 1),
            self.intensity.repeat(batch),
            self.ambient.repeat(batch),
            self.color.repeat(batch, 1),
        )

    def concat(self, other: Light) -> Light:
        """The lights of `self` followed by those of `other`."""
        device = self.direction.device
        return Light(
            torch.cat([self.direction, other.direction.to(device)]),
            torch.cat([self.intensity, other.intensity.to(device)]),
            torch.cat([self.ambient, other.ambient.to(device)]),
            torch.cat([self.color, other.color.to(device)]),
        )


def _expect_shape(name: str, tensor: Tensor, shape: tuple[int | None, ...]) -> None:
    ok = tensor.ndim == len(shape) and all(
        want is None or got == want for got, want in zip(tensor.shape, shape, strict=True)
    )
    if not ok:
        wanted = "[" + ", ".join("B" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name}: expected shape {wanted}, got {list(tensor.shape)}")


def direction_from_angles(azimuth_deg: float, elevation_deg: float) -> Tensor:
    """Unit vector [3] pointing toward the light."""
    if not math.isfinite(azimuth_deg):
        raise ValueError(f"azimuth: expected a finite angle in degrees, got {azimuth_deg}")
    if not -90.0 <= elevation_deg <= 90.0:
        raise ValueError(f"elevation: expected -90..90 degrees, got {elevation_deg}")
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    xyz = (math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el))
    return torch.tensor(xyz, dtype=torch.float32)


def angles_from_direction(direction: Tensor) -> tuple[Tensor, Tensor]:
    """(azimuth, elevation) in degrees of direction(s) [..., 3]; azimuth in (-180, 180]."""
    if direction.ndim == 0 or direction.shape[-1] != 3:
        raise ValueError(f"direction: expected shape [..., 3], got {list(direction.shape)}")
    d = direction.to(torch.float64)
    x, y, z = d.unbind(-1)
    norm = d.norm(dim=-1).clamp_min(_MIN_NORM)
    azimuth = torch.rad2deg(torch.atan2(y, x))
    azimuth = torch.where(azimuth <= -180.0, azimuth + 360.0, azimuth)
    elevation = torch.rad2deg(torch.asin((z / norm).clamp(-1.0, 1.0)))
    return azimuth.to(direction.dtype), elevation.to(direction.dtype)


def normalize_direction(x: float, y: float, z: float) -> Tensor:
    """The unit vector [3] along (x, y, z)."""
    name = "light vector (x, y, z)"
    if not all(math.isfinite(c) for c in (x, y, z)):
        raise ValueError(f"{name}: expected finite numbers, got ({x}, {y}, {z})")
    norm = math.hypot(x, y, z)  # x * x overflows to inf for |x| > 1e154
    if norm < _MIN_NORM:
        raise ValueError(f"{name}: x, y, z are all zero; expected a direction")
    if math.isinf(norm):  # each finite, the length is not (near the largest float): scale first
        largest = max(abs(x), abs(y), abs(z))
        x, y, z = x / largest, y / largest, z / largest
        norm = math.hypot(x, y, z)
    return torch.tensor((x / norm, y / norm, z / norm), dtype=torch.float32)


def parse_color(text: str) -> Tensor:
    """RGB [3] in 0..1 from "#rrggbb", "#rgb" or "r,g,b" (0..255 ints, or 0..1 floats)."""
    rgb = _parse_hex(text.strip()) if text.strip().startswith("#") else _parse_triplet(text)
    if rgb is None:
        raise ValueError(
            f"color: expected #rrggbb, #rgb, 'r,g,b' with 0..255 integers "
            f"or 'r,g,b' with 0..1 decimals, got {text!r}"
        )
    return torch.tensor(rgb, dtype=torch.float32)


def _parse_hex(text: str) -> tuple[float, float, float] | None:
    digits = text[1:]
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    if len(digits) != 6:
        return None
    try:
        values = [int(digits[i : i + 2], 16) for i in (0, 2, 4)]
    except ValueError:
        return None
    return tuple(v / 255.0 for v in values)


def _parse_triplet(text: str) -> tuple[float, float, float] | None:
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 3:
        return None
    try:
        values = [float(p) for p in parts]
    except ValueError:
        return None
    if not all(math.isfinite(v) for v in values):
        return None
    if any("." in p for p in parts) and all(0.0 <= v <= 1.0 for v in values):
        return tuple(values)
    if all(v.is_integer() and 0 <= v <= 255 for v in values):
        return tuple(v / 255.0 for v in values)
    return None


def make_light(
    direction: Tensor,
    intensity: float = 1.0,
    ambient: float = 0.15,
    color: Tensor | None = None,
) -> Light:
    """A single light (batch of one); `direction` is normalised."""
    _expect_shape("direction", direction, (3,))
    if not math.isfinite(intensity) or intensity < 0:
        raise ValueError(f"intensity: expected a number >= 0, got {intensity}")
    if not 0.0 <= ambient <= 1.0:
        raise ValueError(f"ambient: expected 0..1, got {ambient}")
    if color is None:
        color = torch.ones(3)
    _expect_shape("color", color, (3,))
    if not bool(((color >= 0) & (color <= 1)).all()):
        raise ValueError(f"color: expected RGB values in 0..1, got {color.tolist()}")
    unit = normalize_direction(*(float(c) for c in direction))
    return Light(
        direction=unit[None],
        intensity=torch.tensor([intensity], dtype=torch.float32),
        ambient=torch.tensor([ambient], dtype=torch.float32),
        color=color.to(torch.float32).reshape(1, 3),
    )


def _axis(n: int, extent: float, device: torch.device) -> Tensor:
    if n == 1:
        return torch.zeros(1, device=device)
    return torch.linspace(-extent, extent, n, device=device)


def _image_coords(height: int, width: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """u (right) and v (up) of every pixel, [H, W]; the longer side spans -1..1."""
    long_side = max(height, width)
    u = _axis(width, width / long_side, device)
    v = _axis(height, height / long_side, device).flip(0)  # row 0 is the top: v = +extent
    vv, uu = torch.meshgrid(v, u, indexing="ij")
    return uu, vv


def _gradient(light: Light, height: int, width: int) -> Tensor:
    """The unlit directional gradient g in 0..1, [B, H, W]."""
    u, v = _image_coords(height, width, light.direction.device)
    lx, ly, lz = (c[:, None, None] for c in light.direction.unbind(-1))
    return (0.5 * (1.0 + u * lx + v * ly) + 0.5 * lz).clamp(0.0, 1.0)


def _check_size(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name}: expected a size >= 1 pixel, got {value}")


def light_gradient(light: Light, height: int, width: int) -> Tensor:
    """IC-Light style gradient for any direction, IMAGE [B, H, W, 3] in 0..1."""
    _check_size("height", height)
    _check_size("width", width)
    g = _gradient(light, height, width)[..., None]
    color = light.color[:, None, None, :]
    lit = g * light.intensity[:, None, None, None] + light.ambient[:, None, None, None]
    return (lit * color).clamp(0.0, 1.0)


def light_map_channels(light: Light, height: int, width: int) -> Tensor:
    """The model's light input [B, 9, H, W]: luminance, direction, intensity, ambient, colour."""
    _check_size("height", height)
    _check_size("width", width)
    luminance = _gradient(light, height, width) * light.intensity[:, None, None]
    constants = torch.cat(
        [light.direction, light.intensity[:, None], light.ambient[:, None], light.color], dim=1
    )
    constants = constants[:, :, None, None].expand(-1, -1, height, width)
    return torch.cat([luminance[:, None], constants], dim=1)


def shade_sphere(light: Light, size: int) -> Tensor:
    """Preview IMAGE [B, size, size, 3]: a lit sphere on a dark grey background."""
    _check_size("size", size)
    device = light.direction.device
    centres = (torch.arange(size, device=device) + 0.5) / size * 2.0 - 1.0
    vv, uu = torch.meshgrid(centres.flip(0), centres, indexing="ij")
    inside = uu**2 + vv**2 <= 1.0
    normal = torch.stack([uu, vv, (1.0 - uu**2 - vv**2).clamp_min(0.0).sqrt()], dim=-1)

    l_dir = light.direction[:, None, None, :]
    n_dot_l = (normal[None] * l_dir).sum(-1)
    diffuse = n_dot_l.clamp_min(0.0)

    half = l_dir + torch.tensor([0.0, 0.0, 1.0], device=device)
    half = half / half.norm(dim=-1, keepdim=True).clamp_min(_MIN_NORM)
    n_dot_h = (normal[None] * half).sum(-1).clamp_min(0.0)
    specular = torch.where(n_dot_l > 0, n_dot_h**_SPECULAR_EXPONENT, 0.0) * _SPECULAR_WEIGHT

    intensity = light.intensity[:, None, None]
    lit = (diffuse + specular) * intensity + light.ambient[:, None, None]
    shaded = (lit[..., None] * light.color[:, None, None, :]).clamp(0.0, 1.0)
    return torch.where(inside[None, ..., None], shaded, _SPHERE_BACKGROUND)
