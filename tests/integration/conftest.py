"""One real ComfyUI server (with the pack) for the whole test session, and small test images."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from relight_testing.prompts import TEST_UPLOADS

from relight_inpaint.host.comfy_server import Server, start_server

PHOTO_SIZE = (64, 64)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "needs_pack_nodes: needs the pack's four nodes and model loaded in the server",
    )


@pytest.fixture(scope="session")
def comfy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    log_path = tmp_path_factory.mktemp("comfyui") / "server.log"
    with start_server(log_path=log_path) as server:
        yield server
    remove_test_files(server.base_dir)


def remove_test_files(base_dir: Path) -> None:
    """The tests' uploads and outputs: relight_tests/ in the host's input and output folders
    (LoadImage lists only the input folder's top level, so they never show there)."""
    shutil.rmtree(base_dir / "output" / "relight_tests", ignore_errors=True)
    shutil.rmtree(base_dir / "input" / TEST_UPLOADS, ignore_errors=True)
    for upload in (base_dir / "input").glob("relight_tests_*"):  # older runs' uploads
        upload.unlink(missing_ok=True)


@pytest.fixture(scope="session")
def server_url(comfy_server: Server) -> str:
    return comfy_server.url


@pytest.fixture
def photo_path(tmp_path: Path) -> Path:
    """A 64×64 photo with texture, so a changed pixel cannot hide in a flat area."""
    rng = np.random.default_rng(7)
    ramp = np.linspace(0, 200, PHOTO_SIZE[0], dtype=np.float32)
    pixels = ramp[None, :, None] + rng.integers(0, 55, (*PHOTO_SIZE[::-1], 3))
    path = tmp_path / "photo.png"
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(path)
    return path


@pytest.fixture
def mask_path(tmp_path: Path) -> Path:
    """White (repaint) square in the middle, black elsewhere."""
    mask = np.zeros(PHOTO_SIZE[::-1], dtype=np.uint8)
    mask[20:44, 16:40] = 255
    path = tmp_path / "mask.png"
    Image.fromarray(mask, "L").save(path)
    return path
