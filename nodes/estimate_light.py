"""EstimateLight: the dominant light of an image region, as a LIGHT with a confidence."""

from __future__ import annotations

import logging

import torch
from comfy_api.v0_0_2 import io

from ..conditioning.checks import require_photo
from ..conditioning.mask import resize_mask
from ..lighting.light import Light
from ..lighting.light_estimate import (
    LightEstimate,
    estimate_light,
    estimate_scene_light,
    scene_light_ticks,
)
from ..lighting.normals import depth_plane, flat_normals, subject_normals
from ..lighting.shading import light_preview
from ..sampling.progress import progress_ticker
from .common import CATEGORY, check_widgets, refuse_bad_widgets
from .common import Light as LightType
from .geometry_inputs import geometry_inputs, image_batch

REGIONS = ["inside_mask", "outside_mask"]
LOW_CONFIDENCE = 0.3
DEFAULT_TOTAL = 1.15  # LightDirectionEncode's defaults: intensity 1 + ambient 0.15


def as_user_light(estimate: LightEstimate) -> Light:
    """The fit in the region's own units, rescaled to LightDirectionEncode's default strength
    (its albedo scales ambient and intensity alike: only their ratio is the light's)."""
    light = estimate.light
    total = (light.ambient + light.intensity).clamp_min(1e-6)
    known = estimate.confidence > 0
    share = torch.where(known, light.ambient / total, torch.full_like(total, 0.15 / 1.15))
    return Light(
        direction=light.direction,
        intensity=(1 - share) * DEFAULT_TOTAL,
        ambient=(share * DEFAULT_TOTAL).clamp(max=1.0),
        color=light.color,
    )


class EstimateLight(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EstimateLight",
            display_name="Estimate Light",
            category=CATEGORY,
            description=(
                "Finds the dominant light of a region from its normals and shading (a "
                "Lambertian fit that discounts texture edges and highlights) and gives it as a "
                "LIGHT for the sampler, with a confidence 0..1. inside_mask: the subject's own "
                "light (the pack's silhouette normals, or your normal/depth map). outside_mask: "
                "the scene's light, so a pasted object can be matched to it; this needs a "
                "depth map (best: its shapes' cast shadows are scored too, at any depth scale) "
                "or a normal map of the whole image (without one the scene is taken as flat "
                "and the confidence is 0). Flat, tiny, black, clipped or featureless regions "
                "give a low confidence and a warning rather than a made-up light."
            ),
            inputs=[
                io.Image.Input("image", tooltip="The photo."),
                io.Mask.Input("mask", tooltip="The subject (white)."),
                io.Combo.Input(
                    "region",
                    options=REGIONS,
                    default="inside_mask",
                    tooltip="inside_mask: the light on the subject. outside_mask: the light of "
                    "the scene around it (needs a normal or depth map of the whole image).",
                ),
                *geometry_inputs(),
            ],
            outputs=[
                LightType.Output(display_name="light", tooltip="The estimated light."),
                io.Image.Output(display_name="preview", tooltip="A sphere lit by it."),
                io.Float.Output(display_name="confidence", tooltip="0 = cannot tell, 1 = sure."),
                io.String.Output(display_name="info", tooltip="Angles, strength, confidence."),
            ],
        )

    @classmethod
    def validate_inputs(cls, region=None, normal_convention=None) -> bool | str:
        return check_widgets(cls, region=region, normal_convention=normal_convention)

    @classmethod
    def execute(
        cls,
        image: torch.Tensor,
        mask: torch.Tensor,
        region: str,
        normal_map: torch.Tensor | None = None,
        depth_map: torch.Tensor | None = None,
        normal_convention: str = "y_up",
    ) -> io.NodeOutput:
        refuse_bad_widgets(cls, region=region, normal_convention=normal_convention)
        require_photo(image, mask)
        batch, height, width = image.shape[:3]
        if mask.ndim == 2:
            mask = mask[None]
        mask = resize_mask(mask, height, width).expand(batch, -1, -1)
        area = mask if region == "inside_mask" else 1.0 - mask
        normal_map = image_batch("normal_map", normal_map, batch)
        depth_map = image_batch("depth_map", depth_map, batch)
        if region == "outside_mask" and normal_map is None and depth_map is not None:
            depth = depth_plane(depth_map, height, width)
            tick = progress_ticker(scene_light_ticks(batch))
            estimate = estimate_scene_light(image[..., :3], depth, area, tick)
        else:
            if region == "outside_mask" and normal_map is None:
                normals = flat_normals(mask)  # no scene geometry: nothing to fit a direction to
            else:
                shape_mask = mask if region == "inside_mask" else torch.ones_like(mask)
                normals, _ = subject_normals(shape_mask, normal_map, depth_map, normal_convention)
            estimate = estimate_light(image[..., :3], normals, area)
        lines = [f"image {i}: {estimate.summary(i)}" for i in range(batch)]
        low = [i for i in range(batch) if float(estimate.confidence[i]) < LOW_CONFIDENCE]
        if low:
            lines.append(
                f"low confidence for image(s) {low}: the region is too small, flat, dark, "
                "clipped or featureless to tell the light (outside_mask needs a normal or "
                "depth map of the scene); check the preview before relying on it"
            )
            logging.warning("Relight Inpaint: Estimate Light: %s", lines[-1])
        light = as_user_light(estimate)
        confidence = float(estimate.confidence.min())
        return io.NodeOutput(light, light_preview(light), confidence, "\n".join(lines))
