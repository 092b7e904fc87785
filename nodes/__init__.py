"""The pack's nodes: thin V3 adapters over conditioning/, model_loader/ and sampling/."""

from __future__ import annotations

from comfy_api.v0_0_2 import ComfyExtension, io

from .cli_routes import register_cli_routes
from .estimate_light import EstimateLight
from .estimate_normals import EstimateNormals
from .light_direction_encode import LightDirectionEncode
from .load_relight_unet import LoadRelightUNet
from .mask_conditioning import MaskConditioning
from .prompt_guard import register_prompt_guard
from .relight_conditioning import RelightConditioning
from .relight_inpaint_sampler import RelightInpaintSampler
from .select_by_clicks import SelectByClicks, register_select_route
from .shadow_mask import ShadowMask

NODES: list[type[io.ComfyNode]] = [
    LoadRelightUNet,
    LightDirectionEncode,
    MaskConditioning,
    RelightInpaintSampler,
    RelightConditioning,
    EstimateNormals,
    EstimateLight,
    ShadowMask,
    SelectByClicks,
]


register_prompt_guard(node.__name__ for node in NODES)
register_cli_routes()
register_select_route()


class RelightInpaintExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES
