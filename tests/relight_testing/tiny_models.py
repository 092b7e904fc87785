"""Tiny models in the pack's own format, built on the fly with random weights."""

from __future__ import annotations

from pathlib import Path

import torch

from relight_inpaint.model_loader.relight_format import (
    REGRESSOR,
    RelightConfig,
    build_network,
    make_config,
    save_relight_model,
)
from relight_inpaint.model_loader.relight_model import build_model_patcher, pixel_space_vae

REGRESSOR_OPTIONS = {"architecture": REGRESSOR, "prediction": "x0", "residual": "add", "stem": 1}


def tiny_config(**overrides) -> RelightConfig:
    options = {"base_channels": 8, "channel_mult": (1, 2), "stem": 2, "time_dim": 16}
    return make_config(**{**options, **overrides})


def tiny_state_dict(config: RelightConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    network = build_network(config)
    return {
        k: torch.randn(v.shape, generator=generator) * 0.1 for k, v in network.state_dict().items()
    }


def tiny_relight_model(seed: int = 0, **overrides):
    """(MODEL, VAE) in memory, as LoadRelightUNet would return them."""
    config = tiny_config(**overrides)
    return build_model_patcher(
        config, tiny_state_dict(config, seed), "model_name"
    ), pixel_space_vae()


def write_tiny_relight_file(path: Path, seed: int = 0, **overrides) -> Path:
    config = tiny_config(**overrides)
    save_relight_model(path, tiny_state_dict(config, seed), config, provenance={"test": True})
    return path
