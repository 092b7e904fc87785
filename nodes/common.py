"""What the pack's nodes share: category, custom socket types, the relight models folder."""

from __future__ import annotations

import os
from pathlib import Path

import folder_paths
from comfy_api.v0_0_2 import io

CATEGORY = "Relight Inpaint"
MODELS_FOLDER = "relight"
PACK_MODELS_DIR = Path(__file__).resolve().parents[1] / "models"

Light = io.Custom("LIGHT")
MaskCond = io.Custom("RELIGHT_MASK")


def register_models_folder() -> None:
    """`relight` models folder: the pack's bundled models plus <ComfyUI models>/relight."""
    folder_paths.add_model_folder_path(MODELS_FOLDER, str(PACK_MODELS_DIR))
    folder_paths.add_model_folder_path(
        MODELS_FOLDER, os.path.join(folder_paths.models_dir, MODELS_FOLDER)
    )
    # A new folder name starts with an empty extension set, which would list every file.
    folder_paths.folder_names_and_paths[MODELS_FOLDER][1].update({".safetensors"})


def model_file_names() -> list[str]:
    names = folder_paths.get_filename_list(MODELS_FOLDER)
    extra = [
        n for n in folder_paths.get_filename_list("diffusion_models") if n.endswith(".safetensors")
    ]
    return names + [n for n in extra if n not in names]


def model_file_path(name: str) -> str:
    for folder in (MODELS_FOLDER, "diffusion_models"):
        path = folder_paths.get_full_path(folder, name)
        if path is not None:
            return path
    raise ValueError(f"model_name: {name!r} is not in the relight or diffusion_models folders")


def say_on_node(node_class, warnings: list[str]) -> None:
    """Warnings the log already has, shown on the node too where the host can (its progress
    text under the node: ComfyUI 0.3.6x and newer; nothing where it cannot). No warnings clears
    what an earlier run left there."""
    hidden = getattr(node_class, "hidden", None)
    node_id = getattr(hidden, "unique_id", None)
    if node_id is None:
        return
    try:
        from server import PromptServer
    except ImportError:
        return
    server = getattr(PromptServer, "instance", None)
    if server is not None and hasattr(server, "send_progress_text"):
        server.send_progress_text("\n".join(warnings), node_id)


register_models_folder()  # before any schema lists the folder's files
