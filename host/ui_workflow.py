"""Turn an API-format workflow into the UI format ComfyUI's editor and template browser load.

The API files in workflows/api/ are the source of truth (the CLI, tests and benchmark run
them); the UI files in workflows/ are generated from them with a live /object_info, so widget
order and socket types are ComfyUI's own: `python -m host.cli workflows`.
"""

from __future__ import annotations

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
COLUMN_WIDTH = 380
ROW_GAP = 40


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


def api_to_ui(api: dict, object_info: dict) -> dict:
    ids = {node_id: index + 1 for index, node_id in enumerate(api)}
    depths = node_depths(api)
    rows: dict[int, int] = {}
    nodes, links = [], []
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
        column = depths[node_id]
        row = rows.get(column, 0)
        height = 80 + 26 * (len(inputs) + len(widget_values(node, info)))
        rows[column] = row + height + ROW_GAP
        nodes.append(
            {
                "id": ids[node_id],
                "type": node["class_type"],
                "title": node.get("_meta", {}).get("title", node["class_type"]),
                "pos": [40 + column * COLUMN_WIDTH, 40 + row],
                "size": [COLUMN_WIDTH - 40, height],
                "flags": {},
                "order": 0,
                "mode": 0,
                "inputs": inputs,
                "outputs": [],
                "properties": {"Node name for S&R": node["class_type"]},
                "widgets_values": widget_values(node, info),
            }
        )
    for ui_node, node in zip(nodes, api.values(), strict=True):
        info = object_info[node["class_type"]]
        names = info.get("output_name") or info["output"]
        ui_node["outputs"] = [
            {
                "name": names[slot],
                "type": kind,
                "links": outputs.get((ui_node["id"], slot), []),
                "slot_index": slot,
            }
            for slot, kind in enumerate(info["output"])
        ]
    order = sorted(nodes, key=lambda n: depths[list(api)[n["id"] - 1]])
    for position, ui_node in enumerate(order):
        ui_node["order"] = position
    return {
        "last_node_id": len(nodes),
        "last_link_id": len(links),
        "nodes": nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {"ds": {"scale": 0.8, "offset": [0, 0]}},
        "version": 0.4,
    }
