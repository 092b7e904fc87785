"""Queue-time and run-time checks of widget values ComfyUI 0.3.75 lets through (V3 dropdowns,
NaN floats), and of non-finite images and masks: every refusal names the input."""

import math

import pytest
import torch

from relight_inpaint.lighting.light import direction_from_angles, make_light
from relight_inpaint.nodes.common import widget_problem
from relight_inpaint.nodes.estimate_light import EstimateLight
from relight_inpaint.nodes.estimate_normals import EstimateNormals
from relight_inpaint.nodes.light_direction_encode import LightDirectionEncode
from relight_inpaint.nodes.mask_conditioning import MaskConditioning
from relight_inpaint.nodes.relight_conditioning import RelightConditioning
from relight_inpaint.nodes.relight_inpaint_sampler import RelightInpaintSampler
from relight_inpaint.nodes.shadow_mask import ShadowMask

NAN, INF = math.nan, math.inf

BAD_WIDGETS = [
    (RelightInpaintSampler, "sampler_name", "bogus"),
    (RelightInpaintSampler, "scheduler", "bogus"),
    (RelightInpaintSampler, "mode", "paint"),
    (RelightInpaintSampler, "light_map", 3),
    (RelightInpaintSampler, "normal_convention", "z_up"),
    (RelightInpaintSampler, "cfg", NAN),
    (RelightInpaintSampler, "cfg", INF),
    (RelightInpaintSampler, "denoise", NAN),
    (RelightInpaintSampler, "denoise", 1.5),
    (RelightInpaintSampler, "context", -INF),
    (RelightConditioning, "mode", "bogus"),
    (RelightConditioning, "light_map", "bogus"),
    (LightDirectionEncode, "direction_from", "above"),
    (LightDirectionEncode, "azimuth", NAN),
    (LightDirectionEncode, "intensity", INF),
    (LightDirectionEncode, "ambient", NAN),
    (LightDirectionEncode, "x", "1"),
    (EstimateLight, "region", "everywhere"),
    (EstimateNormals, "normal_convention", "bogus"),
    (ShadowMask, "mode", "bogus"),
    (ShadowMask, "depth_relief", NAN),
]


@pytest.mark.parametrize(("node", "name", "value"), BAD_WIDGETS)
def test_queue_time_check_refuses_the_value_and_names_the_input(node, name, value):
    answer = node.validate_inputs(**{name: value})
    assert isinstance(answer, str) and answer.startswith(f"{name}: "), answer


def test_a_bad_dropdown_value_lists_the_valid_ones():
    answer = RelightInpaintSampler.validate_inputs(sampler_name="bogus")
    assert "euler" in answer and "dpmpp_2m" in answer


@pytest.mark.parametrize(
    "node", [RelightInpaintSampler, RelightConditioning, LightDirectionEncode, ShadowMask]
)
def test_queue_time_check_passes_defaults_and_linked_inputs(node):
    assert node.validate_inputs() is True  # every input linked (None) or left out
    types = node.INPUT_TYPES()
    defaults = {
        name: spec[1]["default"]
        for group in ("required", "optional")
        for name, spec in types.get(group, {}).items()
        if len(spec) > 1 and "default" in spec[1]
    }
    assert widget_problem(node, defaults) is None


def test_values_that_arrive_through_links_are_checked_when_the_node_runs():
    with pytest.raises(ValueError, match="^intensity: expected a finite number, got nan"):
        LightDirectionEncode.execute("angles", 90.0, 30.0, 0.0, 0.0, 1.0, NAN, 0.1, "#ffffff")
    masked = MaskConditioning.execute(torch.rand(1, 8, 8, 3), torch.ones(1, 8, 8), 0, 0).result[0]
    light = make_light(direction_from_angles(90.0, 30.0))
    with pytest.raises(ValueError, match="^denoise: expected a finite number"):
        RelightInpaintSampler.execute(
            None, None, masked, light, "relight", 0, 1, 1.0, "euler", "simple", NAN
        )
    with pytest.raises(ValueError, match="^sampler_name: 'bogus' is not one of"):
        RelightInpaintSampler.execute(
            None, None, masked, light, "relight", 0, 1, 1.0, "bogus", "simple", 1.0
        )


@pytest.mark.parametrize("name", ["image", "mask"])
@pytest.mark.parametrize("bad", [NAN, INF])
def test_non_finite_image_or_mask_is_refused_by_name(name, bad):
    inputs = {"image": torch.rand(1, 8, 8, 3), "mask": torch.ones(1, 8, 8)}
    inputs[name][0, 2, 3, ...] = bad
    with pytest.raises(ValueError, match=f"^{name}: \\d+ of \\d+ values are NaN or infinite"):
        MaskConditioning.execute(inputs["image"], inputs["mask"], 0, 0)
    with pytest.raises(ValueError, match=f"^{name}: "):
        EstimateLight.execute(inputs["image"], inputs["mask"], "inside_mask")


def test_non_finite_optional_maps_are_refused_by_name():
    image, mask = torch.rand(1, 8, 8, 3), torch.ones(1, 8, 8)
    depth = torch.rand(1, 8, 8, 3)
    depth[0, 0, 0, 0] = NAN
    with pytest.raises(ValueError, match="^depth_map: "):
        EstimateNormals.execute(image, mask, depth_map=depth)


def test_a_photo_too_large_is_refused_where_it_enters_before_anything_is_built():
    huge = torch.zeros(1, 20000, 1, 3).expand(1, 20000, 16400, 3)  # a view: no memory
    with pytest.raises(ValueError, match=r"^image: the image is 16400x20000 px .* limit"):
        MaskConditioning.execute(huge, torch.ones(1, 8, 8), 0, 0)
