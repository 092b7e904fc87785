"""Write the pack's placeholder model: the real architecture and file format, random weights.

It exists so the pack runs end to end before the trained default model lands; its output
inside the mask is noise-like. Deterministic: the same seed gives the same file.
Run: .venv/bin/python -P training/make_untrained_model.py [OUT]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("training")

import torch  # noqa: E402

from ..model_loader.relight_format import (  # noqa: E402
    RelightConfig,
    build_network,
    make_config,
    save_relight_model,
)

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "models" / "relight_tiny_untrained.safetensors"


def untrained_state_dict(config: RelightConfig, seed: int = 0) -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_network(config).state_dict()


def write_untrained_model(path: Path, config: RelightConfig | None = None, seed: int = 0) -> None:
    config = config or make_config(base_channels=16, channel_mult=(1, 2), stem=2, time_dim=32)
    provenance = {"trained": False, "seed": seed, "note": "random weights: placeholder"}
    save_relight_model(path, untrained_state_dict(config, seed), config, provenance, torch.float16)


if __name__ == "__main__":
    write_untrained_model(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT)
