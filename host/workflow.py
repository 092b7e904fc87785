"""Fill the API-format relight workflow from command-line or manifest options.

Options are named as on the command line without the dashes (`steps`, `sampler`, `light`, ...);
an option that is not given keeps the value stored in the workflow file.
"""

from __future__ import annotations

import copy
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_PATH = REPO / "workflows" / "api" / "relight_inpaint_photo.json"

LIGHT_PRESETS = ("left", "right", "top", "bottom", "front")
LIGHT_AUTO = "auto"  # the scene's light, fitted outside the mask (needs a scene map)
MODES = ("relight", "fill")
MAP_KEYS = ("normal_map", "depth_map")  # optional geometry of the whole image
FILE_KEYS = ("image", "mask", "out", *MAP_KEYS)
HEX_COLOR = re.compile(r"#?([0-9a-fA-F]{6})")


class OptionError(ValueError):
    """A bad option value; `option` is the option's name without dashes."""

    def __init__(self, option: str, reason: str) -> None:
        super().__init__(f"{option}: {reason}")
        self.option = option
        self.reason = reason


class ManifestError(ValueError):
    """A batch manifest line that cannot be used."""

    def __init__(self, line_number: int, reason: str) -> None:
        super().__init__(f"line {line_number}: {reason}")
        self.line_number = line_number
        self.reason = reason


@dataclass(frozen=True)
class Option:
    name: str
    kind: type
    class_type: str
    input_name: str


OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option("azimuth", float, "LightDirectionEncode", "azimuth"),
        Option("elevation", float, "LightDirectionEncode", "elevation"),
        Option("intensity", float, "LightDirectionEncode", "intensity"),
        Option("ambient", float, "LightDirectionEncode", "ambient"),
        Option("color", str, "LightDirectionEncode", "color"),
        Option("mode", str, "RelightInpaintSampler", "mode"),
        Option("steps", int, "RelightInpaintSampler", "steps"),
        Option("cfg", float, "RelightInpaintSampler", "cfg"),
        Option("sampler", str, "RelightInpaintSampler", "sampler_name"),
        Option("scheduler", str, "RelightInpaintSampler", "scheduler"),
        Option("seed", int, "RelightInpaintSampler", "seed"),
        Option("denoise", float, "RelightInpaintSampler", "denoise"),
        Option("grow", int, "MaskConditioning", "grow"),
        Option("feather", int, "MaskConditioning", "feather"),
        Option("model", str, "LoadRelightUNet", "model_name"),
        Option("context", float, "RelightInpaintSampler", "context"),
        Option("resolution", int, "RelightInpaintSampler", "resolution"),
    )
}
LIGHT_OPTION = "light"
SHADOW_OPTION = "cast_shadow"  # on: the workflow's Shadow Mask feeds the sampler; off: out
SHADOW_CHOICES = ("on", "off")
PRIORITY_KEY = "priority"  # batch order: higher first, manifest order among equals
MANIFEST_KEYS = frozenset(OPTIONS) | {LIGHT_OPTION, SHADOW_OPTION, PRIORITY_KEY, *FILE_KEYS}

Light = tuple[float, float, float] | str


def load_workflow(path: Path = WORKFLOW_PATH) -> dict:
    return json.loads(Path(path).read_text())


def find_node(workflow: dict, class_type: str) -> tuple[str, dict]:
    """The (id, node) of the only node of this class in the workflow."""
    matches = [
        (id_, node) for id_, node in workflow.items() if node.get("class_type") == class_type
    ]
    if len(matches) != 1:
        raise KeyError(f"workflow has {len(matches)} {class_type} nodes, expected 1")
    return matches[0]


def node_inputs(workflow: dict, class_type: str) -> dict:
    return find_node(workflow, class_type)[1]["inputs"]


def workflow_defaults(workflow: dict) -> dict[str, object]:
    """The value of every option as stored in the workflow."""
    return {
        name: node_inputs(workflow, option.class_type)[option.input_name]
        for name, option in OPTIONS.items()
    }


def parse_light(value: object) -> Light:
    """`light` as a preset name, "auto", "X,Y,Z" text or an [x, y, z] list."""
    if isinstance(value, str) and value.strip().lower() in (*LIGHT_PRESETS, LIGHT_AUTO):
        return value.strip().lower()
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, list | tuple) or len(parts) != 3:
        raise OptionError(
            LIGHT_OPTION,
            f"expected X,Y,Z, auto or one of {', '.join(LIGHT_PRESETS)} (got {value!r})",
        )
    vector = tuple(_to_number(LIGHT_OPTION, part) for part in parts)
    if not all(math.isfinite(component) for component in vector):
        raise OptionError(LIGHT_OPTION, f"components must be finite (got {value!r})")
    if not any(vector):
        raise OptionError(LIGHT_OPTION, "the direction vector must not be all zero")
    return vector


def _to_number(option: str, value: object) -> float:
    if isinstance(value, bool):
        raise OptionError(option, f"expected a number (got {value!r})")
    try:
        return float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise OptionError(option, f"expected a number (got {value!r})") from None


def coerce_option(name: str, value: object) -> object:
    """Check the type of a manifest value (JSON) and convert it to the option's type."""
    if name == LIGHT_OPTION:
        return parse_light(value)
    if name == SHADOW_OPTION:
        return value if isinstance(value, str) else ("on" if value is True else value)
    kind = OPTIONS[name].kind
    if kind is str:
        if not isinstance(value, str):
            raise OptionError(name, f"expected text (got {value!r})")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OptionError(name, f"expected a number (got {value!r})")
    if kind is int:
        if not float(value).is_integer():
            raise OptionError(name, f"expected a whole number (got {value!r})")
        return int(value)
    return float(value)


def validate_options(options: dict[str, object]) -> dict[str, object]:
    """Check ranges and normalise values; returns a new dict. Raises OptionError."""
    checked = dict(options)
    for name, value in options.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise OptionError(name, f"must be a finite number (got {value})")
    if LIGHT_OPTION in checked:
        if "azimuth" in checked or "elevation" in checked:
            raise OptionError(LIGHT_OPTION, "give either light or azimuth/elevation, not both")
        checked[LIGHT_OPTION] = parse_light(checked[LIGHT_OPTION])
    _check_range(checked, "elevation", -90.0, 90.0)
    _check_range(checked, "denoise", 0.0, 1.0)
    _check_range(checked, "steps", 1, None)
    _check_range(checked, "seed", 0, 2**64 - 1)
    _check_range(checked, "intensity", 0.0, None)
    _check_range(checked, "ambient", 0.0, None)
    _check_range(checked, "cfg", 0.0, None)
    _check_range(checked, "feather", 0, None)
    _check_range(checked, "context", 0.0, 8.0)
    _check_range(checked, "resolution", 0, 4096)
    if SHADOW_OPTION in checked and checked[SHADOW_OPTION] not in SHADOW_CHOICES:
        raise OptionError(SHADOW_OPTION, f"must be on or off (got {checked[SHADOW_OPTION]!r})")
    if "mode" in checked and checked["mode"] not in MODES:
        raise OptionError("mode", f"must be one of {', '.join(MODES)} (got {checked['mode']!r})")
    if "color" in checked:
        checked["color"] = normalise_color(str(checked["color"]))
    return checked


def _check_range(
    options: dict[str, object], name: str, low: float | None, high: float | None
) -> None:
    if name not in options:
        return
    value = options[name]
    if low is not None and high is not None and not low <= value <= high:
        raise OptionError(name, f"must be between {low:g} and {high:g} (got {value:g})")
    if low is not None and value < low:
        raise OptionError(name, f"must be at least {low:g} (got {value:g})")
    if high is not None and value > high:
        raise OptionError(name, f"must be at most {high:g} (got {value:g})")


def normalise_color(text: str) -> str:
    match = HEX_COLOR.fullmatch(text.strip())
    if match is None:
        raise OptionError("color", f"expected a hex colour like #ffcc88 (got {text!r})")
    return f"#{match.group(1).lower()}"


def apply_options(workflow: dict, options: dict[str, object]) -> dict:
    """A copy of the workflow with the given options set; options not given keep their value."""
    options = validate_options(options)
    filled = copy.deepcopy(workflow)
    for name, value in options.items():
        if name in OPTIONS:
            option = OPTIONS[name]
            node_inputs(filled, option.class_type)[option.input_name] = value
    _set_shadow(filled, options.get(SHADOW_OPTION, "on"))
    light_inputs = node_inputs(filled, "LightDirectionEncode")
    if "azimuth" in options or "elevation" in options:
        light_inputs["direction_from"] = "angles"
    if LIGHT_OPTION in options:
        _set_light(light_inputs, options[LIGHT_OPTION])
    return filled


def _set_shadow(workflow: dict, shadow: str) -> None:
    """Shadow Mask follows the sampler's mode; `off` takes it (and its preview) out."""
    shadows = [k for k, v in workflow.items() if v.get("class_type") == "ShadowMask"]
    sampler = node_inputs(workflow, "RelightInpaintSampler")
    for node_id in shadows:
        if shadow == "on":
            workflow[node_id]["inputs"]["mode"] = sampler["mode"]
            continue
        del workflow[node_id]
        sampler.pop("cast_shadow", None)
        for other in [k for k, v in workflow.items() if _uses(v, node_id)]:
            del workflow[other]  # its preview


def _uses(node: dict, node_id: str) -> bool:
    return any(isinstance(v, list) and v[:1] == [node_id] for v in node["inputs"].values())


def _set_light(light_inputs: dict, light: Light) -> None:
    if light == LIGHT_AUTO:
        return  # set_input_maps wires Estimate Light in place of this node
    if isinstance(light, str):
        light_inputs["direction_from"] = light
        return
    light_inputs["direction_from"] = "vector"
    light_inputs["x"], light_inputs["y"], light_inputs["z"] = light


def set_input_images(workflow: dict, image_name: str, mask_name: str) -> dict:
    """A copy of the workflow that loads these uploaded files.

    The shipped workflows take the mask from the photo's LoadImage (its MASK output, what the
    MaskEditor paints) and Select by Clicks (whose clicks are the bundled photo's: cleared);
    the command line's separate mask file gets its own LoadImageMask.
    """
    filled = copy.deepcopy(workflow)
    _, conditioning = find_node(filled, "MaskConditioning")
    photo_id = conditioning["inputs"]["image"][0]
    filled[photo_id]["inputs"]["image"] = image_name
    for node in filled.values():  # the template's clicks were made on its own photo
        if node.get("class_type") == "SelectByClicks":
            node["inputs"]["points"] = ""
    mask_source = conditioning["inputs"]["mask"][0]
    if filled[mask_source]["class_type"] == "LoadImageMask":
        filled[mask_source]["inputs"]["image"] = mask_name
        return filled
    mask_id = _next_id(filled)
    filled[mask_id] = {
        "class_type": "LoadImageMask",
        "_meta": {"title": "Mask (white = repaint)"},
        "inputs": {"image": mask_name, "channel": "red"},
    }
    conditioning["inputs"]["mask"] = [mask_id, 0]
    return filled


def set_input_maps(workflow: dict, maps: dict[str, str], estimate_light: bool = False) -> dict:
    """A copy of the workflow with the uploaded normal / depth maps of the whole image loaded
    into the sampler, and with `estimate_light` the scene's light (Estimate Light outside the
    mask, on the same maps) in place of Light Direction Encode's."""
    unknown = sorted(set(maps) - set(MAP_KEYS))
    if unknown:
        raise OptionError(unknown[0], f"unknown map, expected one of {', '.join(MAP_KEYS)}")
    if estimate_light and not maps:
        raise OptionError(
            LIGHT_OPTION,
            "auto fits the scene's light to its shape outside the mask: give a normal_map or "
            "depth_map of the whole image (from any estimator) with it",
        )
    filled = copy.deepcopy(workflow)
    sampler_id, sampler = find_node(filled, "RelightInpaintSampler")
    photo_id = node_inputs(filled, "MaskConditioning")["image"][0]
    loaded = {}
    for key, name in maps.items():
        node_id = _next_id(filled)
        filled[node_id] = {
            "class_type": "LoadImage",
            "_meta": {"title": key.replace("_", " ")},
            "inputs": {"image": name},
        }
        loaded[key] = [node_id, 0]
        sampler["inputs"][key] = loaded[key]
    if estimate_light:
        mask_cond_id, _ = find_node(filled, "MaskConditioning")
        estimate_id = _next_id(filled)
        filled[estimate_id] = {
            "class_type": "EstimateLight",
            "_meta": {"title": "Scene light"},
            "inputs": {
                "image": [photo_id, 0],
                "mask": [mask_cond_id, 1],
                "region": "outside_mask",
                **loaded,
            },
        }
        sampler["inputs"]["light"] = [estimate_id, 0]
    for node in filled.values():  # Shadow Mask: the same geometry and the scene's light
        if node.get("class_type") == "ShadowMask":
            if "depth_map" in loaded:
                node["inputs"]["depth_map"] = loaded["depth_map"]
            if estimate_light:
                node["inputs"]["light"] = node["inputs"]["scene_light"] = [estimate_id, 0]
    filled[sampler_id] = sampler
    return filled


def _next_id(workflow: dict) -> str:
    return str(max(int(k) for k in workflow if k.isdigit()) + 1)


def build_prompt(
    options: dict[str, object],
    image_name: str,
    mask_name: str,
    workflow: dict | None = None,
    maps: dict[str, str] | None = None,
) -> dict:
    workflow = load_workflow() if workflow is None else workflow
    prompt = set_input_images(apply_options(workflow, options), image_name, mask_name)
    auto = options.get(LIGHT_OPTION) == LIGHT_AUTO
    if maps or auto:
        prompt = set_input_maps(prompt, maps or {}, estimate_light=auto)
    return prompt


@dataclass
class BatchItem:
    line_number: int
    image: Path
    mask: Path
    out: Path | None
    options: dict[str, object] = field(default_factory=dict)
    maps: dict[str, Path] = field(default_factory=dict)  # normal_map / depth_map files
    priority: float = 0.0  # higher runs first


def manifest_object(line: str, line_number: int) -> dict | None:
    """A manifest line's JSON object; None for a blank or `#` comment line. Raises
    ManifestError naming the line."""
    text = line.strip()
    if not text or text.startswith("#"):
        return None
    try:
        entry = json.loads(text)
    except json.JSONDecodeError as error:
        raise ManifestError(line_number, f"not valid JSON ({error.msg})") from None
    if not isinstance(entry, dict):
        raise ManifestError(line_number, "expected a JSON object")
    return entry


def parse_manifest_line(line: str, line_number: int, manifest_dir: Path) -> BatchItem | None:
    """One JSONL manifest line; None for a blank or `#` comment line. Raises ManifestError.

    `image` and `mask` are relative to the manifest's folder; `out` is kept as written (the
    caller places a relative one under the output folder).
    """
    entry = manifest_object(line, line_number)
    if entry is None:
        return None
    try:
        return _batch_item(entry, line_number, manifest_dir)
    except OptionError as error:
        raise ManifestError(line_number, str(error)) from None


def _batch_item(entry: dict, line_number: int, manifest_dir: Path) -> BatchItem:
    unknown = sorted(set(entry) - MANIFEST_KEYS)
    if unknown:
        raise OptionError(unknown[0], "unknown key")
    for key in ("image", "mask"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise OptionError(key, "required, a file path")
    for key in ("out", *MAP_KEYS):
        if key in entry and (not isinstance(entry[key], str) or not entry[key]):
            raise OptionError(key, "expected a file path")
    options = {
        name: coerce_option(name, value)
        for name, value in entry.items()
        if name not in (*FILE_KEYS, PRIORITY_KEY)
    }
    return BatchItem(
        line_number=line_number,
        image=manifest_dir / Path(entry["image"]).expanduser(),
        mask=manifest_dir / Path(entry["mask"]).expanduser(),
        out=Path(entry["out"]).expanduser() if "out" in entry else None,
        options=validate_options(options),
        maps={
            key: manifest_dir / Path(entry[key]).expanduser() for key in MAP_KEYS if key in entry
        },
        priority=priority_value(entry.get(PRIORITY_KEY, 0)),
    )


def priority_value(value: object) -> float:
    """A line's priority: a finite number (a bool, text or a 400-digit integer is refused)."""
    try:
        number = float(value) if isinstance(value, int | float) else math.nan
    except OverflowError:  # an integer too large for a float
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        shown = repr(value) if len(repr(value)) < 40 else f"{repr(value)[:37]}..."
        raise OptionError(PRIORITY_KEY, f"expected a number, higher runs first (got {shown})")
    return number
