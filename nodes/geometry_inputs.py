"""The geometry inputs the sampler, Relight Conditioning and the estimate nodes share."""

from __future__ import annotations

import torch
from comfy_api.v0_0_2 import io

from ..conditioning.checks import require_finite
from ..lighting.normals import CONVENTIONS

NORMAL_MAP_TIP = (
    "Optional normal map of the subject (RGB = (n + 1) / 2, x right, y up, z toward the "
    "viewer), e.g. from DSINE, BAE, Marigold or Lotus preprocessors, or Estimate Normals. "
    "Resized when its size differs. Without it, the pack estimates the subject's shape from "
    "the mask's silhouette."
)
DEPTH_MAP_TIP = (
    "Optional depth map (white = near, as ComfyUI's depth estimators give it), turned into "
    "normals and heights (cast shadows). Ignored when a normal_map is connected."
)
CONVENTION_TIP = (
    "How the normal map stores y: y_up (OpenGL; most estimators) or y_down (DirectX: green "
    "points down)."
)


def geometry_inputs() -> list:
    return [
        io.Image.Input("normal_map", optional=True, tooltip=NORMAL_MAP_TIP),
        io.Image.Input("depth_map", optional=True, tooltip=DEPTH_MAP_TIP),
        io.Combo.Input(
            "normal_convention",
            options=list(CONVENTIONS),
            default="y_up",
            optional=True,
            tooltip=CONVENTION_TIP,
        ),
    ]


def image_batch(name: str, image: torch.Tensor | None, batch: int) -> torch.Tensor | None:
    """An optional IMAGE input checked against the photo's batch (one serves every image)."""
    if image is None:
        return None
    if image.ndim != 4 or image.shape[-1] < 3:
        raise ValueError(f"{name}: expected an IMAGE [B,H,W,3], got shape {list(image.shape)}")
    require_finite(name, image)
    if image.shape[0] not in (1, batch):
        raise ValueError(
            f"{name}: {image.shape[0]} images for a batch of {batch}; give 1 or {batch}"
        )
    return image if image.shape[0] == batch else image.expand(batch, -1, -1, -1)
