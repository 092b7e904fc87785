"""Test helpers: a tiny SD1.5-style ComfyUI model and fake IC-Light offset files.

pytest runs with --import-mode=importlib, so this folder is not on sys.path: load this file by
path (see `_load_fixtures` in test_iclight.py), registered as module "iclight_fixtures".
"""

from __future__ import annotations

import torch

TINY_SD15_UNET = {
    "image_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "model_channels": 32,
    "num_res_blocks": [1, 1],
    "channel_mult": [1, 2],
    "use_spatial_transformer": True,
    "context_dim": 32,
    "transformer_depth": [1, 1],
    "transformer_depth_output": [1, 1, 1, 1],
    "transformer_depth_middle": 1,
    "num_head_channels": 16,
    "use_linear_in_transformer": False,
    "adm_in_channels": None,
    "use_temporal_attention": False,
    "use_temporal_resblock": False,
    "legacy": False,
}

# What comfy.model_detection produces for a full SD1.5 UNet (before SD15's extra config).
SD15_UNET = {
    "use_checkpoint": False,
    "image_size": 32,
    "out_channels": 4,
    "use_spatial_transformer": True,
    "legacy": False,
    "adm_in_channels": None,
    "in_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [2, 2, 2, 2],
    "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0],
    "channel_mult": [1, 2, 4, 4],
    "transformer_depth_middle": 1,
    "use_linear_in_transformer": False,
    "context_dim": 768,
    "num_heads": 8,
    "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0],
    "use_temporal_attention": False,
    "use_temporal_resblock": False,
}

SDXL_UNET = {
    "use_checkpoint": False,
    "image_size": 32,
    "out_channels": 4,
    "use_spatial_transformer": True,
    "legacy": False,
    "num_classes": "sequential",
    "adm_in_channels": 2816,
    "in_channels": 4,
    "model_channels": 320,
    "num_res_blocks": [2, 2, 2],
    "transformer_depth": [0, 0, 2, 2, 10, 10],
    "channel_mult": [1, 2, 4],
    "transformer_depth_middle": 10,
    "use_linear_in_transformer": True,
    "context_dim": 2048,
    "num_head_channels": 64,
    "transformer_depth_output": [0, 0, 0, 2, 2, 2, 10, 10, 10],
    "use_temporal_attention": False,
    "use_temporal_resblock": False,
}

VARIANT_IN_CHANNELS = {"fc": 8, "fcon": 8, "fbc": 12}


def meta_unet(unet_config: dict):
    """The ComfyUI UNetModel for `unet_config`, on the meta device (shapes only)."""
    import comfy.ops
    from comfy.ldm.modules.diffusionmodules.openaimodel import UNetModel

    cfg = {k: v for k, v in unet_config.items() if k != "dtype"}
    return UNetModel(**cfg, device="meta", operations=comfy.ops.disable_weight_init)


def detected_model_config(unet_config: dict):
    """The comfy.supported_models config ComfyUI's detection picks for a UNet of this shape.

    Builds the UNet on meta and runs comfy.model_detection on its checkpoint-style keys, so the
    returned `.unet_config` is exactly what a loaded checkpoint's model has.
    """
    import comfy.model_detection

    sd = {"model.diffusion_model." + k: v for k, v in meta_unet(unet_config).state_dict().items()}
    model_config = comfy.model_detection.model_config_from_unet(sd, "model.diffusion_model.")
    assert model_config is not None, "ComfyUI detection found no model config"
    return model_config


def ldm_to_diffusers_map(unet_config: dict) -> dict[str, str]:
    """Inverse of comfy.utils.unet_to_diffusers: LDM key -> diffusers key."""
    import comfy.utils

    inverse: dict[str, str] = {}
    for diffusers_key, ldm_key in comfy.utils.unet_to_diffusers(unet_config).items():
        inverse.setdefault(ldm_key, diffusers_key)
    return inverse


def fake_iclight_offsets(
    unet_config: dict,
    variant,
    layout: str,
    device="cpu",
    generator: torch.Generator | None = None,
    scale: float = 0.01,
    prefix: str = "diffusion_model.",
) -> dict[str, torch.Tensor]:
    """IC-Light-style offsets for every weight of the UNet described by `unet_config`.

    variant: "fc" / "fcon" (8 conv_in input channels), "fbc" (12) or an int channel count.
    layout: "diffusers" (keys like conv_in.weight) or "ldm" (keys `prefix` + UNet key).
    device "meta" gives shape-only tensors; otherwise random normal * scale (float32), drawn in
    sorted LDM-key order from `generator` (so a seed reproduces the same file in both layouts).
    """
    in_ch = variant if isinstance(variant, int) else VARIANT_IN_CHANNELS[variant]
    shapes = {k: tuple(v.shape) for k, v in meta_unet(unet_config).state_dict().items()}
    c, _, kh, kw = shapes["input_blocks.0.0.weight"]
    shapes["input_blocks.0.0.weight"] = (c, in_ch, kh, kw)

    ldm: dict[str, torch.Tensor] = {}
    for k in sorted(shapes):
        if str(device) == "meta":
            ldm[k] = torch.empty(shapes[k], device="meta")
        else:
            ldm[k] = (torch.randn(shapes[k], generator=generator) * scale).to(device)

    if layout == "ldm":
        return {prefix + k: v for k, v in ldm.items()}
    if layout == "diffusers":
        inverse = ldm_to_diffusers_map(unet_config)
        missing = [k for k in ldm if k not in inverse]
        assert not missing, f"no diffusers name for {missing[:3]}"
        return {inverse[k]: v for k, v in ldm.items()}
    raise ValueError(f"layout must be 'diffusers' or 'ldm', got {layout!r}")


def build_tiny_sd15(seed: int = 0):
    """A tiny SD1.5-style EPS model (32 channels, 8x8 latents) in a CPU ModelPatcher.

    Every parameter is initialised from `seed` (normal, std 0.02); ComfyUI ops skip init.
    `patcher.model.model_config` is a comfy.supported_models.SD15.
    """
    import comfy.model_base
    import comfy.model_patcher
    import comfy.supported_models

    model_config = comfy.supported_models.SD15(dict(TINY_SD15_UNET))
    # SD15's unet_extra_config forces num_heads=8 / num_head_channels=-1; keep 16-channel heads.
    model_config.unet_config["num_heads"] = -1
    model_config.unet_config["num_head_channels"] = 16
    model = comfy.model_base.BaseModel(model_config, comfy.model_base.ModelType.EPS)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, p in sorted(model.diffusion_model.named_parameters()):
            p.copy_(torch.randn(p.shape, generator=gen) * 0.02)
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)


TINY_VAE_CONFIG = {
    "embed_dim": 4,
    "ddconfig": {
        "double_z": True,
        "z_channels": 4,
        "resolution": 256,
        "in_channels": 3,
        "out_ch": 3,
        "ch": 32,
        "ch_mult": [1, 1, 1, 1],  # three downsamplings: 8x, like SD's VAE
        "num_res_blocks": 1,
        "attn_resolutions": [],
        "dropout": 0.0,
    },
}


def build_tiny_sd_vae(seed: int = 0):
    """A tiny SD-style KL VAE (8x downscale, 4 latent channels) with seeded random weights."""
    import comfy.ldm.models.autoencoder
    import comfy.sd

    shapes = comfy.ldm.models.autoencoder.AutoencoderKL(**TINY_VAE_CONFIG).state_dict()
    gen = torch.Generator().manual_seed(seed)
    sd = {k: torch.randn(v.shape, generator=gen) * 0.05 for k, v in sorted(shapes.items())}
    return comfy.sd.VAE(sd=sd, config={"params": TINY_VAE_CONFIG})
