"""ShadowMask: where the subject's shadow falls (relight) or lies (fill), as a MASK to edit."""

from __future__ import annotations

import torch
from comfy_api.v0_0_2 import io

from ..conditioning.composite import preview_image
from ..lighting.normals import depth_plane
from ..lighting.shadows import shadow_mask, shadow_mask_ticks
from ..sampling.progress import progress_ticker
from .common import (
    CATEGORY,
    Light,
    MaskCond,
    check_widgets,
    refuse_bad_widgets,
    say_on_node,
)
from .geometry_inputs import image_batch

MODES = ["relight", "fill"]
WITHOUT_DEPTH = ["none", "guess"]
PREVIEW_SIDE = 2048
NO_DEPTH = (
    "no cast shadow: a shadow needs a surface to fall on, and without a depth map none is "
    "known (connect a depth map of the photo, or set without_depth to guess)"
)


def shadow_overlay(image: torch.Tensor, subject: torch.Tensor, shadow: torch.Tensor):
    """The photo with the subject in red and the shadow in blue, at most PREVIEW_SIDE px."""
    image = preview_image(image, PREVIEW_SIDE)
    subject = preview_image(subject[..., None], PREVIEW_SIDE) * 0.5
    shadow = preview_image(shadow[..., None], PREVIEW_SIDE) * 0.6
    red, blue = torch.tensor([1.0, 0.2, 0.2]), torch.tensor([0.2, 0.4, 1.0])
    tinted = image * (1 - subject) + red * subject
    return tinted * (1 - shadow) + blue * shadow


class ShadowMask(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="ShadowMask",
            hidden=[io.Hidden.unique_id],
            display_name="Shadow Mask",
            category=CATEGORY,
            description=(
                "Where the subject's cast shadow is, as a MASK you can see and edit before the "
                "sampler. relight: where its shadow falls for the requested light (the sampler "
                "paints it there with the light's shadow darkness). fill: the shadow the object "
                "to remove casts in the photo under the scene's light (the sampler removes it "
                "with the object). A depth map of the photo (any estimator's) gives the shape "
                "and the surface it stands on. Without one, relight paints no shadow (a portrait "
                "before a wall would get a silhouette on the wall) unless without_depth is "
                "guess: the subject then rests on a flat surface facing you."
            ),
            inputs=[
                MaskCond.Input(
                    "mask_cond", tooltip="From Mask Conditioning: the photo and the subject."
                ),
                Light.Input(
                    "light",
                    tooltip="relight: the requested light (the same as the sampler's). fill: the "
                    "scene's light (Estimate Light with region outside_mask, or set by hand).",
                ),
                io.Combo.Input(
                    "mode",
                    options=MODES,
                    default="relight",
                    tooltip="relight: the new shadow for the light. fill: the old shadow.",
                ),
                io.Image.Input(
                    "depth_map",
                    optional=True,
                    tooltip="Depth map of the whole photo (white = near), e.g. from Depth "
                    "Anything or MiDaS. Strongly recommended: it gives the shadow its length.",
                ),
                io.Float.Input(
                    "depth_relief",
                    default=0.0,
                    min=0.0,
                    max=10.0,
                    step=0.05,
                    optional=True,
                    tooltip="How deep the depth map's range is, as a share of the photo's longer "
                    "side. 0 = fitted to the shadows already in the photo under scene_light.",
                ),
                Light.Input(
                    "scene_light",
                    optional=True,
                    tooltip="relight: the light the photo was taken under (e.g. Estimate Light): "
                    "the new shadow gets the darkness of the subject's old shadow under it, and "
                    "depth_relief is fitted to the photo's shadows under it. Without it: the "
                    "requested light's own ambient sets the darkness.",
                ),
                io.Combo.Input(
                    "without_depth",
                    options=WITHOUT_DEPTH,
                    default="none",
                    optional=True,
                    tooltip="relight without a depth map: none = no cast shadow (nothing is known "
                    "for it to fall on); guess = the subject rests on a flat surface facing you "
                    "(right for an object on a table seen from the front, wrong for a portrait).",
                ),
            ],
            outputs=[
                io.Mask.Output(
                    display_name="shadow",
                    tooltip="For the sampler's cast_shadow input. relight: how much light the new "
                    "shadow takes away (0..1, paint grey for a lighter shadow); fill: the old "
                    "shadow's region (1 = remove).",
                ),
                io.Image.Output(
                    display_name="preview",
                    tooltip=f"Subject in red, shadow in blue (at most {PREVIEW_SIDE} px a side).",
                ),
            ],
        )

    @classmethod
    def validate_inputs(cls, mode=None, depth_relief=None, without_depth=None) -> bool | str:
        return check_widgets(cls, mode=mode, depth_relief=depth_relief, without_depth=without_depth)

    @classmethod
    def execute(
        cls,
        mask_cond,
        light,
        mode,
        depth_map=None,
        depth_relief=0.0,
        scene_light=None,
        without_depth="none",
    ) -> io.NodeOutput:
        refuse_bad_widgets(cls, mode=mode, depth_relief=depth_relief, without_depth=without_depth)
        image, subject = mask_cond.image, mask_cond.mask
        depth = image_batch("depth_map", depth_map, mask_cond.batch_size)
        if depth is None and mode == "relight" and without_depth == "none":
            say_on_node(cls, [NO_DEPTH])
            nothing = torch.zeros_like(subject)
            return io.NodeOutput(nothing, shadow_overlay(image, subject, nothing))
        say_on_node(cls, [])
        if depth is not None:
            depth = depth_plane(depth, *subject.shape[1:3])
        scene = scene_light if mode == "relight" else None  # fill: `light` is the scene's
        tick = progress_ticker(shadow_mask_ticks(subject.shape[0]))
        relief = depth_relief or None
        shadow = shadow_mask(image, subject, light, mode, depth, relief, scene, tick)
        return io.NodeOutput(shadow, shadow_overlay(image, subject, shadow))
