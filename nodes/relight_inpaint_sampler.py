"""RelightInpaintSampler: regenerate the masked region for the requested light."""

from __future__ import annotations

import comfy.samplers
from comfy_api.v0_0_2 import io

from ..conditioning.composite import resize_image
from ..sampling.relight_sampling import finish, prepare, sample
from .common import CATEGORY
from .relight_conditioning import make_geometry, optional_inputs, shared_inputs


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
            + optional_inputs(),
            outputs=[
                io.Image.Output(display_name="image", tooltip="The result at the input's size."),
                io.Latent.Output(display_name="latent", tooltip="The sampled latent."),
                io.Image.Output(
                    display_name="shading",
                    tooltip="What the model was told about the light: the subject's normals "
                    "shaded by it (IC-Light fc: its starting light image), at the input's size.",
                ),
            ],
        )

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
    ) -> io.NodeOutput:
        geometry = make_geometry(mask_cond, normal_map, depth_map, normal_convention, light_map)
        prepared = prepare(
            model, vae, mask_cond, light, mode, positive, negative, background, geometry
        )
        shading = resize_image(prepared.shading, *mask_cond.image.shape[1:3])
        if mask_cond.is_empty or denoise == 0:
            latent = {"samples": prepared.latent_image}
            return io.NodeOutput(mask_cond.image[..., :3], latent, shading)
        samples = sample(model, prepared, seed, steps, cfg, sampler_name, scheduler, denoise)
        image = finish(vae, samples, mask_cond)
        return io.NodeOutput(image, {"samples": samples}, shading)
