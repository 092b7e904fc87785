"""Property tests (Hypothesis) of the conditioning and format functions: for any shape, dtype,
NaN/Inf or extreme value, the answer is a result or a ValueError whose message starts with the
name of the input it is about; never another exception."""

from __future__ import annotations

import json
import math

import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relight_inpaint.conditioning.checks import require_finite, require_workable_size
from relight_inpaint.conditioning.mask import prepare_masked_image, resize_mask
from relight_inpaint.conditioning.select import SelectionError, parse_clicks
from relight_inpaint.lighting.light import (
    direction_from_angles,
    make_light,
    normalize_direction,
    parse_color,
)
from relight_inpaint.model_loader.errors import WeightFormatError
from relight_inpaint.model_loader.relight_format import config_from_json, make_config

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ODD_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, -0.0, 1e-300, 1e300]),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=8,
)


def refused_by_name(call, names: tuple[str, ...], errors=(ValueError,)) -> bool:
    """Run `call`; True when it was refused with a message naming one of `names`."""
    try:
        call()
    except errors as error:
        message = str(error)
        assert message.startswith(names), message
        return True
    return False


@st.composite
def tensors(draw, max_dims: int = 4):
    shape = draw(st.lists(st.integers(0, 5), min_size=0, max_size=max_dims))
    dtype = draw(st.sampled_from([torch.float32, torch.float16, torch.float64, torch.uint8]))
    seed = draw(st.integers(0, 2**32 - 1))  # from Hypothesis: a failure replays and shrinks
    values = torch.rand(shape or (), generator=torch.Generator().manual_seed(seed))
    tensor = values.to(dtype) if dtype != torch.uint8 else (values * 255).to(torch.uint8)
    if tensor.numel() and tensor.is_floating_point() and draw(st.booleans()):
        odd = torch.tensor(draw(ODD_FLOATS), dtype=torch.float64).to(tensor.dtype)
        tensor.view(-1)[draw(st.integers(0, tensor.numel() - 1))] = odd
    return tensor


@SETTINGS
@given(image=tensors(), mask=tensors(), grow=st.integers(-8, 8), feather=st.integers(-2, 8))
def test_prepare_masked_image_names_the_bad_input(image, mask, grow, feather):
    def call():
        masked = prepare_masked_image(image, mask, grow, feather)
        assert torch.isfinite(masked.mask).all() and torch.isfinite(masked.image).all()
        assert masked.mask.min() >= 0 and masked.mask.max() <= 1

    refused_by_name(call, ("image:", "mask:", "feather:", "size:"))


@SETTINGS
@given(mask=tensors(), height=st.integers(-2, 40), width=st.integers(-2, 40))
def test_resize_mask_names_the_bad_input(mask, height, width):
    refused_by_name(lambda: resize_mask(mask, height, width), ("mask:", "size:"))


@SETTINGS
@given(tensor=tensors())
def test_require_finite_refuses_exactly_the_non_finite(tensor):
    has_bad = tensor.is_floating_point() and not torch.isfinite(tensor).all()
    assert refused_by_name(lambda: require_finite("depth_map", tensor), ("depth_map:",)) == has_bad


@SETTINGS
@given(height=st.integers(-5, 100_000), width=st.integers(-5, 100_000))
def test_workable_size_names_the_image(height, width):
    refused = refused_by_name(lambda: require_workable_size("image", height, width), ("image:",))
    ok = 1 <= height <= 16384 and 1 <= width <= 16384 and height * width <= 268e6
    assert refused != ok


@SETTINGS
@given(azimuth=ODD_FLOATS, elevation=ODD_FLOATS, intensity=ODD_FLOATS, ambient=ODD_FLOATS)
def test_a_light_from_any_numbers_is_made_or_refused_by_name(
    azimuth, elevation, intensity, ambient
):
    def call():
        light = make_light(direction_from_angles(azimuth, elevation), intensity, ambient)
        assert torch.isfinite(light.direction).all()

    refused_by_name(call, ("azimuth:", "elevation:", "intensity:", "ambient:", "light vector"))


@SETTINGS
@given(x=ODD_FLOATS, y=ODD_FLOATS, z=ODD_FLOATS)
def test_a_light_vector_is_unit_or_refused_by_name(x, y, z):
    def call():
        assert abs(float(normalize_direction(x, y, z).norm()) - 1.0) < 1e-4

    refused_by_name(call, ("light vector",))


@SETTINGS
@given(text=st.text(max_size=20))
def test_any_colour_text_is_parsed_or_refused_by_name(text):
    def call():
        rgb = parse_color(text)
        assert rgb.shape == (3,) and bool(((rgb >= 0) & (rgb <= 1)).all())

    refused_by_name(call, ("color:",))


@SETTINGS
@given(value=JSON_VALUES)
def test_any_clicks_json_is_parsed_or_refused_with_a_selection_error(value):
    refused_by_name(lambda: parse_clicks(json.dumps(value)), ("",), errors=(SelectionError,))


CONFIG_PLACES = [
    *[(key,) for key in ("unet", "modes", "concat", "architecture", "prediction", "sampling")],
    *[(key,) for key in ("light_range", "format", "version")],
    *[("unet", key) for key in ("base_channels", "num_blocks", "stem", "time_dim")],
    *[("unet", key) for key in ("channel_mult", "in_channels", "residual")],
]


@SETTINGS
@given(place=st.sampled_from(CONFIG_PLACES), value=JSON_VALUES)
def test_any_config_value_loads_or_is_a_format_error_naming_the_model(place, value):
    raw = json.loads(make_config(base_channels=8, channel_mult=(1, 2), time_dim=16).to_json())
    section = raw["unet"] if len(place) == 2 else raw
    section[place[-1]] = value
    refused_by_name(
        lambda: config_from_json(json.dumps(raw)), ("model_name:",), errors=(WeightFormatError,)
    )
