import json
import math

from relight_inpaint.nodes.prompt_guard import text_for_non_finite


def test_non_finite_numbers_of_the_packs_nodes_become_text_and_the_prompt_valid_json():
    data = {
        "prompt": {
            "1": {"class_type": "RelightInpaintSampler", "inputs": {"cfg": math.nan, "steps": 2}},
            "2": {"class_type": "LightDirectionEncode", "inputs": {"azimuth": -math.inf}},
            "3": {"class_type": "SomeoneElsesNode", "inputs": {"x": math.inf}},
        }
    }
    out = text_for_non_finite(data, {"RelightInpaintSampler", "LightDirectionEncode"})
    assert out["prompt"]["1"]["inputs"] == {"cfg": "nan (not a finite number)", "steps": 2}
    assert out["prompt"]["2"]["inputs"]["azimuth"] == "-inf (not a finite number)"
    assert out["prompt"]["3"]["inputs"]["x"] == math.inf  # not the pack's to change
    json.dumps(out["prompt"]["1"], allow_nan=False)


def test_malformed_prompts_pass_through_for_the_host_to_refuse():
    for data in ({}, {"prompt": 5}, {"prompt": {"1": 5}}, {"prompt": {"1": {"inputs": []}}}):
        assert text_for_non_finite(data, {"RelightInpaintSampler"}) == data
