"""Build a ComfyUI-managed MODEL and VAE from a file in the pack's relight format.

The network is wrapped in ComfyUI's own `BaseModel` and `ModelPatcher`, so model management
loads, casts, offloads and frees it like any other model, and every ComfyUI sampler and
scheduler drives it. The pixel-space VAE is ComfyUI's own.
"""

from __future__ import annotations

import os

import comfy.latent_formats
import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.supported_models_base
import torch

from ..lighting.reshade import DETAIL_SIGMA, keep_colours
from .relight_format import (
    ARCHITECTURES,
    REGRESSOR,
    RelightConfig,
    channel_slice,
    check_state_dict,
    load_tensors,
    network_kwargs,
    read_config,
    require_finite_weights,
)

MODEL_OPTIONS_KEY = "relight_inpaint"
REFINER_OPTION = "relight_refiner"  # transformer_options key: False = the re-shading as it is
MODEL_TYPES = {
    "eps": comfy.model_base.ModelType.EPS,
    "v": comfy.model_base.ModelType.V_PREDICTION,
    "flow": comfy.model_base.ModelType.FLOW,
    "x0": comfy.model_base.ModelType.FLOW,
}


class PixelSpaceLatent(comfy.latent_formats.LatentFormat):
    """RGB in -1..1 as the 'latent'; the identity factors make ComfyUI's live preview exact."""

    latent_channels = 3

    def __init__(self):
        self.latent_rgb_factors = [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
        self.latent_rgb_factors_bias = [0.0, 0.0, 0.0]


class RelightModelConfig(comfy.supported_models_base.BASE):
    unet_extra_config = {}
    latent_format = PixelSpaceLatent
    # ComfyUI sizes its memory estimate per latent pixel; a pixel-space model has 64x the
    # pixels of an SD latent at the same image size but far smaller activations per pixel.
    memory_usage_factor = 0.05
    supported_inference_dtypes = [torch.float16, torch.bfloat16, torch.float32]

    def __init__(self, relight: RelightConfig):
        super().__init__(network_kwargs(relight))
        self.relight = relight
        self.sampling_settings = {"multiplier": 1000, **relight.sampling}

    def model_type(self, state_dict=None, prefix=""):
        return MODEL_TYPES[self.relight.prediction]

    def inpaint_model(self) -> bool:
        return False  # conditioning arrives through `noise_concat`, not ComfyUI's inpaint keys

    def get_model(self, state_dict=None, prefix="", device=None):
        return RelightDiffusion(self, self.model_type(), device=device)


class RelightDiffusion(comfy.model_base.BaseModel):
    def __init__(self, model_config: RelightModelConfig, model_type, device=None):
        network = ARCHITECTURES[model_config.relight.architecture]
        super().__init__(model_config, model_type, device=device, unet_model=network)
        self.relight_config = model_config.relight

    def apply_model(
        self,
        x,
        t,
        c_concat=None,
        c_crossattn=None,
        control=None,
        transformer_options=None,
        **kwargs,
    ):
        """The network's denoised answer; a shading model's relight keeps the colours of the
        re-shaded subject it was given (keep_subject_colours). Here rather than in the pack's
        sampler so that every path gets it: ComfyUI's KSampler, SamplerCustomAdvanced, API
        graphs."""
        options = {} if transformer_options is None else transformer_options
        names = self.relight_config.concat
        shaded = c_concat is not None and self.relight_config.shaded
        if (
            shaded
            and not options.get(REFINER_OPTION, True)
            and bool(relight_rows(c_concat, names).all())
        ):
            return subject_reference(c_concat, names).to(x) * 2.0 - 1.0
        denoised = super().apply_model(x, t, c_concat, c_crossattn, control, options, **kwargs)
        if not shaded:
            return denoised
        return keep_subject_colours(denoised, c_concat, names)


def keep_subject_colours(
    denoised: torch.Tensor, concat: torch.Tensor, names: tuple[str, ...]
) -> torch.Tensor:
    """denoised [B,3,H,W] in -1..1 with the chromaticity of the concat's masked_image (the
    re-shaded subject) and its detail finer than DETAIL_SIGMA, wherever the concat's mode
    channel says relight; fill keeps its own answer. Why: the small refiner learns shadows and
    edges from rendered scenes, but on real photos it also moves colours and smooths skin
    (lighting/reshade.keep_colours)."""
    relight = relight_rows(concat, names).to(denoised.device)
    if not bool(relight.any()):
        return denoised
    reference = subject_reference(concat, names).to(denoised)
    answer = ((denoised + 1.0) / 2.0).clamp(0.0, 1.0)
    kept = keep_colours(answer.movedim(1, -1), reference.movedim(1, -1), DETAIL_SIGMA)
    kept = kept.movedim(-1, 1)
    return torch.where(relight[:, None, None, None], kept * 2.0 - 1.0, denoised)


def relight_rows(concat: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """[B] bool: which rows of the concat ask for a relight (the mode channel is 0)."""
    return concat[:, channel_slice(names, "mode")].amax(dim=(1, 2, 3)) < 0.5


def subject_reference(concat: torch.Tensor, names: tuple[str, ...]) -> torch.Tensor:
    """[B,3,H,W] 0..1: the re-shaded subject the concat carries (relight mode)."""
    return (concat[:, channel_slice(names, "masked_image")] + 1.0) / 2.0


def with_refiner(model, refine: bool):
    """A clone of the ModelPatcher whose relights use the refiner or (refine False) give the
    re-shaded subject as it is. Through model_options, so ComfyUI's samplers carry it."""
    patched = model.clone()
    options = patched.model_options.get("transformer_options", {})
    patched.model_options["transformer_options"] = {**options, REFINER_OPTION: refine}
    return patched


def pixel_space_vae() -> comfy.sd.VAE:
    return comfy.sd.VAE(sd={"pixel_space_vae": torch.tensor(1.0)})


def relight_model_info(config: RelightConfig) -> dict:
    """What the sampler needs to know, stored in model_options (survives ModelPatcher.clone)."""
    return {
        "kind": "relight",
        "modes": list(config.modes),
        "concat": list(config.concat),
        "downscale": config.downscale,
        "light_range": dict(config.light_range),
        "ignores_noise": config.architecture == REGRESSOR,
        "shaded": config.shaded,
    }


def build_model_patcher(config: RelightConfig, state_dict: dict[str, torch.Tensor], where: str):
    load_device = comfy.model_management.get_torch_device()
    offload_device = comfy.model_management.unet_offload_device()
    model_config = RelightModelConfig(config)
    params = sum(t.numel() for t in state_dict.values())
    dtype = comfy.model_management.unet_dtype(
        model_params=params, supported_dtypes=model_config.supported_inference_dtypes
    )
    manual_cast = comfy.model_management.unet_manual_cast(
        dtype, load_device, model_config.supported_inference_dtypes
    )
    model_config.set_inference_dtype(dtype, manual_cast)
    model = model_config.get_model(device=offload_device)
    check_state_dict(model.diffusion_model, state_dict, where)
    model.diffusion_model.load_state_dict(state_dict, strict=True)
    patcher = comfy.model_patcher.ModelPatcher(
        model, load_device=load_device, offload_device=offload_device
    )
    patcher.model_options[MODEL_OPTIONS_KEY] = relight_model_info(config)
    return patcher


def load_relight_model(path: str | os.PathLike, where: str = "model_name"):
    """(MODEL, VAE) for a file of the pack's format; None when the file is not in that format."""
    config = read_config(path, where)
    if config is None:
        return None
    state_dict = load_tensors(path, where)
    require_finite_weights(state_dict, where)
    patcher = build_model_patcher(config, state_dict, where)
    return patcher, pixel_space_vae()


def model_info(model) -> dict | None:
    """The pack's tag on a MODEL (own model or IC-Light patched), or None for any other MODEL."""
    return model.model_options.get(MODEL_OPTIONS_KEY)
