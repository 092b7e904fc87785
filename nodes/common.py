"""What the pack's nodes share: category, custom socket types, the relight models folder."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
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


def widget_problem(node_class, values: Mapping[str, object]) -> str | None:
    """What is wrong with the first widget value in `values` (None: all fine), by the node's
    own schema. ComfyUI 0.3.75 lets two kinds through at queue time: a dropdown value that is
    not among its options (V3 combos are typed "COMBO", and that host checks only list-typed
    ones; the sampler then swaps in euler) and a NaN or infinite float (it passes min/max). Its
    own min/max check is off for every input named in a node's validate_inputs, so that is done
    here too. None as a value means linked: checked again when the node runs."""
    types = node_class.INPUT_TYPES()
    specs = {**types.get("required", {}), **types.get("optional", {})}
    for name, value in values.items():
        if name not in specs or value is None:
            continue
        kind, options = specs[name][0], (tuple(specs[name]) + ({},))[1]
        if kind == "COMBO" or isinstance(kind, list):
            choices = kind if isinstance(kind, list) else options.get("options", [])
            if not isinstance(value, str | int | float) or value not in choices:
                return f"{name}: {value!r} is not one of {', '.join(map(str, choices))}"
        elif kind in ("FLOAT", "INT"):
            problem = number_problem(name, value, options)
            if problem:
                return problem
    return None


def number_problem(name: str, value: object, options: Mapping[str, object]) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{name}: expected a number, got {value!r}"
    if not math.isfinite(value):
        return f"{name}: expected a finite number, got {value}"
    low, high = options.get("min"), options.get("max")
    if (low is not None and value < low) or (high is not None and value > high):
        return f"{name}: {value} is outside {low}..{high}"
    return None


def arguments(local_names: dict) -> dict:
    """A node method's arguments from its locals(), for the two checks below."""
    return {name: value for name, value in local_names.items() if name != "cls"}


def check_widgets(node_class, **values: object) -> bool | str:
    """For a node's validate_inputs: True, or the message ComfyUI shows as the prompt error."""
    return widget_problem(node_class, values) or True


def refuse_bad_widgets(node_class, **values: object) -> None:
    """For a node's execute: the same check on values that arrived through links."""
    problem = widget_problem(node_class, values)
    if problem:
        raise ValueError(problem)


def running_server():
    """(aiohttp's web module, the running PromptServer) where a server runs; None in plain
    tests and scripts, where no route can be added."""
    try:
        from aiohttp import web
        from server import PromptServer
    except ImportError:
        return None
    server = getattr(PromptServer, "instance", None)
    return None if server is None else (web, server)


def json_body(raw: bytes, limit: int) -> object:
    """A route's request body (read up to `limit` + 1 bytes) as UTF-8 JSON (RFC 8259: a charset
    in the header is not consulted); ValueError saying what is wrong with it. Nesting too deep
    for the parser is 'not JSON' too, never a traceback."""
    if len(raw) > limit:
        raise ValueError(f"the body is over {limit} bytes")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ValueError("the body is not JSON (UTF-8)") from None


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
