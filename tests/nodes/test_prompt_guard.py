"""The prompt hook: /history stays strict JSON whatever is queued (issue 25, item 10)."""

import json
import math

import pytest

from relight_inpaint.nodes.prompt_guard import guard_prompt

PACK = {"RelightInpaintSampler", "LightDirectionEncode"}


def refusal_reason(data: object) -> str:
    [(node_id, node)] = data["prompt"].items()
    assert node == {"inputs": {}}  # no class_type: ComfyUI answers 400, naming the id
    return node_id


def test_non_finite_numbers_of_the_packs_nodes_become_text_and_the_prompt_valid_json():
    data = {
        "prompt": {
            "1": {"class_type": "RelightInpaintSampler", "inputs": {"cfg": math.nan, "steps": 2}},
            "2": {"class_type": "LightDirectionEncode", "inputs": {"azimuth": -math.inf}},
        }
    }
    out = guard_prompt(data, PACK)
    assert out["prompt"]["1"]["inputs"] == {"cfg": "nan (not a finite number)", "steps": 2}
    assert out["prompt"]["2"]["inputs"]["azimuth"] == "-inf (not a finite number)"
    json.dumps(out, allow_nan=False)


def test_nested_values_of_the_packs_nodes_are_made_strict_too():
    """Mutation caught: only top-level values converted (issue 25: `"junk": [NaN, 1]`,
    `{"v": NaN}`, `"azimuth": [NaN]` on a node connected to no output reached /history)."""
    inputs = {"junk": [math.nan, 1], "more": {"v": math.inf}, "azimuth": [math.nan]}
    data = {"prompt": {"1": {"class_type": "LightDirectionEncode", "inputs": inputs}}}
    out = guard_prompt(data, PACK)
    json.dumps(out, allow_nan=False)
    assert out["prompt"]["1"]["inputs"]["junk"] == ["nan (not a finite number)", 1]


def test_an_integer_too_large_for_a_float_becomes_text_naming_its_size():
    """Mutation caught: integers left alone (ComfyUI's float() check ends in OverflowError)."""
    data = {"prompt": {"1": {"class_type": "RelightInpaintSampler", "inputs": {"cfg": 10**400}}}}
    out = guard_prompt(data, PACK)
    assert out["prompt"]["1"]["inputs"]["cfg"].startswith("an integer of about 401 digits")


@pytest.mark.parametrize(
    "data, where",
    [
        (
            {"prompt": {"3": {"class_type": "KSampler", "inputs": {"cfg": math.inf}}}},
            "3.inputs.cfg",
        ),
        ({"prompt": {}, "extra_data": {"w": [math.nan]}}, "extra_data.w.0"),
        ({"prompt": {}, "number": 10**400}, "number"),
    ],
)
def test_a_value_json_cannot_hold_outside_the_packs_nodes_refuses_the_prompt(data, where):
    """Mutation caught: the guard looking only at the pack's nodes."""
    assert where in refusal_reason(guard_prompt(data, PACK))


@pytest.mark.parametrize("class_type", [["RelightInpaintSampler"], {"a": 1}, 5, None])
def test_a_class_type_that_is_not_text_is_refused_not_a_type_error(class_type):
    """Mutation caught: `class_type in node_types` on a list (TypeError in the hook)."""
    data = {"prompt": {"7": {"class_type": class_type, "inputs": {}}}}
    assert "node 7: class_type is a" in refusal_reason(guard_prompt(data, PACK))


def test_deep_nesting_does_not_make_the_guard_fail():
    deep: list = [math.nan]
    for _ in range(50_000):
        deep = [deep]
    data = {"prompt": {"1": {"class_type": "RelightInpaintSampler", "inputs": {"x": deep}}}}
    guard_prompt(data, PACK)  # no RecursionError


def test_malformed_prompts_pass_through_for_the_host_to_refuse():
    for data in ({}, {"prompt": 5}, {"prompt": {"1": 5}}, {"prompt": {"1": {"inputs": []}}}, 7):
        assert guard_prompt(data, {"RelightInpaintSampler"}) == data
