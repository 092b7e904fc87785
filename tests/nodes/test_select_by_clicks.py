"""Select by Clicks node: a MASK from clicks, combined with a painted mask, errors named."""

from __future__ import annotations

import json

import pytest
import torch

from relight_inpaint.nodes.select_by_clicks import SelectByClicks


def photo() -> tuple[torch.Tensor, torch.Tensor]:
    image = torch.full((1, 64, 80, 3), 0.2)
    image[:, :, :, 2] = 0.5
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(80), indexing="ij")
    disk = ((yy - 32) ** 2 + (xx - 30) ** 2) < 15**2
    image[0][disk] = torch.tensor([0.9, 0.6, 0.2])
    return image, disk


def clicks(*points) -> str:
    return json.dumps({"points": [list(p) for p in points]})


def test_clicks_give_a_mask_of_the_object_and_a_preview():
    image, disk = photo()
    mask, preview = SelectByClicks.execute(image, clicks((30, 32, 1))).result
    assert mask.shape == (1, 64, 80) and preview.shape == (1, 64, 80, 3)
    assert float((mask[0].bool() == disk).float().mean()) > 0.97


def test_painted_mask_is_added_or_ignored():
    image, disk = photo()
    painted = torch.zeros(1, 64, 80)
    painted[:, 2:8, 70:78] = 1.0
    added = SelectByClicks.execute(image, clicks((30, 32, 1)), painted, "add").result[0]
    assert added[0, 4, 74] == 1 and added[0, 32, 30] == 1
    ignored = SelectByClicks.execute(image, clicks((30, 32, 1)), painted, "ignore").result[0]
    assert ignored[0, 4, 74] == 0
    alone = SelectByClicks.execute(image, "", painted, "add").result[0]
    assert torch.equal(alone, painted)


def test_painted_mask_refined_to_the_edges():
    image, disk = photo()
    rough = torch.zeros(1, 64, 80)
    rough[:, 12:54, 10:52] = 1.0
    refined = SelectByClicks.execute(image, "", rough, "refine").result[0]
    assert float((refined[0].bool() == disk).float().mean()) > 0.97


def test_load_images_empty_mask_of_another_size_means_nothing_painted():
    """Load Image gives a 64 x 64 empty MASK for a photo without alpha: not an error."""
    image, disk = photo()
    mask, _ = SelectByClicks.execute(image, clicks((30, 32, 1)), torch.zeros(1, 64, 64)).result
    assert mask.shape == (1, 64, 80) and float((mask[0].bool() == disk).float().mean()) > 0.97
    painted = torch.zeros(1, 32, 40)
    painted[:, 2:4, 35:39] = 1.0
    added = SelectByClicks.execute(image, "", painted, "add").result[0]
    assert added.shape == (1, 64, 80) and added[0, 5, 74] > 0.5  # scaled to the photo


def test_a_batch_gets_one_mask_per_image():
    image, _ = photo()
    mask, _ = SelectByClicks.execute(image.repeat(2, 1, 1, 1), clicks((30, 32, 1))).result
    assert mask.shape == (2, 64, 80) and torch.equal(mask[0], mask[1])


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"points": "{oops"}, "^points: points: not valid JSON"),
        ({"points": "", "mask": torch.zeros(3, 64, 80)}, "^mask: batch of 3"),
        ({"points": "", "painted": "merge"}, "^painted: expected one of"),
    ],
)
def test_bad_inputs_are_named(kwargs: dict, words: str):
    image, _ = photo()
    with pytest.raises(ValueError, match=words):
        SelectByClicks.execute(image, **kwargs)


def test_bad_points_are_a_queue_time_error():
    assert SelectByClicks.validate_inputs(points='{"box": 3}').startswith("points: box")
    assert SelectByClicks.validate_inputs(points=clicks((1, 2, 1))) is True
