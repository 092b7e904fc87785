"""Test set-up: a real ComfyUI on sys.path (CPU), and the repo imported as package `relight_inpaint`.

The repo root itself is never put on sys.path: its `nodes/` package would shadow ComfyUI's
top-level `nodes` module.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMFY = REPO / ".venv" / "comfyui"
PACK_NAME = "relight_inpaint"


def _put_comfyui_on_path() -> None:
    if not (COMFY / "main.py").is_file():
        raise RuntimeError(f"ComfyUI not found at {COMFY}: run host/setup.sh (./relight test does)")
    if str(COMFY) not in sys.path:
        sys.path.insert(0, str(COMFY))
    from comfy.cli_args import args

    args.cpu = True


def _import_pack() -> None:
    if PACK_NAME in sys.modules:
        return
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, REPO / "__init__.py", submodule_search_locations=[str(REPO)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)


_put_comfyui_on_path()
_import_pack()
