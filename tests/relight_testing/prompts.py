"""Prompts the integration tests queue: the pack's photo workflow on uploaded test files."""

from __future__ import annotations

from pathlib import Path

from relight_inpaint.host.comfy_server import upload_image
from relight_inpaint.host.workflow import build_prompt, node_inputs

TEST_UPLOADS = "relight_tests"  # input subfolder (conftest removes it): not in LoadImage's list
TEST_OUTPUT_PREFIX = "relight_tests/out"
PACK_NODES = (
    "LoadRelightUNet",
    "LightDirectionEncode",
    "MaskConditioning",
    "RelightInpaintSampler",
)


def relight_prompt(url: str, photo: Path, mask: Path, **options: object) -> dict:
    """The photo workflow on uploaded test files; mask used as is (grow 0, feather 0)."""
    image_name = upload_image(url, photo, "photo.png", TEST_UPLOADS)
    mask_name = upload_image(url, mask, "mask.png", TEST_UPLOADS)
    prompt = build_prompt({"grow": 0, "feather": 0, "steps": 2, **options}, image_name, mask_name)
    node_inputs(prompt, "SaveImage")["filename_prefix"] = TEST_OUTPUT_PREFIX
    return prompt
