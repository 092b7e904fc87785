"""Shadow Mask node: a MASK of the photo's size and a preview, errors named."""

from __future__ import annotations

import pytest
import torch

from relight_inpaint.lighting.light import direction_from_angles, make_light
from relight_inpaint.nodes.mask_conditioning import MaskConditioning
from relight_inpaint.nodes.shadow_mask import ShadowMask


def masked():
    image = torch.full((1, 96, 128, 3), 0.6)
    mask = torch.zeros(1, 96, 128)
    mask[:, 40:60, 50:70] = 1.0
    return MaskConditioning.execute(image, mask, 0, 0).result[0]


def test_shadow_mask_node_gives_a_mask_beside_the_subject_and_a_preview():
    cond = masked()
    lit = make_light(direction_from_angles(180.0, 30.0))
    depth = torch.zeros(1, 96, 128, 3)
    depth[:, 40:60, 50:70] = 1.0
    shadow, preview = ShadowMask.execute(cond, lit, "relight", depth, 0.2).result
    assert shadow.shape == (1, 96, 128)
    assert preview.shape == (1, 96, 128, 3)
    assert float(shadow[:, :, 72:].sum()) > 10 and float(shadow[:, 40:60, 50:70].sum()) == 0


def test_without_a_depth_map_a_relight_casts_no_shadow_unless_asked_to_guess():
    """A shadow needs a surface to fall on: a portrait's silhouette on the wall behind it was
    what the guess painted. Asked to guess, the subject rests on a flat surface facing you."""
    cond = masked()
    lit = make_light(direction_from_angles(180.0, 30.0))
    none, preview = ShadowMask.execute(cond, lit, "relight").result
    assert float(none.abs().sum()) == 0 and preview.shape == (1, 96, 128, 3)
    guessed, _ = ShadowMask.execute(cond, lit, "relight", without_depth="guess").result
    assert float(guessed[:, :, 72:].sum()) > 10 and float(guessed[:, 40:60, 50:70].sum()) == 0


def test_shadow_mask_node_names_a_bad_depth_map():
    lit = make_light(direction_from_angles(180.0, 30.0))
    with pytest.raises(ValueError, match="^depth_map: 3 images for a batch of 1"):
        ShadowMask.execute(masked(), lit, "fill", torch.zeros(3, 96, 128, 3))


def test_shadow_mask_node_moves_comfyuis_progress_bar_to_the_end():
    import comfy.utils

    seen = []
    comfy.utils.set_progress_bar_global_hook(
        lambda value, total, preview, node_id=None: seen.append((value, total))
    )
    try:
        depth = torch.zeros(1, 96, 128, 3)
        depth[:, 40:60, 50:70] = 1.0
        ShadowMask.execute(
            masked(), make_light(direction_from_angles(180.0, 30.0)), "relight", depth
        )
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    assert len(seen) > 2 and seen[-1][0] == seen[-1][1]
