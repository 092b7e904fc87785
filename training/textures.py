"""Photo textures for the training renderer, cut from the images shipped with scikit-image.

Every name in PHOTO_TEXTURES is bundled with scikit-image (no download). Each texture is loaded
once and kept as a small mip pyramid of float32 RGB arrays in 0..1.
"""

from __future__ import annotations

from functools import cache

import numpy as np
from PIL import Image

PHOTO_TEXTURES: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "brick",
    "grass",
    "gravel",
    "camera",
    "coins",
    "moon",
    "page",
    "immunohistochemistry",
    "retina",
    "hubble_deep_field",
    "colorwheel",
    "clock",
)

TEXTURE_SIDE = 256  # longest side of mip level 0
_MIN_LEVEL_SIDE = 8


def _load_rgb(name: str) -> np.ndarray:
    from skimage import data  # imported lazily: only the renderer needs it

    image = np.asarray(getattr(data, name)())
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3].astype(np.uint8))


def _resized(image: np.ndarray, longest: int) -> np.ndarray:
    h, w = image.shape[:2]
    scale = longest / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


@cache
def texture_levels(name: str) -> tuple[np.ndarray, ...]:
    """Mip pyramid of photo `name`: level k is half the size of level k-1 (float32, 0..1)."""
    if name not in PHOTO_TEXTURES:
        raise ValueError(f"texture: expected one of {PHOTO_TEXTURES}, got {name!r}")
    image = _load_rgb(name)
    levels = []
    side = TEXTURE_SIDE
    while side >= _MIN_LEVEL_SIDE:
        level = _resized(image, side).astype(np.float32) / 255.0
        level.setflags(write=False)
        levels.append(level)
        side //= 2
    return tuple(levels)


def _mirror_index(index: np.ndarray, n: int) -> np.ndarray:
    """Indices folded into 0..n-1 by mirror repetition, so tiles meet without seams."""
    folded = np.mod(index, 2 * n)
    return np.where(folded >= n, 2 * n - 1 - folded, folded)


def sample_texture(name: str, x: np.ndarray, y: np.ndarray, texels_per_pixel: float) -> np.ndarray:
    """Bilinear lookup at texel coordinates (x, y) of level 0, mirrored beyond the edges.

    The mip level is chosen so that one screen pixel covers about one texel. Returns [N, 3].
    """
    levels = texture_levels(name)
    level = int(np.clip(np.floor(np.log2(max(texels_per_pixel, 1e-6))), 0, len(levels) - 1))
    texture = levels[level]
    scale = 0.5**level
    h, w = texture.shape[:2]
    fx, fy = x * scale - 0.5, y * scale - 0.5
    x0, y0 = np.floor(fx), np.floor(fy)
    wx, wy = (fx - x0)[:, None], (fy - y0)[:, None]
    x0, y0 = x0.astype(np.int64), y0.astype(np.int64)
    xa, xb = _mirror_index(x0, w), _mirror_index(x0 + 1, w)
    ya, yb = _mirror_index(y0, h), _mirror_index(y0 + 1, h)
    top = texture[ya, xa] * (1 - wx) + texture[ya, xb] * wx
    bottom = texture[yb, xa] * (1 - wx) + texture[yb, xb] * wx
    return top * (1 - wy) + bottom * wy
