"""Numbers JSON cannot hold, in a prompt as it arrives: made into text in the pack's nodes, the
prompt refused where they are anywhere else.

Why: JSON has no NaN or Infinity, but ComfyUI's /prompt accepts them and stores the prompt in
its history as sent. Once a hostile or buggy client has queued one NaN, every browser's
/history fetch fails to parse ('Unexpected token N') until the server restarts. And an integer
too large for a float (400 digits) in a float widget ends ComfyUI's check in an OverflowError
traceback.

In the pack's own nodes, every such value, nested ones included (`"junk": [NaN, 1]`, `{"v":
NaN}`), becomes text ("nan (not a finite number)"): ComfyUI's own conversion then refuses it,
naming the input, and the stored prompt stays valid JSON. Anywhere else in the request (another
node's inputs, extra_data, number) the value is not the pack's to change: the prompt is replaced
by one ComfyUI refuses with a 400 whose details say where the value is. A node whose class_type
is not text is refused the same way (ComfyUI's check would fail on it with a traceback).

Uses the host's on-prompt hook; nothing of ComfyUI is patched. Walks the request without
recursion, so no nesting depth the JSON parser accepted can make it fail.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator

NOT_FINITE = "{} (not a finite number)"
TOO_LARGE = "an integer of about {} digits (too large for a number)"
REFUSED = "refused by Relight Inpaint's prompt guard: {}"


def guard_prompt(json_data: object, node_types: set[str]) -> object:
    """The request to hand on: the pack's nodes made strict, or a refusal (see the module)."""
    if not isinstance(json_data, dict):
        return json_data
    prompt = json_data.get("prompt")
    if isinstance(prompt, dict):
        for node_id, node in prompt.items():
            if not isinstance(node, dict):
                continue
            class_type = node.get("class_type")
            if "class_type" in node and not isinstance(class_type, str):
                shown = type(class_type).__name__
                return refusal(f"node {node_id}: class_type is a {shown}; expected a node name")
            if class_type in node_types and isinstance(node.get("inputs"), dict):
                make_strict(node["inputs"])
    for path, value in non_strict_values(json_data):
        return refusal(f"{path} is {describe(value)}; JSON numbers must be finite")
    return json_data


def make_strict(container: dict | list) -> None:
    """Every non-finite float or overlarge integer in `container`, at any depth, as text."""
    for parent, key, value in non_strict_places(container):
        parent[key] = describe(value)


def non_strict_values(data: object) -> Iterator[tuple[str, object]]:
    """(where, value) of every number JSON cannot hold, as 'prompt.5.inputs.cfg'."""
    stack: list[tuple[object, str]] = [(data, "")]
    while stack:
        value, path = stack.pop()
        if is_non_strict(value):
            yield path.lstrip(".") or "the body", value
        for key, child in children(value):
            stack.append((child, f"{path}.{str(key)[:40]}"))


def non_strict_places(data: dict | list) -> Iterator[tuple[dict | list, object, object]]:
    stack = [data]
    while stack:
        container = stack.pop()
        for key, value in children(container):
            if is_non_strict(value):
                yield container, key, value
            elif isinstance(value, dict | list):
                stack.append(value)


def children(value: object) -> Iterable[tuple[object, object]]:
    if isinstance(value, dict):
        return list(value.items())
    if isinstance(value, list):
        return list(enumerate(value))
    return ()


def is_non_strict(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    return isinstance(value, int) and not isinstance(value, bool) and not fits_a_float(value)


def fits_a_float(number: int) -> bool:
    try:
        float(number)
    except OverflowError:
        return False
    return True


def describe(value: object) -> str:
    if isinstance(value, float):
        return NOT_FINITE.format(value)
    return TOO_LARGE.format(int(value.bit_length() * math.log10(2)) + 1)  # str() may refuse


def refusal(reason: str) -> dict:
    """A request ComfyUI answers with a 400 naming `reason` (a node without a class_type, the
    reason its id), and nothing else of the original to stumble on."""
    return {"prompt": {REFUSED.format(reason): {"inputs": {}}}}


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
    server.add_on_prompt_handler(lambda json_data: guard_prompt(json_data, types))
    return True
