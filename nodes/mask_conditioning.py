"""MaskConditioning: image + mask -> what to repaint, grown and feathered, at image size."""

from __future__ import annotations

import torch
from comfy_api.v0_0_2 import io

from ..conditioning.composite import preview_image
from ..conditioning.mask import MaskedImage, prepare_masked_image
from .common import CATEGORY, MaskCond

PREVIEW_SIDE = 2048


def mask_overlay(masked: MaskedImage) -> torch.Tensor:
    """The image with the region to repaint tinted red, at most PREVIEW_SIDE px a side."""
    image = preview_image(masked.image, PREVIEW_SIDE)
    mask = preview_image(masked.mask[..., None], PREVIEW_SIDE)
    red = torch.tensor([1.0, 0.2, 0.2])
    m = mask * 0.6
    return image * (1 - m) + red * m


class MaskConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="MaskConditioning",
            display_name="Mask Conditioning",
            category=CATEGORY,
            description=(
                "Pairs the image with the mask of the region to repaint (1 = repaint), grown and "
                "feathered. Everything where the final mask is 0 comes back bit-identical from "
                "RelightInpaintSampler. A mask of another size is resized; one mask serves a "
                "whole batch; an empty mask returns the image unchanged."
            ),
            inputs=[
                io.Image.Input("image", tooltip="The photo (a batch works too)."),
                io.Mask.Input(
                    "mask",
                    tooltip="White / 1 = repaint. One mask for the batch, or one per image.",
                ),
                io.Int.Input(
                    "grow",
                    default=0,
                    min=-256,
                    max=256,
                    step=1,
                    tooltip="Pixels to grow (positive) or shrink (negative) the mask by, so "
                    "shadows and halos around an object are included.",
                ),
                io.Int.Input(
                    "feather",
                    default=8,
                    min=0,
                    max=256,
                    step=1,
                    tooltip="Soft edge width in pixels, spread outward (the repainted region "
                    "never shrinks), so the new content blends in.",
                ),
            ],
            outputs=[
                MaskCond.Output(display_name="mask_cond", tooltip="For RelightInpaintSampler."),
                io.Mask.Output(display_name="mask", tooltip="The final mask, at image size."),
                io.Image.Output(
                    display_name="preview",
                    tooltip=f"The region to repaint, in red (at most {PREVIEW_SIDE} px a side).",
                ),
            ],
        )

    @classmethod
    def execute(
        cls, image: torch.Tensor, mask: torch.Tensor, grow: int, feather: int
    ) -> io.NodeOutput:
        masked = prepare_masked_image(image, mask, grow, feather)
        return io.NodeOutput(masked, masked.mask, mask_overlay(masked))
