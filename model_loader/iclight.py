"""IC-Light (lllyasviel) UNet offsets: detect, convert to ComfyUI keys, validate, patch.

IC-Light is an SD1.5 UNet whose `conv_in` takes 8 (variants fc, fcon) or 12 (fbc) input
channels. The published files are OFFSETS, one for every UNet weight, in diffusers key layout
(`conv_in.weight`, `down_blocks.0.attentions.0.proj_in.weight`, ...); ComfyUI users also have
LDM-layout conversions (`diffusion_model.input_blocks.0.0.weight`, with or without the
`diffusion_model.` / `model.diffusion_model.` prefix). The merged model is
`base + offset`, the base `conv_in` zero-padded from 4 to 8/12 input channels first.

ComfyUI applies this as "diff" patches on a cloned ModelPatcher (see `build_patches`):
`comfy.lora.calculate_weight` pads the base weight to the diff's shape when the patch carries
`{"pad_weight": True}`.

The offsets cannot tell fc from fcon (both 8 channels): both are called "fc" here.

Functions take and return plain state dicts so they can be tested without a server.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .errors import WeightFormatError

__all__ = [
    "WeightFormatError",
    "detect_layout",
    "is_iclight",
    "iclight_variant",
    "concat_channels",
    "variant_label",
    "to_ldm_offsets",
    "validate_offsets",
    "build_patches",
    "apply_iclight",
    "CONV_IN_LDM",
    "CONV_IN_DIFFUSERS",
    "LDM_PREFIXES",
    "MODEL_OPTIONS_KEY",
]

CONV_IN_DIFFUSERS = "conv_in.weight"
CONV_IN_LDM = "input_blocks.0.0.weight"
# Longest first: "model.diffusion_model." also ends with "diffusion_model.".
LDM_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "")
MODEL_OPTIONS_KEY = "relight_inpaint"

_CHANNELS_TO_VARIANT = {8: "fc", 12: "fbc"}
_VARIANT_CONCAT = {"fc": 4, "fbc": 8}
_NOT_SD15 = "the base MODEL is not SD1.5-shaped (IC-Light needs an SD1.5 checkpoint)"


def _first(keys, n: int = 3) -> str:
    keys = sorted(keys)
    shown = ", ".join(repr(k) for k in keys[:n])
    return shown + (", ..." if len(keys) > n else "")


def _ldm_prefix(state_dict: Mapping) -> str | None:
    for prefix in LDM_PREFIXES:
        if prefix + CONV_IN_LDM in state_dict:
            return prefix
    return None


def _conv_in(state_dict: Mapping):
    """The conv_in tensor of either layout, or None."""
    if CONV_IN_DIFFUSERS in state_dict:
        return state_dict[CONV_IN_DIFFUSERS]
    prefix = _ldm_prefix(state_dict)
    if prefix is not None:
        return state_dict[prefix + CONV_IN_LDM]
    return None


def detect_layout(state_dict: Mapping, input_name: str = "model_name") -> str:
    """Return "diffusers" or "ldm" from the conv_in key; raise WeightFormatError otherwise."""
    if CONV_IN_DIFFUSERS in state_dict:
        return "diffusers"
    if _ldm_prefix(state_dict) is not None:
        return "ldm"
    raise WeightFormatError(
        f"{input_name}: the file is neither IC-Light (diffusers or LDM UNet offsets) nor a "
        f"Relight Inpaint model: expected a '{CONV_IN_DIFFUSERS}' (diffusers) or "
        f"'diffusion_model.{CONV_IN_LDM}' (LDM) key, found {len(state_dict)} keys "
        f"such as {_first(state_dict.keys())}"
    )


def is_iclight(state_dict: Mapping) -> bool:
    """True when conv_in (either layout) is a 4-D weight with 8 or 12 input channels."""
    w = _conv_in(state_dict)
    return w is not None and w.ndim == 4 and w.shape[1] in _CHANNELS_TO_VARIANT


def iclight_variant(state_dict: Mapping, input_name: str = "model_name") -> str:
    """ "fc" (8 conv_in input channels: fc or fcon) or "fbc" (12)."""
    detect_layout(state_dict, input_name)
    w = _conv_in(state_dict)
    channels = w.shape[1] if w.ndim == 4 else None
    if channels not in _CHANNELS_TO_VARIANT:
        raise WeightFormatError(
            f"{input_name}: expected an IC-Light conv_in weight [C, 8 (fc/fcon) or 12 (fbc), 3, 3],"
            f" got shape {list(w.shape)}"
        )
    return _CHANNELS_TO_VARIANT[channels]


def concat_channels(variant: str) -> int:
    """Latent channels concatenated to the 4-channel noisy latent: fc 4, fbc 8."""
    try:
        return _VARIANT_CONCAT[variant]
    except KeyError:
        raise ValueError(f"unknown IC-Light variant {variant!r}: expected 'fc' or 'fbc'") from None


def variant_label(variant: str) -> str:
    """How a message shows a variant: "fc/fcon" or "fbc"."""
    return "fc/fcon" if variant == "fc" else variant


def _diffusers_map(unet_config: Mapping) -> dict[str, str]:
    import comfy.utils

    cfg = dict(unet_config)
    nrb = cfg.get("num_res_blocks")
    if isinstance(nrb, int):  # comfy.utils.unet_to_diffusers indexes it per level
        cfg["num_res_blocks"] = [nrb] * len(cfg["channel_mult"])
    return comfy.utils.unet_to_diffusers(cfg)


def to_ldm_offsets(
    state_dict: Mapping, unet_config: Mapping, input_name: str = "model_name"
) -> dict[str, torch.Tensor]:
    """Offsets keyed like the ComfyUI UNet's own state dict (no prefix: `input_blocks.0.0.weight`).

    Diffusers keys go through `comfy.utils.unet_to_diffusers(unet_config)` (diffusers -> LDM);
    LDM keys lose their prefix. Tensors are not copied.
    """
    layout = detect_layout(state_dict, input_name)
    out: dict[str, torch.Tensor] = {}
    unmapped: list[str] = []
    if layout == "diffusers":
        mapping = _diffusers_map(unet_config)
        for k, v in state_dict.items():
            ldm = mapping.get(k)
            if ldm is None:
                unmapped.append(k)
            elif ldm in out:
                raise WeightFormatError(
                    f"{input_name}: two diffusers keys map onto UNet key '{ldm}' (one is '{k}'); "
                    "expected one offset per UNet weight"
                )
            else:
                out[ldm] = v
    else:
        prefix = _ldm_prefix(state_dict)
        for k, v in state_dict.items():
            if k.startswith(prefix):
                out[k[len(prefix) :]] = v
            else:
                unmapped.append(k)
    if unmapped:
        where = (
            "the base MODEL's UNet (diffusers -> LDM)"
            if layout == "diffusers"
            else f"UNet keys (expected every key to start with {prefix!r})"
        )
        raise WeightFormatError(
            f"{input_name}: {len(unmapped)} of {len(state_dict)} {layout} keys cannot be mapped "
            f"onto {where}: {_first(unmapped)}; expected IC-Light UNet offsets for an SD1.5 "
            f"base — either the file is not IC-Light or {_NOT_SD15}"
        )
    return out


def validate_offsets(
    offsets: Mapping[str, torch.Tensor],
    base_shapes: Mapping[str, torch.Size],
    base_in_channels: int,
    input_name: str = "model_name",
    model_input: str = "model",
) -> None:
    """Check LDM-keyed offsets against the base UNet's shapes (keys without prefix).

    The base must have 4 input channels; the key sets must be equal; every shape equal except
    conv_in, whose offset is [C, 8|12, 3, 3] against the base's [C, 4, 3, 3].
    """
    base_conv = base_shapes.get(CONV_IN_LDM)
    if (
        base_in_channels != 4
        or base_conv is None
        or len(base_conv) != 4
        or base_conv[1] != 4
        or tuple(base_conv[2:]) != (3, 3)
    ):
        got = f"in_channels={base_in_channels}, conv_in " + (
            "missing" if base_conv is None else str(list(base_conv))
        )
        raise WeightFormatError(
            f"{model_input}: expected an SD1.5 UNet with 4 input channels, got {got} "
            "(IC-Light patches a plain SD1.5 checkpoint, not an inpaint or already widened model)"
        )

    missing = set(base_shapes) - set(offsets)
    unexpected = set(offsets) - set(base_shapes)
    if missing or unexpected:
        raise WeightFormatError(
            f"{model_input}: {_NOT_SD15}: the IC-Light offsets ({input_name}) have "
            f"{len(offsets)} keys, the base UNet {len(base_shapes)}; "
            f"{len(missing)} missing from the offsets ({_first(missing) or 'none'}), "
            f"{len(unexpected)} unexpected ({_first(unexpected) or 'none'})"
        )

    off_conv = offsets[CONV_IN_LDM]
    if (
        off_conv.ndim != 4
        or off_conv.shape[1] not in _CHANNELS_TO_VARIANT
        or off_conv.shape[0] != base_conv[0]
        or tuple(off_conv.shape[2:]) != tuple(base_conv[2:])
    ):
        raise WeightFormatError(
            f"{input_name}: expected the conv_in offset '{CONV_IN_LDM}' to have shape "
            f"[{base_conv[0]}, 8 or 12, {base_conv[2]}, {base_conv[3]}] for this base, "
            f"got {list(off_conv.shape)}"
        )

    bad = [
        k
        for k, shape in base_shapes.items()
        if k != CONV_IN_LDM and tuple(offsets[k].shape) != tuple(shape)
    ]
    if bad:
        k = sorted(bad)[0]
        raise WeightFormatError(
            f"{model_input}: {_NOT_SD15}, or {input_name} is not an IC-Light SD1.5 offset: "
            f"{len(bad)} offsets differ in shape from the base UNet, e.g. '{k}' is "
            f"{list(offsets[k].shape)} but the base has {list(base_shapes[k])} "
            f"(first: {_first(bad)})"
        )


def build_patches(offsets: Mapping[str, torch.Tensor]) -> dict:
    """ModelPatcher patches: "diffusion_model."+k -> ("diff", (offset, {"pad_weight": ...})).

    comfy.lora.calculate_weight (0.3.75) reads `v = ("diff", (diff, extra))`; with
    `extra["pad_weight"]` true and a larger diff it zero-pads the base weight to the diff's
    shape before adding. Only conv_in needs it.
    """
    return {
        "diffusion_model." + k: ("diff", (v, {"pad_weight": k == CONV_IN_LDM}))
        for k, v in offsets.items()
    }


def _base_shapes(model_patcher) -> dict[str, torch.Size]:
    """Unpatched diffusion_model shapes (no prefix).

    The UNet module is shared by every clone; while a clone with IC-Light patches is loaded its
    conv_in parameter IS the widened one. The patcher's backup holds the original weights then.
    """
    shapes = {k: v.shape for k, v in model_patcher.model.diffusion_model.state_dict().items()}
    prefix = "diffusion_model."
    for key, bk in getattr(model_patcher, "backup", {}).items():
        if key.startswith(prefix) and key[len(prefix) :] in shapes:
            shapes[key[len(prefix) :]] = bk.weight.shape
    return shapes


def apply_iclight(
    model_patcher,
    state_dict: Mapping,
    input_name: str = "model_name",
    model_input: str = "model",
):
    """Clone `model_patcher` and add the IC-Light offsets as patches.

    Returns (patched clone, variant). The clone's model_options carries
    `{"relight_inpaint": {"kind": "iclight", "variant": ..., "concat_channels": ...}}`; the
    original patcher is not modified (ModelPatcher.clone deep-copies model_options).
    """
    tag = model_patcher.model_options.get(MODEL_OPTIONS_KEY)
    if isinstance(tag, dict) and tag.get("kind") == "iclight":
        raise WeightFormatError(
            f"{model_input}: IC-Light ({variant_label(tag.get('variant', '?'))}) is already "
            "applied to this MODEL; expected a plain SD1.5 MODEL"
        )
    variant = iclight_variant(state_dict, input_name)
    unet_config = model_patcher.model.model_config.unet_config
    offsets = to_ldm_offsets(state_dict, unet_config, input_name)
    validate_offsets(
        offsets,
        _base_shapes(model_patcher),
        unet_config.get("in_channels", 4),
        input_name=input_name,
        model_input=model_input,
    )
    patches = build_patches(offsets)
    m = model_patcher.clone()
    applied = set(m.add_patches(patches, 1.0))
    not_applied = set(patches) - applied
    if not_applied:
        raise WeightFormatError(
            f"{model_input}: {len(not_applied)} IC-Light patches found no weight in the MODEL: "
            f"{_first(not_applied)}; expected an SD1.5 MODEL"
        )
    m.model_options[MODEL_OPTIONS_KEY] = {
        "kind": "iclight",
        "variant": variant,
        "concat_channels": concat_channels(variant),
    }
    return m, variant
