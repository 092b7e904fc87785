"""SelectByClicks: a few clicks (inside / outside), a box or a rough painted mask, turned into a
MASK snapped to the image's edges (OpenCV GrabCut, no weights)."""

from __future__ import annotations

import numpy as np
import torch
from comfy_api.v0_0_2 import io, ui

from ..conditioning.composite import preview_image
from ..conditioning.mask import as_mask_batch, resize_mask
from ..conditioning.select import SelectionError, parse_clicks, select
from .common import CATEGORY

PAINTED = ["add", "refine", "ignore"]
PREVIEW_SIDE = 2048
SELECTION_KEY = "relight_selection"  # the page widget reads the last selection from here


def combine(selected: torch.Tensor, painted: torch.Tensor | None, how: str) -> torch.Tensor:
    if painted is None or how != "add":
        return selected
    return torch.maximum(selected, painted)


def selection_overlay(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The image with the selection tinted red, at most PREVIEW_SIDE px."""
    image = preview_image(image, PREVIEW_SIDE)
    share = preview_image(mask[..., None], PREVIEW_SIDE) * 0.55
    return image * (1 - share) + torch.tensor([1.0, 0.15, 0.15]) * share


def painted_batch(mask: torch.Tensor | None, image: torch.Tensor) -> torch.Tensor | None:
    """The painted mask per image. A mask of another size is resized, as Mask Conditioning
    does: Load Image gives a 64 x 64 empty mask for a photo nobody painted."""
    if mask is None:
        return None
    mask = as_mask_batch(mask)
    if mask.shape[1:3] != image.shape[1:3]:
        mask = resize_mask(mask, *image.shape[1:3])
    if mask.shape[0] not in (1, image.shape[0]):
        raise ValueError(f"mask: batch of {mask.shape[0]}, expected 1 or {image.shape[0]}")
    return mask.expand(image.shape[0], -1, -1).float()


class SelectByClicks(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SelectByClicks",
            display_name="Select by Clicks",
            category=CATEGORY,
            description=(
                "Makes a mask from a few clicks on the image shown in the node: left-click on "
                "the object to select it, right-click (or shift-click) on what should stay out, "
                "drag with the left button for a box. The mask follows the image's edges "
                "(OpenCV GrabCut: colour models and a graph cut, nothing to download). "
                "Usually 1-5 clicks; each click corrects the selection before it. Feed the mask "
                "to Mask Conditioning; a mask painted in the MaskEditor can be added to it, or "
                "used as a rough region that is snapped to the edges."
            ),
            inputs=[
                io.Image.Input("image", tooltip="The photo to select in."),
                io.String.Input(
                    "points",
                    default="",
                    tooltip='Written by clicking on the image in this node: {"points": [[x, y, '
                    '1 = inside / 0 = outside], ...], "box": [x0, y0, x1, y1], "size": [width, '
                    "height] the clicks were made on}. A plain [[x, y], ...] list (other point "
                    "editors) counts as inside clicks. Empty: no clicks.",
                ),
                io.Mask.Input(
                    "mask",
                    optional=True,
                    tooltip="A painted mask (e.g. LoadImage's MASK from the MaskEditor): added to "
                    "the selection, or used as the rough region to snap (see 'painted').",
                ),
                io.Combo.Input(
                    "painted",
                    options=PAINTED,
                    default="add",
                    optional=True,
                    tooltip="What to do with the painted mask. add: the result is the click "
                    "selection plus the painted region (with no clicks: the painted mask as it "
                    "is). refine: the painted region is a rough outline, snapped to the edges "
                    "together with the clicks. ignore: clicks only.",
                ),
            ],
            outputs=[
                io.Mask.Output(display_name="mask", tooltip="For Mask Conditioning's mask."),
                io.Image.Output(
                    display_name="preview",
                    tooltip=f"The selection in red (at most {PREVIEW_SIDE} px a side).",
                ),
            ],
        )

    @classmethod
    def validate_inputs(cls, points: str = "", painted: str = "add", **_) -> bool | str:
        if isinstance(points, str):
            try:
                parse_clicks(points)
            except SelectionError as error:
                return f"points: {error}"
        if painted not in PAINTED:
            return f"painted: expected one of {PAINTED}, got {painted!r}"
        return True

    @classmethod
    def execute(
        cls, image: torch.Tensor, points: str, mask=None, painted: str = "add"
    ) -> io.NodeOutput:
        try:
            clicks = parse_clicks(points)
        except SelectionError as error:
            raise ValueError(f"points: {error}") from None
        if painted not in PAINTED:
            raise ValueError(f"painted: expected one of {PAINTED}, got {painted!r}")
        rough_masks = painted_batch(mask, image)
        selected = []
        for index, frame in enumerate(image):
            rough = rough_masks[index] if rough_masks is not None else None
            hint = rough.numpy() if rough is not None and painted == "refine" else None
            region = select(frame[..., :3].float().numpy(), clicks, hint)
            selected.append(torch.from_numpy(np.ascontiguousarray(region)))
        result = combine(torch.stack(selected), rough_masks, painted)
        preview = selection_overlay(image[..., :3], result)
        # Under its own key, so the page shows it in the click canvas and not a second time
        # below it (the frontend draws `images` under any node).
        saved = ui.PreviewImage(preview, cls=cls).as_dict()["images"]
        return io.NodeOutput(result, preview, ui={SELECTION_KEY: saved})
