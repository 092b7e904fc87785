"""Every node: in the pack's category, described, and a tooltip on every input and output."""

import pytest

from relight_inpaint.nodes import NODES
from relight_inpaint.nodes.common import CATEGORY

NAMES = ["LoadRelightUNet", "LightDirectionEncode", "MaskConditioning", "RelightInpaintSampler"]


def test_the_four_designed_nodes_are_registered():
    ids = [node.GET_SCHEMA().node_id for node in NODES]
    assert set(NAMES) <= set(ids)


@pytest.mark.parametrize("node", NODES, ids=lambda n: n.__name__)
def test_schema_is_documented(node):
    schema = node.GET_SCHEMA()
    assert schema.category == CATEGORY
    assert len(schema.description) > 40
    assert schema.display_name
    for item in schema.inputs + schema.outputs:
        assert item.tooltip, f"{schema.node_id}.{item.id} has no tooltip"


def test_crop_warnings_are_shown_on_the_sampler_node(monkeypatch):
    import sys
    import types

    from relight_inpaint.nodes.common import say_on_node

    sent = []

    class FakeServer:
        def send_progress_text(self, text, node_id):
            sent.append((text, node_id))

    class Node:
        class hidden:  # as ComfyUI fills it for a node that asks for its unique_id
            unique_id = "6"

    server = types.ModuleType("server")  # ComfyUI's server module, as a running host has it
    server.PromptServer = type("PromptServer", (), {"instance": FakeServer()})
    monkeypatch.setitem(sys.modules, "server", server)
    say_on_node(Node, ["mask: 400 separate regions; merged into 16 crops"])
    assert sent == [("mask: 400 separate regions; merged into 16 crops", "6")]
    say_on_node(Node, [])  # the next run had nothing to say: the old text goes
    assert sent[-1] == ("", "6") and len(sent) == 2
