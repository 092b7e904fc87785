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
