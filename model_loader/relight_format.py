"""The pack's relight-model file: a safetensors file whose metadata carries its architecture config.

Metadata keys:
- `relight_inpaint.config`: JSON, see `RelightConfig` (validated on read and on write);
- `relight_inpaint.provenance`: JSON, free-form (data seed, steps, metrics, ...).
Plain torch + safetensors: no ComfyUI imports here.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import safetensors
import safetensors.torch
import torch

from ..lighting.light import LIGHT_MAP_CHANNELS
from .errors import WeightFormatError
from .relight_net import RelightRegressor, RelightUNet, downscale_factor

CONFIG_KEY = "relight_inpaint.config"
PROVENANCE_KEY = "relight_inpaint.provenance"
FORMAT_NAME = "relight_inpaint"
FORMAT_VERSION = 1
DIFFUSION_UNET = "relight_unet_v1"
REGRESSOR = "relight_regressor_v1"  # reads only the conditioning, answers x0 (see relight_net)
ARCHITECTURES = {DIFFUSION_UNET: RelightUNet, REGRESSOR: RelightRegressor}
PREDICTIONS = ("eps", "v", "flow", "x0")  # x0: sampled as flow, see relight_net
MODES = ("relight", "fill")
LATENT_CHANNELS = 3  # pixel space: RGB in -1..1
# shading_map: the requested light's shading of the subject's normals (lighting/shading);
# a model trained with it gets the re-shaded subject as its masked_image in relight mode.
# Files without it were trained on the gradient light map alone and run as they did.
CONCAT_CHANNELS = {
    "masked_image": 3,
    "mask": 1,
    "light_map": LIGHT_MAP_CHANNELS,
    "mode": 1,
    "shading_map": 3,
}
GRADIENT_CONCAT = ("masked_image", "mask", "light_map", "mode")
RESIDUALS = ("none", "add", "affine")  # how the x0 head uses the conditioning image
LIGHT_TERMS = ("elevation", "intensity", "ambient")
UNET_KEYS = (
    "in_channels",
    "out_channels",
    "base_channels",
    "channel_mult",
    "num_blocks",
    "stem",
    "time_dim",
)
REGRESSOR_UNET_KEYS = tuple(k for k in UNET_KEYS if k != "time_dim")  # it has no timestep input
# Bounds on a file's architecture, checked before anything is built: far above any useful
# model, far below what would take minutes and gigabytes to fail (num_blocks 20000 did).
UNET_LIMITS = {"base_channels": 1024, "num_blocks": 16, "stem": 16, "time_dim": 4096}
MAX_LEVELS = 6
MAX_CHANNEL_MULT = 16
MAX_PARAMETERS = 2_000_000_000  # 8 GB of float32 weights


def channel_slice(concat: Sequence[str], name: str = "light_map") -> slice:
    """Where the channels `name` lie among the conditioning channels of `concat`."""
    start = sum(CONCAT_CHANNELS[n] for n in concat[: list(concat).index(name)])
    return slice(start, start + CONCAT_CHANNELS[name])


@dataclass(frozen=True)
class RelightConfig:
    """Everything needed to build and condition a relight model, stored in the file."""

    unet: dict
    prediction: str = "flow"
    modes: tuple[str, ...] = MODES
    concat: tuple[str, ...] = GRADIENT_CONCAT
    architecture: str = DIFFUSION_UNET
    sampling: dict = field(default_factory=lambda: {"shift": 1.0})
    light_range: dict = field(default_factory=dict)  # what training saw: [low, high] per term
    format: str = FORMAT_NAME
    version: int = FORMAT_VERSION

    @property
    def downscale(self) -> int:
        return downscale_factor(self.unet["stem"], self.unet["channel_mult"])

    @property
    def shaded(self) -> bool:
        """Trained on the shading map and re-shaded input (else the gradient light map)."""
        return "shading_map" in self.concat

    @property
    def concat_channels(self) -> int:
        return sum(CONCAT_CHANNELS[name] for name in self.concat)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def make_config(
    base_channels: int = 32,
    channel_mult: tuple[int, ...] = (1, 2, 4),
    num_blocks: int = 1,
    stem: int = 2,
    time_dim: int = 128,
    prediction: str = "flow",
    modes: tuple[str, ...] = MODES,
    residual: str = "none",
    light_range: dict | None = None,
    architecture: str = DIFFUSION_UNET,
    concat: tuple[str, ...] = GRADIENT_CONCAT,
) -> RelightConfig:
    concat = tuple(concat)
    unet = {
        "in_channels": LATENT_CHANNELS + sum(CONCAT_CHANNELS[name] for name in concat),
        "out_channels": LATENT_CHANNELS,
        "base_channels": base_channels,
        "channel_mult": list(channel_mult),
        "num_blocks": num_blocks,
        "stem": stem,
        "time_dim": time_dim,
    }
    if architecture == REGRESSOR:
        del unet["time_dim"]
    if residual != "none":
        unet["residual"] = residual
    config = RelightConfig(
        unet=unet,
        prediction=prediction,
        modes=tuple(modes),
        concat=concat,
        architecture=architecture,
        light_range={k: list(v) for k, v in (light_range or {}).items()},
    )
    validate_config(config)
    return config


def _problem(where: str, text: str) -> WeightFormatError:
    return WeightFormatError(f"{where}: inconsistent Relight Inpaint config: {text}")


def _check_unet(unet: dict, concat_channels: int, where: str, required: tuple[str, ...]) -> None:
    missing = [k for k in required if k not in unet]
    if missing:
        raise _problem(where, f"unet lacks {', '.join(missing)}")
    if unet["in_channels"] != LATENT_CHANNELS + concat_channels:
        raise _problem(
            where,
            f"unet.in_channels is {unet['in_channels']}, but {LATENT_CHANNELS} latent + "
            f"{concat_channels} conditioning channels = {LATENT_CHANNELS + concat_channels}",
        )
    if unet["out_channels"] != LATENT_CHANNELS:
        raise _problem(where, f"unet.out_channels must be {LATENT_CHANNELS}")
    mult = unet["channel_mult"]
    if not isinstance(mult, list | tuple) or not 1 <= len(mult) <= MAX_LEVELS:
        raise _problem(where, f"unet.channel_mult must list 1..{MAX_LEVELS} levels, got {mult!r}")
    if not all(_is_int(m) and 1 <= m <= MAX_CHANNEL_MULT for m in mult):
        raise _problem(
            where, f"unet.channel_mult must be integers in 1..{MAX_CHANNEL_MULT}, got {mult!r}"
        )
    residual = unet.get("residual", "none")
    if not isinstance(residual, str) or residual not in RESIDUALS:
        raise _problem(where, f"unet.residual must be one of {RESIDUALS}")
    for key, limit in UNET_LIMITS.items():
        if key in required and not (_is_int(unet[key]) and 1 <= unet[key] <= limit):
            raise _problem(where, f"unet.{key} must be an integer in 1..{limit}, got {unet[key]!r}")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check_light_range(light_range: dict, where: str) -> None:
    if not isinstance(light_range, dict):
        raise _problem(where, f"light_range must be an object, got {light_range!r}")
    for key, bounds in light_range.items():
        if key not in LIGHT_TERMS:
            raise _problem(where, f"light_range.{key}: expected one of {LIGHT_TERMS}")
        ok = (
            isinstance(bounds, list | tuple)
            and len(bounds) == 2
            and all(_is_number(b) for b in bounds)
            and bounds[0] <= bounds[1]
        )
        if not ok:
            raise _problem(where, f"light_range.{key}: expected [low, high], got {bounds!r}")


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_types(config: RelightConfig, where: str) -> None:
    """Field types first, so that no later check meets a list where it wants a name."""
    for key in ("format", "architecture", "prediction"):
        if not isinstance(getattr(config, key), str):
            raise _problem(where, f"{key} must be a string, got {getattr(config, key)!r}")
    for key in ("modes", "concat"):
        value = getattr(config, key)
        if not isinstance(value, tuple) or not all(isinstance(v, str) for v in value):
            raise _problem(where, f"{key} must be a list of names, got {value!r}")
    if not isinstance(config.unet, dict):
        raise _problem(where, f"unet must be an object, got {config.unet!r}")
    if not isinstance(config.sampling, dict) or not all(
        _is_number(v) and v > 0 for v in config.sampling.values()
    ):
        raise _problem(
            where, f"sampling must map names to positive numbers, got {config.sampling!r}"
        )


def validate_config(config: RelightConfig, where: str = "model_name") -> None:
    _check_types(config, where)
    if config.format != FORMAT_NAME or config.version != FORMAT_VERSION:
        raise _problem(
            where, f"format {config.format!r} v{config.version}, expected {FORMAT_NAME} v1"
        )
    if config.architecture not in ARCHITECTURES:
        raise _problem(where, f"unknown architecture {config.architecture!r}")
    if config.prediction not in PREDICTIONS:
        raise _problem(where, f"prediction {config.prediction!r}, expected one of {PREDICTIONS}")
    if not config.modes or any(m not in MODES for m in config.modes):
        raise _problem(where, f"modes {list(config.modes)}, expected a non-empty subset of {MODES}")
    unknown = [name for name in config.concat if name not in CONCAT_CHANNELS]
    if unknown:
        raise _problem(where, f"unknown conditioning channels {unknown}")
    if list(config.concat) != [n for n in CONCAT_CHANNELS if n in config.concat]:
        raise _problem(where, f"conditioning channels out of order: {list(config.concat)}")
    regressor = config.architecture == REGRESSOR
    required = REGRESSOR_UNET_KEYS if regressor else UNET_KEYS
    _check_unet(config.unet, config.concat_channels, where, required)
    if regressor and config.prediction != "x0":
        raise _problem(where, f"{REGRESSOR} answers x0 only: prediction must be 'x0'")
    _check_light_range(config.light_range, where)
    if config.unet.get("residual", "none") != "none" and (
        config.prediction != "x0" or config.concat[:1] != ("masked_image",)
    ):
        raise _problem(where, "a residual head needs prediction x0 and masked_image first")


def config_from_json(text: str, where: str = "model_name") -> RelightConfig:
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise _problem(where, f"config metadata is not JSON ({error})") from None
    except RecursionError:
        raise _problem(where, "config metadata is nested too deep to be a config") from None
    if not isinstance(raw, dict) or not isinstance(raw.get("unet"), dict):
        raise _problem(where, "config metadata lacks the 'unet' section")
    known = set(RelightConfig.__dataclass_fields__)
    extra = sorted(set(raw) - known)
    if extra:
        raise _problem(where, f"unknown config keys {extra}")
    for key in ("modes", "concat"):
        if isinstance(raw.get(key), list):
            raw[key] = tuple(raw[key])
    config = RelightConfig(**raw)
    validate_config(config, where)
    return config


def read_metadata(path: str | os.PathLike, where: str = "model_name") -> dict[str, str]:
    """The safetensors header metadata; a clear error for a truncated or corrupt file."""
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            return handle.metadata() or {}
    except FileNotFoundError:
        raise WeightFormatError(f"{where}: no such file: {path}") from None
    except Exception as error:  # safetensors raises its own error types for bad headers
        raise _unreadable(path, where, error) from None


def _unreadable(path: str | os.PathLike, where: str, error: Exception) -> WeightFormatError:
    return WeightFormatError(
        f"{where}: {Path(path).name} is not a readable safetensors file "
        f"(truncated or corrupt?): {error}"
    )


def read_config(path: str | os.PathLike, where: str = "model_name") -> RelightConfig | None:
    """The file's relight config, or None when the file is not in the pack's format. Its size
    is estimated and its tensors' shapes compared with it from the header alone, so a hostile
    or broken file is refused before a single weight is allocated."""
    metadata = read_metadata(path, where)
    if CONFIG_KEY not in metadata:
        return None
    config = config_from_json(metadata[CONFIG_KEY], where)
    network = build_network(config, device="meta")
    parameters = sum(p.numel() for p in network.parameters())
    if parameters > MAX_PARAMETERS:
        raise _problem(
            where, f"the config makes {parameters:,} parameters; the limit is {MAX_PARAMETERS:,}"
        )
    check_shapes(network, header_shapes(path, where), where)
    return config


def header_shapes(path: str | os.PathLike, where: str = "model_name") -> dict[str, tuple]:
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            return {key: tuple(handle.get_slice(key).get_shape()) for key in handle.keys()}
    except Exception as error:
        raise _unreadable(path, where, error) from None


def require_finite_weights(state_dict: dict[str, torch.Tensor], where: str = "model_name") -> None:
    """NaN or infinite weights make every repaint black while the run 'succeeds'."""
    bad = [k for k, t in state_dict.items() if t.is_floating_point() and not t.isfinite().all()]
    if bad:
        raise WeightFormatError(
            f"{where}: {len(bad)} weight tensors hold NaN or infinite values (e.g. {bad[:3]}); "
            "the file is damaged or came from a training run that diverged"
        )


def read_provenance(path: str | os.PathLike) -> dict:
    text = read_metadata(path).get(PROVENANCE_KEY)
    return json.loads(text) if text else {}


def load_tensors(path: str | os.PathLike, where: str = "model_name") -> dict[str, torch.Tensor]:
    try:
        return safetensors.torch.load_file(str(path))
    except Exception as error:
        raise WeightFormatError(
            f"{where}: could not read the tensors of {Path(path).name} "
            f"(truncated or corrupt?): {error}"
        ) from None


def network_kwargs(config: RelightConfig) -> dict:
    scale = float(config.sampling.get("multiplier", 1000.0))
    return {**config.unet, "predict_x0": config.prediction == "x0", "timestep_scale": scale}


def build_network(config: RelightConfig, **kwargs) -> torch.nn.Module:
    return ARCHITECTURES[config.architecture](**network_kwargs(config), **kwargs)


def check_state_dict(
    network: torch.nn.Module, state_dict: dict[str, torch.Tensor], where: str = "model_name"
) -> None:
    """Every tensor the network needs, with its shape, and nothing else."""
    check_shapes(network, {k: tuple(v.shape) for k, v in state_dict.items()}, where)


def check_shapes(network: torch.nn.Module, shapes: dict[str, tuple], where: str) -> None:
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    wrong = sorted(k for k in expected.keys() & shapes.keys() if shapes[k] != expected[k])
    if missing or unexpected or wrong:
        details = []
        if missing:
            details.append(f"{len(missing)} missing (e.g. {missing[:3]})")
        if unexpected:
            details.append(f"{len(unexpected)} unexpected (e.g. {unexpected[:3]})")
        if wrong:
            key = wrong[0]
            details.append(
                f"{len(wrong)} of the wrong shape (e.g. {key}: {shapes[key]} vs {expected[key]})"
            )
        raise WeightFormatError(f"{where}: weights do not match the config: {'; '.join(details)}")


def save_relight_model(
    path: str | os.PathLike,
    state_dict: dict[str, torch.Tensor],
    config: RelightConfig,
    provenance: dict | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Write atomically: a crash never leaves a half-written model behind."""
    validate_config(config, where="config")
    check_state_dict(build_network(config, device="meta"), state_dict, where="state_dict")
    tensors = {k: (v.to(dtype) if dtype else v).contiguous().cpu() for k, v in state_dict.items()}
    metadata = {CONFIG_KEY: config.to_json(), PROVENANCE_KEY: json.dumps(provenance or {})}
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
    os.close(fd)
    try:
        safetensors.torch.save_file(tensors, tmp, metadata=metadata)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
