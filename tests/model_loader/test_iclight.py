"""IC-Light offsets: layout detection, key conversion, validation, patching and sampling."""

from __future__ import annotations

import pytest
import torch
from relight_testing.iclight_fixtures import (
    SD15_UNET,
    SDXL_UNET,
    build_tiny_sd15,
    detected_model_config,
    fake_iclight_offsets,
    meta_unet,
)

from relight_inpaint.model_loader.iclight import (
    WeightFormatError,
    apply_iclight,
    build_patches,
    concat_channels,
    detect_layout,
    iclight_variant,
    is_iclight,
    to_ldm_offsets,
    validate_offsets,
)

CONV_IN = "input_blocks.0.0.weight"


@pytest.fixture(scope="module")
def sd15_config():
    mc = detected_model_config(SD15_UNET)
    import comfy.supported_models

    assert type(mc) is comfy.supported_models.SD15
    return mc.unet_config


@pytest.fixture(scope="module")
def sd15_shapes(sd15_config):
    return {k: v.shape for k, v in meta_unet(sd15_config).state_dict().items()}


@pytest.fixture(scope="module")
def sdxl_config():
    mc = detected_model_config(SDXL_UNET)
    import comfy.supported_models

    assert type(mc) is comfy.supported_models.SDXL
    return mc.unet_config


@pytest.fixture(scope="module")
def tiny():
    return build_tiny_sd15(seed=0)


def _tiny_offsets(tiny, variant="fc", layout="diffusers", seed=1, **kw):
    gen = torch.Generator().manual_seed(seed)
    cfg = tiny.model.model_config.unet_config
    return fake_iclight_offsets(cfg, variant, layout, generator=gen, **kw)


# --- 1. full SD1.5 key set --------------------------------------------------------------------


@pytest.mark.parametrize("variant,channels", [("fc", 8), ("fcon", 8), ("fbc", 12)])
@pytest.mark.parametrize(
    "layout,prefix",
    [
        ("diffusers", None),
        ("ldm", "diffusion_model."),
        ("ldm", "model.diffusion_model."),
        ("ldm", ""),
    ],
)
def test_full_sd15_key_set_maps_and_validates(
    sd15_config, sd15_shapes, variant, channels, layout, prefix
):
    kw = {} if prefix is None else {"prefix": prefix}
    sd = fake_iclight_offsets(sd15_config, variant, layout, device="meta", **kw)
    assert len(sd) == len(sd15_shapes) == 686  # diffusers SD1.5 UNet has 686 tensors
    if layout == "diffusers":
        assert "conv_in.weight" in sd and "down_blocks.0.attentions.0.proj_in.weight" in sd
    assert detect_layout(sd) == layout
    assert is_iclight(sd)
    expected_variant = "fbc" if channels == 12 else "fc"
    assert iclight_variant(sd) == expected_variant
    assert concat_channels(expected_variant) == channels - 4

    offsets = to_ldm_offsets(sd, sd15_config)
    assert set(offsets) == set(sd15_shapes)
    assert list(offsets[CONV_IN].shape) == [320, channels, 3, 3]
    assert offsets["out.2.weight"].shape == sd15_shapes["out.2.weight"]
    validate_offsets(offsets, sd15_shapes, 4)

    patches = build_patches(offsets)
    assert patches["diffusion_model." + CONV_IN][0] == "diff"
    assert patches["diffusion_model." + CONV_IN][1][1] == {"pad_weight": True}
    assert patches["diffusion_model.out.2.weight"][1][1] == {"pad_weight": False}
    assert patches["diffusion_model.out.2.weight"][1][0] is offsets["out.2.weight"]


def test_diffusers_keys_are_really_converted(sd15_config):
    sd = fake_iclight_offsets(sd15_config, "fc", "diffusers", device="meta")
    offsets = to_ldm_offsets(sd, sd15_config)
    # spot checks of the diffusers -> LDM mapping, identity by tensor object
    assert offsets[CONV_IN] is sd["conv_in.weight"]
    assert (
        offsets["input_blocks.1.1.proj_in.weight"]
        is sd["down_blocks.0.attentions.0.proj_in.weight"]
    )
    assert offsets["out.2.bias"] is sd["conv_out.bias"]


def test_consistent_order_across_layouts(tiny):
    a = to_ldm_offsets(_tiny_offsets(tiny, layout="diffusers"), tiny.model.model_config.unet_config)
    b = to_ldm_offsets(_tiny_offsets(tiny, layout="ldm"), tiny.model.model_config.unet_config)
    assert set(a) == set(b)
    assert all(torch.equal(a[k], b[k]) for k in a)


# --- 2. tiny numeric merge + sampling ---------------------------------------------------------


@pytest.mark.parametrize("variant,channels", [("fc", 8), ("fbc", 12)])
def test_tiny_merge_is_base_plus_offset(variant, channels):
    base = build_tiny_sd15(seed=0)
    sd = _tiny_offsets(base, variant, "diffusers", seed=1)
    offsets = to_ldm_offsets(sd, base.model.model_config.unet_config)
    before = {k: v.clone() for k, v in base.model.diffusion_model.state_dict().items()}
    options_before = dict(base.model_options)

    m, got_variant = apply_iclight(base, sd)
    assert got_variant == variant
    assert m is not base
    assert m.model_options["relight_inpaint"] == {
        "kind": "iclight",
        "variant": variant,
        "concat_channels": channels - 4,
    }
    assert "relight_inpaint" not in base.model_options
    assert base.model_options == options_before
    assert base.patches == {}
    assert len(m.patches) == len(before)

    m.patch_model()
    try:
        patched = {k: v.clone() for k, v in m.model.diffusion_model.state_dict().items()}
    finally:
        m.unpatch_model()

    assert set(patched) == set(before)
    assert list(patched[CONV_IN].shape) == [32, channels, 3, 3]
    padded = torch.zeros(32, channels, 3, 3)
    padded[:, :4] = before[CONV_IN]
    assert torch.equal(patched[CONV_IN], padded + offsets[CONV_IN])
    for k in before:
        if k != CONV_IN:
            assert torch.equal(patched[k], before[k] + offsets[k]), k
    # the merge actually changed something everywhere
    assert not torch.equal(patched["out.2.weight"], before["out.2.weight"])

    # original weights untouched (after unpatch, and the base patcher was never patched)
    after = base.model.diffusion_model.state_dict()
    for k in before:
        assert torch.equal(after[k], before[k]), k


def test_apply_on_base_while_a_clone_is_patched(tiny):
    """The UNet is shared: while an IC-Light clone is loaded, conv_in IS widened."""
    m, _ = apply_iclight(tiny, _tiny_offsets(tiny, "fc", "ldm"))
    m.patch_model()
    try:
        assert tiny.model.diffusion_model.state_dict()[CONV_IN].shape[1] == 8
        m2, v2 = apply_iclight(tiny, _tiny_offsets(tiny, "fbc", "diffusers", seed=2))
        assert v2 == "fbc"
    finally:
        m.unpatch_model()
    assert tiny.model.diffusion_model.state_dict()[CONV_IN].shape[1] == 4


def test_apply_twice_is_refused(tiny):
    m, _ = apply_iclight(tiny, _tiny_offsets(tiny, "fc", "diffusers"))
    with pytest.raises(WeightFormatError, match=r"^model: IC-Light \(fc/fcon\) is already"):
        apply_iclight(m, _tiny_offsets(tiny, "fc", "diffusers"))


def test_sampling_with_widened_conv_in(tiny):
    import comfy.model_management
    import comfy.sample

    m, variant = apply_iclight(tiny, _tiny_offsets(tiny, "fc", "diffusers"))
    cc = m.model_options["relight_inpaint"]["concat_channels"]
    assert cc == 4
    cond = [[torch.zeros(1, 1, 32), {"noise_concat": torch.zeros(1, cc, 8, 8)}]]
    neg = [[torch.zeros(1, 1, 32), {"noise_concat": torch.zeros(1, cc, 8, 8)}]]
    latent = torch.zeros(1, 4, 8, 8)
    noise = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    try:
        out = comfy.sample.sample(
            m, noise, 2, 7.0, "euler", "normal", cond, neg, latent, disable_pbar=True, seed=0
        )
        assert out.shape == (1, 4, 8, 8)
        assert torch.isfinite(out).all()
        # the base (4-channel conv_in) cannot take the concat: the clone really is widened
        with pytest.raises(RuntimeError, match="channels"):
            comfy.sample.sample(
                tiny, noise, 1, 7.0, "euler", "normal", cond, neg, latent, disable_pbar=True
            )
    finally:
        comfy.model_management.unload_all_models()
    assert tiny.model.diffusion_model.state_dict()[CONV_IN].shape[1] == 4


# --- 3. bad inputs ----------------------------------------------------------------------------


def test_neither_layout():
    sd = {"foo.weight": torch.zeros(3), "bar.bias": torch.zeros(2)}
    assert not is_iclight(sd)
    with pytest.raises(WeightFormatError, match=r"^model_name: .*neither IC-Light"):
        detect_layout(sd)
    with pytest.raises(WeightFormatError, match="neither"):
        iclight_variant(sd)
    with pytest.raises(WeightFormatError, match="neither"):
        to_ldm_offsets(sd, SD15_UNET)


def test_plain_sd15_is_not_iclight(tiny):
    sd = _tiny_offsets(tiny, 4, "ldm")
    assert detect_layout(sd) == "ldm"
    assert not is_iclight(sd)
    with pytest.raises(WeightFormatError, match=r"^model_name: .*8 \(fc/fcon\) or 12 \(fbc\)"):
        iclight_variant(sd)


@pytest.mark.parametrize("layout", ["diffusers", "ldm"])
def test_wrong_conv_in_channels(tiny, layout):
    sd = _tiny_offsets(tiny, 6, layout)
    assert not is_iclight(sd)
    with pytest.raises(
        WeightFormatError, match=r"^model_name: expected .*got shape \[32, 6, 3, 3\]"
    ):
        iclight_variant(sd)
    with pytest.raises(WeightFormatError, match=r"^model_name: expected"):
        apply_iclight(tiny, sd)
    # validate_offsets checks conv_in on its own too
    cfg = tiny.model.model_config.unet_config
    shapes = {k: v.shape for k, v in tiny.model.diffusion_model.state_dict().items()}
    with pytest.raises(WeightFormatError, match=r"^model_name: .*conv_in"):
        validate_offsets(to_ldm_offsets(sd, cfg), shapes, 4)


def test_one_shape_wrong(tiny):
    sd = _tiny_offsets(tiny, "fc", "diffusers")
    k = "down_blocks.0.attentions.0.proj_in.weight"
    sd[k] = torch.zeros(32, 32)  # linear-shaped instead of 1x1 conv
    with pytest.raises(WeightFormatError, match=r"^model: .*SD1\.5.*input_blocks\.1\.1\.proj_in"):
        apply_iclight(tiny, sd)


def test_missing_keys(tiny):
    sd = _tiny_offsets(tiny, "fc", "ldm")
    del sd["diffusion_model.out.2.bias"]
    del sd["diffusion_model.time_embed.0.weight"]
    with pytest.raises(WeightFormatError) as e:
        apply_iclight(tiny, sd)
    msg = str(e.value)
    assert msg.startswith("model: ")
    assert "SD1.5" in msg and "2 missing" in msg and "out.2.bias" in msg


def test_unmappable_keys(tiny):
    cfg = tiny.model.model_config.unet_config
    sd = _tiny_offsets(tiny, "fc", "diffusers")
    sd["first_stage_model.decoder.conv_in.weight"] = torch.zeros(1)
    with pytest.raises(WeightFormatError, match=r"^model_name: 1 of .*first_stage_model"):
        to_ldm_offsets(sd, cfg)
    sd = _tiny_offsets(tiny, "fc", "ldm")
    sd["cond_stage_model.x"] = torch.zeros(1)
    with pytest.raises(WeightFormatError, match=r"^model_name: 1 of .*cond_stage_model"):
        to_ldm_offsets(sd, cfg)


def test_base_with_wrong_in_channels(sd15_shapes, sd15_config):
    offsets = to_ldm_offsets(fake_iclight_offsets(sd15_config, "fc", "ldm", "meta"), sd15_config)
    shapes = dict(sd15_shapes)
    shapes[CONV_IN] = torch.Size([320, 9, 3, 3])  # an inpaint model
    with pytest.raises(WeightFormatError, match=r"^model: expected an SD1\.5 UNet with 4 input"):
        validate_offsets(offsets, shapes, 9)
    with pytest.raises(WeightFormatError, match=r"^model: .*conv_in \[320, 9, 3, 3\]"):
        validate_offsets(offsets, shapes, 4)  # config says 4, the weight says otherwise


def _meta_sdxl_patcher(sdxl_config):
    import comfy.model_base
    import comfy.model_patcher
    import comfy.supported_models

    model = comfy.model_base.BaseModel(
        comfy.supported_models.SDXL(dict(sdxl_config)), device=torch.device("meta")
    )
    cpu = torch.device("cpu")
    return comfy.model_patcher.ModelPatcher(model, load_device=cpu, offload_device=cpu)


def test_sdxl_base_is_refused(sd15_config, sdxl_config):
    sdxl_shapes = {k: v.shape for k, v in meta_unet(sdxl_config).state_dict().items()}
    assert sdxl_shapes[CONV_IN] == torch.Size([320, 4, 3, 3])  # passes the channel check
    ldm = fake_iclight_offsets(sd15_config, "fc", "ldm", device="meta")

    with pytest.raises(WeightFormatError, match=r"^model: the base MODEL is not SD1\.5-shaped"):
        validate_offsets(to_ldm_offsets(ldm, sd15_config), sdxl_shapes, 4)

    patcher = _meta_sdxl_patcher(sdxl_config)
    with pytest.raises(WeightFormatError, match=r"^model: the base MODEL is not SD1\.5-shaped"):
        apply_iclight(patcher, ldm)
    diffusers = fake_iclight_offsets(sd15_config, "fbc", "diffusers", device="meta")
    with pytest.raises(WeightFormatError, match=r"IC-Light needs an SD1\.5 checkpoint"):
        apply_iclight(patcher, diffusers)
    assert patcher.patches == {} and "relight_inpaint" not in patcher.model_options
