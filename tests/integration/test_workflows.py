"""The shipped workflows on the real host: (a) and (c) run on the bundled inputs and keep the
rest of the photo exact, (b) matches the nodes."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import requests
import torch
from PIL import Image

from relight_inpaint.conditioning.mask import prepare_masked_image
from relight_inpaint.host.build_workflows import bundled_photo_and_mask
from relight_inpaint.host.comfy_server import (
    fetch_output_images,
    object_info,
    run_prompt,
    upload_image,
)
from relight_inpaint.host.ui_workflow import (
    STOCK_NODES,
    TEMPLATES,
    TITLE_HEIGHT,
    VIEW_MARGINS,
    VIEW_SCALE,
    VIEW_WINDOW,
    api_to_ui,
    ui_file_name,
    widget_names,
    with_stock_snapshot,
)

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / "workflows"
ASSETS = REPO / "assets"
FILE_INPUTS = {"ckpt_name", "model_name", "image"}  # values that name files a user supplies
NAMES = ["iclight_fc_sd15", "relight_inpaint_photo", "relight_paste_scene_light"]


@pytest.fixture(scope="module")
def info(server_url: str) -> dict:
    return object_info(server_url)


def api_workflow(name: str) -> dict:
    return json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())


def run_bundled(server_url: str, name: str, prefix: str) -> tuple[np.ndarray, dict]:
    """Run a shipped workflow on its bundled inputs (2 steps); its image and the workflow."""
    workflow = api_workflow(name)
    for node in workflow.values():
        if node["class_type"] in ("LoadImage", "LoadImageMask"):
            file = node["inputs"]["image"]
            upload_image(server_url, ASSETS / file, file)
    sampler = next(n for n in workflow.values() if n["class_type"] == "RelightInpaintSampler")
    sampler["inputs"]["steps"] = 2
    saver_id = next(k for k, n in workflow.items() if n["class_type"] == "SaveImage")
    workflow[saver_id]["inputs"]["filename_prefix"] = f"relight_tests/{prefix}"
    submitted = with_shadow_saved(workflow, prefix)
    entry = run_prompt(server_url, submitted, timeout=300)
    result = saved_image(server_url, entry, saver_id)
    if "shadow_saver" in submitted:
        workflow["_shadow"] = saved_image(server_url, entry, "shadow_saver")[..., 0] / 255.0
    return result, workflow


def with_shadow_saved(workflow: dict, prefix: str) -> dict:
    """The workflow plus a save of Shadow Mask's MASK (ComfyUI's MaskToImage), to see exactly
    which pixels it let the sampler darken."""
    shadow_id = next((k for k, n in workflow.items() if n["class_type"] == "ShadowMask"), None)
    if shadow_id is None:
        return workflow
    return {
        **workflow,
        "shadow_image": {"class_type": "MaskToImage", "inputs": {"mask": [shadow_id, 0]}},
        "shadow_saver": {
            "class_type": "SaveImage",
            "inputs": {
                "images": ["shadow_image", 0],
                "filename_prefix": f"relight_tests/{prefix}_shadow",
            },
        },
    }


def saved_image(server_url: str, entry: dict, node_id: str) -> np.ndarray:
    one = {"outputs": {node_id: entry["outputs"][node_id]}}
    [png] = fetch_output_images(server_url, one)
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def assert_only_the_mask_changed(result: np.ndarray, workflow: dict) -> None:
    photo, mask = bundled_photo_and_mask(workflow)
    assert result.shape == photo.shape
    conditioning = next(n for n in workflow.values() if n["class_type"] == "MaskConditioning")
    final = (
        prepare_masked_image(
            torch.from_numpy(photo / 255.0)[None].float(),
            torch.from_numpy(mask)[None].float(),
            conditioning["inputs"]["grow"],
            conditioning["inputs"]["feather"],
        )
        .mask[0]
        .numpy()
    )
    shadow = workflow.get("_shadow", np.zeros_like(final))
    outside = (final == 0) & (shadow == 0)
    np.testing.assert_array_equal(result[outside], photo[outside])
    assert np.abs(result[final == 1].astype(int) - photo[final == 1]).mean() > 1
    shadows = [
        n for n in workflow.values() if isinstance(n, dict) and n["class_type"] == "ShadowMask"
    ]
    if shadows and "depth_map" not in shadows[0]["inputs"]:
        assert float(shadow.max()) == 0.0  # no depth map: nothing known for a shadow to fall on
    elif "_shadow" in workflow:  # relight paints the subject's new cast shadow
        falls = (shadow > 0.2) & (final == 0)  # its value: the light it takes away
        assert falls.sum() > 50
        assert result[falls].mean() < 0.8 * photo[falls].mean()


def test_workflow_a_relights_the_bundled_photo_and_keeps_the_rest_exact(server_url: str):
    result, workflow = run_bundled(server_url, "relight_inpaint_photo", "workflow_a")
    assert_only_the_mask_changed(result, workflow)


def test_workflow_c_lights_the_pasted_object_by_the_scene_and_keeps_the_rest_exact(
    server_url: str,
):
    result, workflow = run_bundled(server_url, "relight_paste_scene_light", "workflow_c")
    estimate = next(n for n in workflow.values() if n["class_type"] == "EstimateLight")
    assert estimate["inputs"]["region"] == "outside_mask" and "depth_map" in estimate["inputs"]
    sampler = next(n for n in workflow.values() if n["class_type"] == "RelightInpaintSampler")
    estimate_id = next(k for k, n in workflow.items() if n is estimate)
    assert sampler["inputs"]["light"] == [estimate_id, 0]
    assert_only_the_mask_changed(result, workflow)


@pytest.mark.parametrize("name", NAMES)
def test_api_workflow_nodes_and_inputs_match_object_info(info: dict, name: str):
    for node_id, node in api_workflow(name).items():
        assert node["class_type"] in info, f"node {node_id}: unknown {node['class_type']}"
        spec = info[node["class_type"]]["input"]
        known = {**spec.get("required", {}), **spec.get("optional", {})}
        missing = set(spec.get("required", {})) - set(node["inputs"])
        assert not missing, f"node {node_id} lacks required inputs {missing}"
        for input_name, value in node["inputs"].items():
            assert input_name in known, f"node {node_id}: no input {input_name!r}"
            kind, options = known[input_name][0], (known[input_name] + [{}])[1]
            choices = kind if isinstance(kind, list) else options.get("options")
            if choices is not None and input_name not in FILE_INPUTS:
                assert value in choices, f"node {node_id}.{input_name}: {value!r}"


@pytest.mark.parametrize("name", NAMES)
def test_ui_workflow_is_the_current_conversion_of_its_api_twin(info: dict, name: str):
    committed = json.loads((WORKFLOWS / ui_file_name(name)).read_text())
    converted = api_to_ui(api_workflow(name), with_stock_snapshot(info), TEMPLATES[name])
    assert committed == converted, (
        "workflows/ is stale: run .venv/bin/python -m host.build_workflows"
    )


@pytest.mark.parametrize("name", NAMES)
def test_template_opens_at_a_readable_zoom_with_every_node_in_view(name: str):
    """The saved view: at least VIEW_SCALE (node text 10 px or more on screen) and every node
    inside the 1600 x 1000 window less its margins (the browser test checks it on the page)."""
    workflow = json.loads((WORKFLOWS / ui_file_name(name)).read_text())
    view = workflow["extra"]["ds"]
    assert view["scale"] >= VIEW_SCALE
    left, top, right, bottom = VIEW_MARGINS
    for node in workflow["nodes"]:
        x0, y0 = (
            (node["pos"][i] - (TITLE_HEIGHT if i else 0) + view["offset"][i]) * view["scale"]
            for i in (0, 1)
        )
        x1, y1 = (
            (node["pos"][i] + node["size"][i] + view["offset"][i]) * view["scale"] for i in (0, 1)
        )
        assert x0 >= left - 0.5 and y0 >= top - 0.5, node["type"]
        assert x1 <= VIEW_WINDOW[0] - right + 0.5 and y1 <= VIEW_WINDOW[1] - bottom + 0.5, node[
            "type"
        ]


def test_stock_nodes_keep_the_widgets_the_workflows_were_made_with(info: dict):
    """The UI workflows are made on the CI host with its stock nodes (host/stock_nodes.json).
    Any host may change those nodes in ways that do not touch saved workflows (0.33 gives
    SaveImage an output); what would break them is a stock widget renamed or moved, since
    widget values are stored by position."""
    recorded = json.loads(STOCK_NODES.read_text())
    for class_type, entry in recorded.items():
        assert widget_names(info[class_type]) == widget_names(entry), class_type


def test_template_browser_lists_each_workflow_once(server_url: str):
    templates = requests.get(f"{server_url}/api/workflow_templates", timeout=10).json()
    titles = sorted(TEMPLATES[name].title for name in NAMES)
    assert sorted(templates["relight_inpaint"]) == titles


@pytest.mark.parametrize(
    "node",
    [
        "LoadRelightUNet",
        "LightDirectionEncode",
        "MaskConditioning",
        "RelightInpaintSampler",
        "EstimateNormals",
        "EstimateLight",
        "ShadowMask",
        "SelectByClicks",
    ],
)
def test_node_help_pages_are_served(server_url: str, node: str):
    response = requests.get(f"{server_url}/extensions/relight_inpaint/docs/{node}.md", timeout=10)
    assert response.status_code == 200
    assert response.text.startswith("# ")


# --- the previous release's saved workflows keep working ---------------------------------------

PREVIOUS = Path(__file__).resolve().parent / "previous_release"


def test_previous_release_api_workflow_runs(server_url: str):
    """Workflow (a) as the previous release shipped it (gradient-era inputs only)."""
    for name in ("relight_demo_photo.png", "relight_demo_mask.png"):
        upload_image(server_url, ASSETS / name, name)
    workflow = json.loads((PREVIOUS / "api" / "relight_inpaint_photo.json").read_text())
    saver = next(n for n in workflow.values() if n["class_type"] == "SaveImage")
    saver["inputs"]["filename_prefix"] = "relight_tests/previous_a"
    [png] = fetch_output_images(server_url, run_prompt(server_url, workflow, timeout=300))
    result = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    photo = np.asarray(Image.open(ASSETS / "relight_demo_photo.png").convert("RGB"))
    assert result.shape == photo.shape and np.abs(result.astype(int) - photo).max() > 10


@pytest.mark.parametrize("name", ["relight_inpaint_photo", "iclight_fc_sd15"])
def test_previous_release_ui_widgets_are_a_prefix_of_todays(info: dict, name: str):
    """New inputs go at the end: a saved UI workflow's widget values still line up."""
    old_ui = json.loads((PREVIOUS / f"{name}.json").read_text())
    old_api = json.loads((PREVIOUS / "api" / f"{name}.json").read_text())
    today = api_to_ui(old_api, with_stock_snapshot(info))
    by_id = {str(node["id"]): node for node in today["nodes"]}
    for node in old_ui["nodes"]:
        now = by_id[str(node["id"])]["widgets_values"]
        assert now[: len(node["widgets_values"])] == node["widgets_values"], node["type"]
        old_outputs = [o["type"] for o in node.get("outputs", [])]
        new_outputs = [o["type"] for o in by_id[str(node["id"])].get("outputs", [])]
        assert new_outputs[: len(old_outputs)] == old_outputs, node["type"]
