"""The real ComfyUI host with the pack: HTTP API, the relight workflow, the CLI, interrupting.

Tests marked `needs_pack_nodes` need the pack's nodes and model in the server; the others use
stock ComfyUI nodes only.
"""

from __future__ import annotations

import io
import json
import random
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image
from relight_testing.cli_runs import cli_files, run_cli
from relight_testing.prompts import PACK_NODES, TEST_OUTPUT_PREFIX, TEST_UPLOADS, relight_prompt

from relight_inpaint.host import comfy_server as comfy_server_module
from relight_inpaint.host.comfy_server import (
    PromptError,
    PromptInterrupted,
    Server,
    fetch_output_images,
    interrupt,
    object_info,
    queue_prompt,
    run_prompt,
    upload_image,
    wait_for_prompt,
)
from relight_inpaint.host.workflow import load_workflow, node_inputs

# A hang guard, not a speed figure (the machine is shared): an interrupt that works ends the
# prompt within seconds; one that does not leaves it running for minutes.
INTERRUPT_HANG_GUARD_S = 60.0

needs_pack_nodes = pytest.mark.needs_pack_nodes


# --- helpers --------------------------------------------------------------------------------


def stock_prompt(image_name: str) -> dict:
    return {
        "1": {"class_type": "LoadImage", "inputs": {"image": image_name}},
        "2": {
            "class_type": "SaveImage",
            "inputs": {"images": ["1", 0], "filename_prefix": TEST_OUTPUT_PREFIX},
        },
    }


def slow_stock_prompt(resizes: int = 24, size: int = 1024) -> dict:
    """Lanczos resizes (PIL, on the CPU on any machine): a few seconds in all.

    A random colour keeps ComfyUI from answering from its output cache.
    """
    color = random.randrange(1, 0xFFFFFF)
    prompt = {
        "0": {
            "class_type": "EmptyImage",
            "inputs": {"width": size, "height": size, "batch_size": 1, "color": color},
        }
    }
    for index in range(1, resizes + 1):
        prompt[str(index)] = {
            "class_type": "ImageScaleBy",
            "inputs": {
                "image": [str(index - 1), 0],
                "upscale_method": "lanczos",
                "scale_by": 2.0 if index % 2 else 0.5,
            },
        }
    prompt["out"] = {"class_type": "PreviewImage", "inputs": {"images": [str(resizes), 0]}}
    return prompt


def wait_until_running(url: str, prompt_id: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = requests.get(f"{url}/queue", timeout=10).json()["queue_running"]
        if any(item[1] == prompt_id for item in running):
            return
        time.sleep(0.05)
    raise AssertionError(f"prompt {prompt_id} did not start within {timeout} s")


def decode_png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def input_names(node_info: dict) -> set[str]:
    inputs = node_info["input"]
    return set(inputs.get("required", {})) | set(inputs.get("optional", {}))


def combo_options(node_info: dict, input_name: str) -> list[str]:
    """A combo's choices, from the V1 ([choices], {...}) or V3 ("COMBO", {options}) form."""
    spec = {**node_info["input"].get("optional", {}), **node_info["input"]["required"]}
    kind, *rest = spec[input_name]
    return list(kind) if isinstance(kind, list) else list(rest[0]["options"])


# --- server and stock nodes -----------------------------------------------------------------


def test_server_answers_and_reports_its_memory(comfy_server: Server) -> None:
    stats = requests.get(f"{comfy_server.url}/system_stats", timeout=10).json()
    assert stats["system"]["comfyui_version"]
    assert comfy_server.peak_rss_bytes() > 50 * 2**20


def test_object_info_lists_stock_nodes(server_url: str) -> None:
    info = object_info(server_url)
    assert {"LoadImage", "LoadImageMask", "SaveImage"} <= set(info)


def test_upload_then_view_returns_the_same_file(server_url: str, photo_path: Path) -> None:
    name = upload_image(server_url, photo_path, "upload.png", TEST_UPLOADS)
    subfolder, filename = name.split("/")
    response = requests.get(
        f"{server_url}/view",
        params={"filename": filename, "subfolder": subfolder, "type": "input"},
        timeout=10,
    )
    assert response.content == photo_path.read_bytes()


def test_stock_graph_round_trip_keeps_the_pixels(server_url: str, photo_path: Path) -> None:
    name = upload_image(server_url, photo_path, "stock.png", TEST_UPLOADS)
    entry = run_prompt(server_url, stock_prompt(name), timeout=120)
    [output] = fetch_output_images(server_url, entry)
    np.testing.assert_array_equal(decode_png(output), decode_png(photo_path.read_bytes()))


def test_invalid_prompt_error_names_node_and_input(server_url: str) -> None:
    prompt = {
        "1": {
            "class_type": "EmptyImage",
            "inputs": {"width": -5, "height": 8, "batch_size": 1, "color": 0},
        },
        "2": {"class_type": "PreviewImage", "inputs": {"images": ["1", 0]}},
    }
    with pytest.raises(PromptError, match=r"node 1 \(EmptyImage\), input 'width'"):
        queue_prompt(server_url, prompt)


def test_interrupt_stops_a_running_stock_prompt(server_url: str, photo_path: Path) -> None:
    client_id = comfy_server_module.new_id()
    prompt_id = queue_prompt(server_url, slow_stock_prompt(), client_id)
    wait_until_running(server_url, prompt_id)
    time.sleep(0.2)  # ComfyUI clears the interrupt flag as a prompt starts
    interrupt(server_url, prompt_id)
    interrupted_at = time.monotonic()
    with pytest.raises(PromptInterrupted):
        wait_for_prompt(server_url, prompt_id, client_id, timeout=120)
    assert time.monotonic() - interrupted_at < INTERRUPT_HANG_GUARD_S

    name = upload_image(server_url, photo_path, "after_interrupt.png", TEST_UPLOADS)
    assert fetch_output_images(server_url, run_prompt(server_url, stock_prompt(name), timeout=60))


# --- the pack's nodes -----------------------------------------------------------------------


@needs_pack_nodes
@pytest.mark.parametrize("class_type", PACK_NODES)
def test_object_info_lists_pack_node_with_workflow_inputs(server_url: str, class_type: str) -> None:
    info = object_info(server_url)
    assert class_type in info, f"{class_type} not loaded; see the server log"
    expected = set(node_inputs(load_workflow(), class_type))
    assert expected <= input_names(info[class_type])


@needs_pack_nodes
def test_object_info_pack_choices(server_url: str) -> None:
    info = object_info(server_url)
    assert {"relight", "fill"} <= set(combo_options(info["RelightInpaintSampler"], "mode"))
    directions = set(combo_options(info["LightDirectionEncode"], "direction_from"))
    assert {"angles", "vector", "left", "right", "top", "bottom", "front"} <= directions


@needs_pack_nodes
@pytest.mark.parametrize("mode", ["relight", "fill"])
def test_relight_workflow_keeps_pixels_outside_the_mask(
    server_url: str, photo_path: Path, mask_path: Path, mode: str
) -> None:
    # the cast shadow is off here: its pixels are checked with the shipped workflows
    prompt = relight_prompt(
        server_url, photo_path, mask_path, mode=mode, seed=11, cast_shadow="off"
    )
    entry = run_prompt(server_url, prompt, timeout=300)
    [output] = fetch_output_images(server_url, entry)

    result, photo = decode_png(output), decode_png(photo_path.read_bytes())
    assert result.shape == photo.shape
    outside = np.asarray(Image.open(mask_path)) == 0
    np.testing.assert_array_equal(result[outside], photo[outside])


@needs_pack_nodes
def test_interrupt_stops_a_long_relight(server_url: str, photo_path: Path, mask_path: Path) -> None:
    prompt = relight_prompt(server_url, photo_path, mask_path, steps=2000, seed=12)
    client_id = comfy_server_module.new_id()
    prompt_id = queue_prompt(server_url, prompt, client_id)
    interrupted_at: list[float] = []

    def interrupt_on_first_step(value: int, total: int) -> None:
        if not interrupted_at:
            interrupt(server_url, prompt_id)
            interrupted_at.append(time.monotonic())

    with pytest.raises(PromptInterrupted):
        wait_for_prompt(server_url, prompt_id, client_id, interrupt_on_first_step, timeout=300)
    assert interrupted_at, "no progress message came before the prompt ended"
    assert time.monotonic() - interrupted_at[0] < INTERRUPT_HANG_GUARD_S

    short = relight_prompt(server_url, photo_path, mask_path, steps=1, seed=13)
    assert fetch_output_images(server_url, run_prompt(server_url, short, timeout=120))


@needs_pack_nodes
def test_cli_run_end_to_end(
    comfy_server, server_url: str, photo_path: Path, mask_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "nested" / "result.png"
    inputs = comfy_server.base_dir / "input"
    listed_before = set(inputs.glob("relight-*"))
    cli_files_before = cli_files(comfy_server.base_dir)
    args = ["--image", str(photo_path), "--mask", str(mask_path), "--out", str(out)]
    result = run_cli("run", *args, "--steps", "2", "--light", "1,0,0.5", "--server", server_url)

    assert result.returncode == 0, result.stderr
    assert Image.open(out).size == Image.open(photo_path).size
    assert not list(out.parent.glob(".*.part"))
    # its inputs went to a subfolder, out of LoadImage's list (the top level only)
    assert set(inputs.glob("relight-*")) == listed_before
    # and were removed from the server with the saved output, once the output was fetched
    assert cli_files(comfy_server.base_dir) == cli_files_before


@needs_pack_nodes
def test_cli_run_reports_a_node_error(
    server_url: str, photo_path: Path, mask_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "result.png"
    args = ["--image", str(photo_path), "--mask", str(mask_path), "--out", str(out)]
    result = run_cli("run", *args, "--model", "no_such_model.safetensors", "--server", server_url)

    assert result.returncode == 1
    assert "LoadRelightUNet" in result.stderr and "model_name" in result.stderr
    assert "Traceback" not in result.stderr
    assert not out.exists()


@needs_pack_nodes
def test_cli_batch_writes_good_items_and_reports_bad_ones(
    server_url: str, photo_path: Path, mask_path: Path, tmp_path: Path
) -> None:
    manifest = tmp_path / "batch.jsonl"
    good = {"image": photo_path.name, "mask": mask_path.name, "steps": 2, "light": [0, 1, 1]}
    missing = {"image": "missing.png", "mask": mask_path.name, "steps": 2}
    manifest.write_text(f"# two items\n{json.dumps(good)}\n\n{json.dumps(missing)}\n")
    out_dir = tmp_path / "out"

    result = run_cli("batch", str(manifest), "--out-dir", str(out_dir), "--server", server_url)

    assert result.returncode == 1
    assert Image.open(out_dir / "photo.png").size == Image.open(photo_path).size
    assert "line 4" in result.stderr and "no such file" in result.stderr
    assert "Traceback" not in result.stderr


@needs_pack_nodes
def test_a_missing_model_is_a_prompt_error_when_queued(
    server_url: str, photo_path: Path, mask_path: Path
) -> None:
    """Refused by ComfyUI's prompt validation (LoadRelightUNet.validate_inputs): nothing of the
    graph runs, so the light preview branch cannot make the job look successful."""
    prompt = relight_prompt(server_url, photo_path, mask_path, model="no_such_model.safetensors")
    with pytest.raises(PromptError, match="model_name") as raised:
        queue_prompt(server_url, prompt)
    assert "no_such_model.safetensors" in str(raised.value)


def test_test_uploads_stay_out_of_load_images_list(server_url: str, photo_path: Path) -> None:
    name = upload_image(server_url, photo_path, "listed.png", TEST_UPLOADS)
    assert name == f"{TEST_UPLOADS}/listed.png"
    choices = object_info(server_url)["LoadImage"]["input"]["required"]["image"][0]
    assert not [c for c in choices if "listed" in c or c.startswith("relight_tests")]
