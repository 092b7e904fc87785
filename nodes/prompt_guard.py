"""Non-finite numbers in the pack's node inputs, made into text as a prompt arrives.

Why: JSON has no NaN or Infinity, but ComfyUI's /prompt accepts them and stores the prompt in
its history as sent. Once a hostile or buggy client has queued one NaN, every browser's
/history fetch fails to parse ('Unexpected token N') until the server restarts. Turned into text
("nan (not a finite number)"), the value is refused by ComfyUI's own conversion, naming the
input, and the stored prompt stays valid JSON. Uses the host's on-prompt hook; nothing of
ComfyUI is patched. Only the pack's own nodes are touched.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

NOT_FINITE = "{} (not a finite number)"


def text_for_non_finite(json_data: dict, node_types: set[str]) -> dict:
    prompt = json_data.get("prompt") if isinstance(json_data, dict) else None
    if not isinstance(prompt, dict):
        return json_data
    for node in prompt.values():
        if not isinstance(node, dict) or node.get("class_type") not in node_types:
            continue
        inputs = node.get("inputs")
        if not isinstance(inputs, dict):
            continue
        for name, value in inputs.items():
            if isinstance(value, float) and not math.isfinite(value):
                inputs[name] = NOT_FINITE.format(value)
    return json_data


def register_prompt_guard(node_types: Iterable[str]) -> bool:
    """Hook into the running server, where there is one (not in plain tests)."""
    try:
        from server import PromptServer
    except ImportError:
        return False
    server = getattr(PromptServer, "instance", None)
    if server is None or not hasattr(server, "add_on_prompt_handler"):
        return False
    types = set(node_types)
    server.add_on_prompt_handler(lambda json_data: text_for_non_finite(json_data, types))
    return True
