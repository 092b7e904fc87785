"""Import the pack in-process, beside a real ComfyUI, without a server.

The repo root is never put on sys.path: its `nodes/` package would shadow ComfyUI's top-level
`nodes` module. Instead the repo is registered as the package `relight_inpaint`, as ComfyUI
itself would import it from custom_nodes/. Used by the tests and the developer scripts.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACK_NAME = "relight_inpaint"
COMFY_ENV = "RELIGHT_COMFYUI"


def host_dirs() -> tuple[Path, Path, Path]:
    """(venv, ComfyUI folder, base directory) of the host in use; the rule of host/host_paths.sh."""
    other = os.environ.get(COMFY_ENV)
    if not other:
        return REPO / ".venv", REPO / ".venv" / "comfyui", REPO / ".host"
    comfy = Path(other).resolve()
    return REPO / f".venv-{comfy.name}", comfy, REPO / f".host-{comfy.name}"


VENV, COMFY, BASE_DIR = host_dirs()


def use_comfyui(cpu: bool | None = None) -> None:
    """Put ComfyUI on sys.path and pick its device before comfy.model_management is imported."""
    if not (COMFY / "main.py").is_file():
        raise RuntimeError(
            f"ComfyUI not found at {COMFY}: run host/setup.sh first (with the same {COMFY_ENV})"
        )
    if str(COMFY) not in sys.path:
        sys.path.insert(0, str(COMFY))
    from comfy.cli_args import args

    if cpu is None:
        import torch

        cpu = not torch.cuda.is_available()
    args.cpu = cpu


def import_pack(root: Path = REPO):
    """The pack at `root` (this repo by default; a benchmark may measure an earlier tree) as
    the package `relight_inpaint`, as ComfyUI imports it from custom_nodes/."""
    if PACK_NAME not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            PACK_NAME, root / "__init__.py", submodule_search_locations=[str(root)]
        )
        module = importlib.util.module_from_spec(spec)
        sys.modules[PACK_NAME] = module
        spec.loader.exec_module(module)
    return sys.modules[PACK_NAME]


def run_as_pack_module(subpackage: str) -> str:
    """For `python -P path/to/script.py`: make the script's relative imports work (PEP 366)."""
    use_comfyui()
    import_pack()
    return f"{PACK_NAME}.{subpackage}"
