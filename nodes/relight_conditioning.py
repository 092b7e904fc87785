"""RelightConditioning: the pack's conditioning for the stock KSampler / SamplerCustomAdvanced."""

from __future__ import annotations

from comfy_api.v0_0_2 import io

from ..conditioning.checks import require_finite
from ..sampling.relight_sampling import LIGHT_MAPS, Geometry, prepare
from .common import CATEGORY, Light, MaskCond, check_widgets, refuse_bad_widgets
from .geometry_inputs import geometry_inputs, image_batch

MODES = ["relight", "fill"]


def shared_inputs() -> list:
    """Inputs RelightConditioning and RelightInpaintSampler have in common."""
    return [
        io.Model.Input("model", tooltip="From LoadRelightUNet."),
        io.Vae.Input("vae", tooltip="From LoadRelightUNet."),
        MaskCond.Input(
            "mask_cond", tooltip="From MaskConditioning: the image and what to repaint."
        ),
        Light.Input("light", tooltip="From LightDirectionEncode: where the light comes from."),
        io.Combo.Input(
            "mode",
            options=MODES,
            default="relight",
            tooltip="relight: re-shade what is inside the mask (a pasted object) for the light. "
            "fill: remove what is inside the mask and paint the background, lit consistently. "
            "IC-Light models support relight only.",
        ),
    ]


def optional_inputs() -> list:
    return [
        io.Conditioning.Input(
            "positive",
            optional=True,
            tooltip="IC-Light only (required there): the prompt, from CLIPTextEncode.",
        ),
        io.Conditioning.Input(
            "negative",
            optional=True,
            tooltip="IC-Light only (required there): the negative prompt.",
        ),
        io.Image.Input(
            "background",
            optional=True,
            tooltip="IC-Light fbc only (required there): the background condition image.",
        ),
        *geometry_inputs(),
        io.Combo.Input(
            "light_map",
            options=list(LIGHT_MAPS),
            default="shading",
            optional=True,
            tooltip="IC-Light fc: what sampling starts from inside the mask. shading: the "
            "subject's normals shaded by the light (any direction, follows its shape); "
            "iclight_gradient: the official demo's flat ramp across the image. fbc takes its "
            "light from the background; the pack's own model always gets the shading.",
        ),
    ]


def make_geometry(mask_cond, normal_map, depth_map, normal_convention, light_map) -> Geometry:
    batch = mask_cond.batch_size
    return Geometry(
        normal_map=image_batch("normal_map", normal_map, batch),
        depth_map=image_batch("depth_map", depth_map, batch),
        convention=normal_convention,
        light_map=light_map,
    )


class RelightConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="RelightConditioning",
            display_name="Relight Conditioning",
            category=CATEGORY,
            description=(
                "The conditioning RelightInpaintSampler builds, for ComfyUI's stock KSampler or "
                "SamplerCustomAdvanced: positive/negative carry the mask and light as extra "
                "input channels, the LATENT carries the image at the model's size and the mask "
                "as its noise mask. Composite the decoded result with the original yourself. With "
                "the pack's default regressor a stock sampler's denoise changes nothing; use "
                "RelightInpaintSampler for an edit strength below 1."
            ),
            inputs=shared_inputs() + optional_inputs(),
            outputs=[
                io.Conditioning.Output(display_name="positive", tooltip="With the light."),
                io.Conditioning.Output(
                    display_name="negative",
                    tooltip="The pack's model: without the light (cfg = light strength). "
                    "IC-Light: your negative prompt.",
                ),
                io.Latent.Output(
                    display_name="latent",
                    tooltip="Image latent (fill: the hole pre-filled with patches of the image) "
                    "+ noise_mask.",
                ),
            ],
        )

    @classmethod
    def validate_inputs(cls, mode=None, normal_convention=None, light_map=None) -> bool | str:
        return check_widgets(
            cls, mode=mode, normal_convention=normal_convention, light_map=light_map
        )

    @classmethod
    def execute(
        cls,
        model,
        vae,
        mask_cond,
        light,
        mode,
        positive=None,
        negative=None,
        background=None,
        normal_map=None,
        depth_map=None,
        normal_convention="y_up",
        light_map="shading",
    ) -> io.NodeOutput:
        refuse_bad_widgets(cls, mode=mode, normal_convention=normal_convention, light_map=light_map)
        require_finite("background", background)
        geometry = make_geometry(mask_cond, normal_map, depth_map, normal_convention, light_map)
        prepared = prepare(
            model, vae, mask_cond, light, mode, positive, negative, background, geometry
        )
        latent = {"samples": prepared.latent_image, "noise_mask": prepared.noise_mask[:, None]}
        return io.NodeOutput(prepared.positive, prepared.negative, latent)
