"""EstimateNormals: the subject's normal map as the relight sees it: a depth map's, else a face
mesh where there is a face, blended into the flattened silhouette of the subject."""

from __future__ import annotations

import torch
from comfy_api.v0_0_2 import io

from ..conditioning.checks import require_photo
from ..conditioning.mask import resize_mask
from ..lighting.normals import CONVENTIONS, encode_normal_map, subject_normals
from ..lighting.subject import GEOMETRY_TICKS, estimated_geometry
from ..sampling.progress import progress_ticker
from .common import CATEGORY, check_widgets, refuse_bad_widgets, say_on_node
from .geometry_inputs import CONVENTION_TIP, DEPTH_MAP_TIP, image_batch


class EstimateNormals(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="EstimateNormals",
            display_name="Estimate Normals",
            category=CATEGORY,
            description=(
                "The subject's surface normals as a normal map (RGB = (n + 1) / 2; x right, y "
                "up, z toward the viewer), as the sampler estimates it when no normal map is "
                "connected: from a depth map when given; else a face mesh (mediapipe's "
                "landmarker) where a face is found, blended into the subject's silhouette "
                "inflated and flattened halfway toward you. The node says what it used. Feed "
                "it to the sampler's normal_map to edit it; any estimator's normal map (DSINE, "
                "BAE, Marigold, Lotus) can take its place."
            ),
            hidden=[io.Hidden.unique_id],
            inputs=[
                io.Image.Input("image", tooltip="The photo (sets the size and batch)."),
                io.Mask.Input("mask", tooltip="The subject (white). Outside it the map is flat."),
                io.Image.Input("depth_map", optional=True, tooltip=DEPTH_MAP_TIP),
                io.Combo.Input(
                    "normal_convention",
                    options=list(CONVENTIONS),
                    default="y_up",
                    optional=True,
                    tooltip="How to store y in the output. " + CONVENTION_TIP,
                ),
            ],
            outputs=[
                io.Image.Output(display_name="normal_map", tooltip="RGB = (n + 1) / 2."),
                io.Mask.Output(
                    display_name="subject",
                    tooltip="The subject the relight finds inside the mask (a person in a loose "
                    "region; else the whole region): the rest of the region keeps its light.",
                ),
            ],
        )

    @classmethod
    def validate_inputs(cls, normal_convention=None) -> bool | str:
        return check_widgets(cls, normal_convention=normal_convention)

    @classmethod
    def execute(
        cls,
        image: torch.Tensor,
        mask: torch.Tensor,
        depth_map: torch.Tensor | None = None,
        normal_convention: str = "y_up",
    ) -> io.NodeOutput:
        refuse_bad_widgets(cls, normal_convention=normal_convention)
        require_photo(image, mask)
        batch, height, width = image.shape[:3]
        if mask.ndim == 2:
            mask = mask[None]
        if mask.shape[0] not in (1, batch):
            raise ValueError(f"mask: {mask.shape[0]} masks for {batch} images; give 1 or {batch}")
        mask = resize_mask(mask, height, width).expand(batch, -1, -1)
        depth = image_batch("depth_map", depth_map, batch)
        if depth is not None:
            normals, _ = subject_normals(mask, depth_map=depth)
            say_on_node(cls, ["normals: from the depth map"])
            return io.NodeOutput(encode_normal_map(normals, normal_convention), mask)
        tick = progress_ticker(GEOMETRY_TICKS * batch)
        geometry = estimated_geometry(image[..., :3], mask > 0.5, tick=tick)
        say_on_node(cls, list(geometry.notes))
        return io.NodeOutput(encode_normal_map(geometry.normals, normal_convention), geometry.matte)
