"""Turn an API-format workflow into the UI format ComfyUI's editor and template browser load.

The API files in workflows/api/ are the source of truth (the CLI, tests and benchmark run
them); the UI files in workflows/ are generated from them with a live /object_info, so widget
order and socket types are ComfyUI's own: `python -m host.cli workflows`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO", "COLOR"}  # COLOR: newer hosts
# Compact enough that each template opens whole at VIEW_SCALE in a 1600 x 1000 window (the
# first layout was 2030 x 1268 units: fitted at 59 %, node text 7 px on screen).
NODE_WIDTH = 250
COLUMN_GAP = 20
# Newer frontends (1.49, ComfyUI 0.33) draw Load Image about 330 px wide whatever its saved size:
# its column is made wider so it cannot reach into the next one.
NODE_WIDTHS = {"LoadImage": 330}
TITLE_HEIGHT = 30
ROW_GAP = TITLE_HEIGHT + 10  # the next node's title bar is drawn above its position, in the gap
ROW_HEIGHT = 24  # a socket or widget row, as the frontend draws them
# Room for what a node shows below its widgets: LoadImage's photo, a preview's image, the light
# widget's sphere, Select by Clicks' canvas.
EXTRA_HEIGHT = {
    "LoadImage": 300,
    "PreviewImage": 110,
    "SaveImage": 300,
    "LightDirectionEncode": 240,
    "SelectByClicks": 300,
    "CLIPTextEncode": 60,  # its prompt box
}
PREVIEW_TYPES = {"PreviewImage"}  # placed under the node they show (see anchors)
NOTE_CHARS_PER_LINE = 34
NOTE_LINE_HEIGHT = 20
# The view a template opens with (the frontend restores a saved one, and fits the graph to the
# window when there is none): the whole graph in a 1600 x 1000 window, clear of the side bar and
# the menu, at no less than VIEW_SCALE, where node text (12-14 px) is 10 px or more on screen.
VIEW_WINDOW = (1600, 1000)
# left, top, right, bottom (px): the side bar; the tab bar, the announcement banner and the
# floating Run bar over the canvas's top (they hid Save's title at first)
VIEW_MARGINS = (80, 130, 20, 20)
VIEW_SCALE = 0.84


@dataclass(frozen=True)
class Template:
    """How an API workflow appears in the template browser. ComfyUI's frontend of this host
    takes a custom template's title and description from its file name, so the name is the
    title; `notes` are Note nodes put above the node whose id they name."""

    api_name: str
    title: str
    notes: tuple[tuple[str, str], ...] = ()


MASK_NOTE = (
    "Paint the region to change: right-click the photo > Open in MaskEditor, paint, Save. "
    "Or click the object in Select by Clicks (right-click: not the object), then Run."
)
CLICKS_NOTE = (
    "The cup is selected by the clicks in Select by Clicks (left: the object, right: not it; "
    "Clear to start again). Or paint: right-click the photo > Open in MaskEditor (added to them)."
)
LIGHT_NOTE = (
    "On Light Direction's sphere, drag the dot to move the light (the dark ring: behind the "
    "subject). The swatch sets its colour."
)
DEFAULT_MODEL_NOTE = (
    "The pack's own model predicts in one step: steps, cfg, sampler and scheduler change "
    "nothing for it (they matter for IC-Light). Press Run and watch the previews."
)
TEMPLATES = {
    "relight_inpaint_photo": Template(
        "relight_inpaint_photo",
        "1 Relight a region",
        # the light's note sits at the top of the next column: above the sphere it made the
        # column too tall for the template to open at a readable size
        (("1", CLICKS_NOTE), ("5", LIGHT_NOTE), ("6", DEFAULT_MODEL_NOTE)),
    ),
    "iclight_fc_sd15": Template(
        "iclight_fc_sd15",
        "2 Relight with IC-Light",
        (
            ("5", MASK_NOTE),
            ("9", LIGHT_NOTE),
            (
                "2",
                "Needs iclight_sd15_fc.safetensors in models/diffusion_models and an SD1.5 "
                "checkpoint in models/checkpoints (the missing-models dialog links both).",
            ),
        ),
    ),
    "relight_paste_scene_light": Template(
        "relight_paste_scene_light",
        "3 Paste, lit like the scene",
        (
            (
                "1",
                "The photo already holds the pasted object; its mask covers the object. "
                "Estimate Light finds the scene's light outside the mask from the depth map.",
            ),
        ),
    ),
}
# Where the frontend's missing-models dialog sends a user for weights the pack cannot ship.
MODEL_SOURCES = {
    "iclight_sd15_fc.safetensors": (
        "diffusion_models",
        "https://huggingface.co/lllyasviel/ic-light/resolve/main/iclight_sd15_fc.safetensors",
    ),
    "v1-5-pruned-emaonly.safetensors": (
        "checkpoints",
        "https://huggingface.co/Comfy-Org/stable-diffusion-v1-5-archive/resolve/main/"
        "v1-5-pruned-emaonly.safetensors",
    ),
}


def ui_file_name(api_name: str) -> str:
    return f"{TEMPLATES[api_name].title}.json" if api_name in TEMPLATES else f"{api_name}.json"


STOCK_NODES = Path(__file__).resolve().parent / "stock_nodes.json"


def stock_snapshot(object_info: dict, workflows: list[dict], pack_nodes: set[str]) -> dict:
    """The /object_info entries of the stock nodes the workflows use, as the host that made the
    UI workflows has them (file lists left out: they are whatever that machine held). Another
    host's stock changes (0.33: SaveImage gains an output) then do not make them look stale."""
    used = {n["class_type"] for w in workflows for n in w.values()} - pack_nodes
    snapshot = {}
    for class_type in sorted(used):
        entry = json.loads(json.dumps(object_info[class_type]))
        for group in entry["input"].values():
            for spec in group.values():
                if isinstance(spec, list) and spec and isinstance(spec[0], list):
                    spec[0] = []
        snapshot[class_type] = entry
    return snapshot


def with_stock_snapshot(object_info: dict) -> dict:
    """Live entries for the pack's nodes, the recorded ones for stock nodes."""
    recorded = json.loads(STOCK_NODES.read_text()) if STOCK_NODES.is_file() else {}
    return {**object_info, **recorded}


def widget_names(info: dict) -> list[str]:
    return [n for n in ordered_inputs(info) if is_widget(*input_spec(info, n))]


def input_spec(info: dict, name: str) -> tuple[object, dict]:
    for group in ("required", "optional"):
        spec = info["input"].get(group, {}).get(name)
        if spec is not None:
            options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            return spec[0], options
    raise KeyError(name)


def ordered_inputs(info: dict) -> list[str]:
    order = info.get("input_order") or {g: list(info["input"].get(g, {})) for g in info["input"]}
    return list(order.get("required", [])) + list(order.get("optional", []))


def is_widget(kind: object, options: dict) -> bool:
    return (isinstance(kind, list) or kind in WIDGET_TYPES) and not options.get("forceInput")


def socket_type(kind: object) -> str:
    return "COMBO" if isinstance(kind, list) else str(kind)


def widget_values(node: dict, info: dict) -> list:
    values = []
    for name in ordered_inputs(info):
        kind, options = input_spec(info, name)
        if not is_widget(kind, options):
            continue
        default = options.get("default", kind[0] if isinstance(kind, list) and kind else None)
        values.append(node["inputs"].get(name, default))
        if options.get("control_after_generate"):
            values.append("fixed")
    if any(input_spec(info, n)[1].get("image_upload") for n in ordered_inputs(info)):
        values.append("image")
    return values


def node_depths(api: dict) -> dict[str, int]:
    depths: dict[str, int] = {}

    def depth(node_id: str) -> int:
        if node_id not in depths:
            sources = [v[0] for v in api[node_id]["inputs"].values() if is_link(v)]
            depths[node_id] = 1 + max((depth(s) for s in sources), default=-1)
        return depths[node_id]

    for node_id in api:
        depth(node_id)
    return depths


def is_link(value: object) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[1], int)


def node_height(class_type: str, sockets: int, widgets: int) -> int:
    return TITLE_HEIGHT + ROW_HEIGHT * (sockets + widgets) + EXTRA_HEIGHT.get(class_type, 0)


def note_node(node_id: int, text: str, pos: list[int]) -> dict:
    lines = sum(1 + len(part) // NOTE_CHARS_PER_LINE for part in text.split("\n"))
    return {
        "id": node_id,
        "type": "Note",
        "title": "How to use",
        "pos": pos,
        "size": [NODE_WIDTH, 40 + NOTE_LINE_HEIGHT * lines],
        "flags": {},
        "order": 0,
        "mode": 0,
        "inputs": [],
        "outputs": [],
        "properties": {},
        "widgets_values": [text],
        "color": "#432",
        "bgcolor": "#653",
    }


def model_metadata(values: list) -> list[dict]:
    """ComfyUI's `properties.models`: what the frontend checks for on load."""
    return [
        {"name": value, "url": MODEL_SOURCES[value][1], "directory": MODEL_SOURCES[value][0]}
        for value in values
        if isinstance(value, str) and value in MODEL_SOURCES
    ]


def consumers_of(api: dict) -> dict[str, list[str]]:
    consumers: dict[str, list[str]] = {node_id: [] for node_id in api}
    for node_id, node in api.items():
        for value in node["inputs"].values():
            if is_link(value):
                consumers[value[0]].append(node_id)
    return consumers


def anchors(api: dict) -> dict[str, str]:
    """The node each preview is stacked under: the node it shows, or that node's Save when it
    has one (the result's previews sit with the result, in a column of their own)."""
    consumers = consumers_of(api)
    placed = {}
    for node_id, node in api.items():
        if node["class_type"] in PREVIEW_TYPES:
            source = next(v[0] for v in node["inputs"].values() if is_link(v))
            saves = [c for c in consumers[source] if api[c]["class_type"] == "SaveImage"]
            placed[node_id] = saves[0] if saves else source
    return placed


def columns(api: dict) -> dict[str, int]:
    """Each node's column: as late as its consumers allow (a loader sits just before the node
    that uses it, not at the far left), and a preview under the node it is anchored to."""
    depths = node_depths(api)
    consumers = consumers_of(api)
    column: dict[str, int] = {}
    for node_id in sorted(api, key=lambda n: -depths[n]):
        if api[node_id]["class_type"] in PREVIEW_TYPES:
            continue
        users = [c for c in consumers[node_id] if api[c]["class_type"] not in PREVIEW_TYPES]
        column[node_id] = min(column[c] for c in users) - 1 if users else depths[node_id]
    for preview, anchor in anchors(api).items():
        column[preview] = column[anchor]
    return column


def stacking_order(api: dict) -> list[str]:
    """API order, each preview right under its anchor."""
    placed = anchors(api)
    order = []
    for node_id, node in api.items():
        if node["class_type"] in PREVIEW_TYPES:
            continue
        order.append(node_id)
        order += [p for p, anchor in placed.items() if anchor == node_id]
    return order


def api_to_ui(api: dict, object_info: dict, template: Template | None = None) -> dict:
    """The UI workflow: nodes in columns by their place in the graph, stacked with room for
    what they display (so none overlaps), notes above the node they explain, no saved view
    (the frontend fits the graph to the window on open)."""
    ids = {node_id: index + 1 for index, node_id in enumerate(api)}
    depths = node_depths(api)
    notes = dict(template.notes) if template else {}
    nodes: dict[str, dict] = {}
    links: list[list] = []
    outputs: dict[tuple[int, int], list[int]] = {}
    for node_id, node in api.items():
        info = object_info[node["class_type"]]
        inputs = []
        for name in ordered_inputs(info):
            kind, options = input_spec(info, name)
            value = node["inputs"].get(name)
            if is_widget(kind, options) or not is_link(value):
                if not is_widget(kind, options):
                    inputs.append({"name": name, "type": socket_type(kind), "link": None})
                continue
            link_id = len(links) + 1
            source = ids[value[0]]
            links.append([link_id, source, value[1], ids[node_id], len(inputs), socket_type(kind)])
            outputs.setdefault((source, value[1]), []).append(link_id)
            inputs.append({"name": name, "type": socket_type(kind), "link": link_id})
        values = widget_values(node, info)
        sockets = max(len(inputs), len(info["output"]))
        properties: dict = {"Node name for S&R": node["class_type"]}
        if model_metadata(values):
            properties["models"] = model_metadata(values)
        nodes[node_id] = {
            "id": ids[node_id],
            "type": node["class_type"],
            "title": node.get("_meta", {}).get("title", node["class_type"]),
            "pos": [0, 0],
            "size": [
                NODE_WIDTHS.get(node["class_type"], NODE_WIDTH),
                node_height(node["class_type"], sockets, len(values)),
            ],
            "flags": {},
            "order": 0,
            "mode": 0,
            "inputs": inputs,
            "outputs": [],
            "properties": properties,
            "widgets_values": values,
        }
    for node_id, node in api.items():
        info = object_info[node["class_type"]]
        names = info.get("output_name") or info["output"]
        nodes[node_id]["outputs"] = [
            {
                "name": names[slot],
                "type": kind,
                "links": outputs.get((ids[node_id], slot), []),
                "slot_index": slot,
            }
            for slot, kind in enumerate(info["output"])
        ]
    note_nodes = place(api, nodes, notes)
    for position, node_id in enumerate(sorted(api, key=lambda n: depths[n])):
        nodes[node_id]["order"] = position
    for position, note in enumerate(note_nodes, start=len(nodes)):
        note["order"] = position
    all_nodes = list(nodes.values()) + note_nodes
    return {
        "last_node_id": len(all_nodes),
        "last_link_id": len(links),
        "nodes": all_nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": saved_view(all_nodes)},
        "version": 0.4,
    }


def saved_view(nodes: list[dict]) -> dict:
    """The frontend's `extra.ds` that shows every node (title bars included) inside
    VIEW_WINDOW less VIEW_MARGINS, as large as fits up to 1:1 and centred. Screen = (graph +
    offset) x scale."""
    left = min(n["pos"][0] for n in nodes)
    top = min(n["pos"][1] - TITLE_HEIGHT for n in nodes)
    right = max(n["pos"][0] + n["size"][0] for n in nodes)
    bottom = max(n["pos"][1] + n["size"][1] for n in nodes)
    margin_left, margin_top, margin_right, margin_bottom = VIEW_MARGINS
    width = VIEW_WINDOW[0] - margin_left - margin_right
    height = VIEW_WINDOW[1] - margin_top - margin_bottom
    scale = min(1.0, width / (right - left), height / (bottom - top))
    x = margin_left + (width - scale * (right - left)) / 2
    y = margin_top + (height - scale * (bottom - top)) / 2
    return {
        "scale": round(scale, 4),
        "offset": [round(x / scale - left, 1), round(y / scale - top, 1)],
    }


def column_lefts(column: dict[str, int], nodes: dict[str, dict]) -> dict[int, int]:
    """Each column's x: as wide as its widest node, COLUMN_GAP between columns."""
    widths: dict[int, int] = {}
    for node_id, index in column.items():
        widths[index] = max(widths.get(index, 0), nodes[node_id]["size"][0])
    lefts, x = {}, 40
    for index in range(max(widths, default=-1) + 1):
        lefts[index] = x
        x += widths.get(index, NODE_WIDTH) + COLUMN_GAP
    return lefts


def place(api: dict, nodes: dict[str, dict], notes: dict[str, str]) -> list[dict]:
    """Set every node's position; returns the Note nodes made for `notes`."""
    column = columns(api)
    lefts = column_lefts(column, nodes)
    bottoms: dict[int, int] = {}
    note_nodes = []
    for node_id in stacking_order(api):
        x = lefts[column[node_id]]
        top = bottoms.get(column[node_id], 40)
        if node_id in notes:
            note = note_node(len(api) + len(note_nodes) + 1, notes[node_id], [x, top])
            note_nodes.append(note)
            top += note["size"][1] + ROW_GAP
        nodes[node_id]["pos"] = [x, top]
        bottoms[column[node_id]] = top + nodes[node_id]["size"][1] + ROW_GAP
    return note_nodes
