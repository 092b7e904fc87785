import numpy as np
import pytest
import torch

from relight_inpaint.conditioning.light import light_gradient
from relight_inpaint.training.examples import (
    as_light,
    augment,
    make_batch,
    render_dataset,
    rotate_light,
)

CONCAT = ["masked_image", "mask", "light_map", "mode"]


@pytest.fixture(scope="module")
def data():
    return render_dataset([3, 4, 5, 6], size=64, frame_size=96, workers=1)


@pytest.mark.parametrize("turns", [0, 1, 2, 3])
@pytest.mark.parametrize("flip", [False, True])
def test_the_light_vector_follows_the_image_when_it_is_rotated_or_flipped(turns, flip):
    vectors = torch.tensor([[0.6, 0.48, 0.64, 1.0, 0.1, 1.0, 1.0, 1.0]])
    image = light_gradient(as_light(vectors), 32, 32)
    (moved,), moved_light = augment([image], vectors, turns, flip)
    assert torch.allclose(moved, light_gradient(as_light(moved_light), 32, 32), atol=1e-6)


def test_rotation_keeps_elevation_and_the_other_light_terms():
    vectors = torch.tensor([[0.6, 0.48, 0.64, 1.3, 0.2, 1.0, 0.9, 0.8]])
    turned = rotate_light(vectors, 1, True)
    assert torch.equal(turned[:, 2:], vectors[:, 2:])


def test_relight_examples_change_only_the_masked_object(data):
    batch = make_batch(data, np.arange(4), "relight", torch.Generator().manual_seed(0), CONCAT)
    image = batch.condition[:, :3]
    outside = batch.mask.expand_as(image) == 0
    assert torch.equal(image[outside], batch.target[outside])
    assert (image[~outside] - batch.target[~outside]).abs().mean() > 0.01


def test_fill_examples_start_from_the_prefill_and_keep_the_outside(data):
    batch = make_batch(data, np.arange(4), "fill", torch.Generator().manual_seed(0), CONCAT)
    outside = batch.mask.expand_as(batch.target) == 0
    assert torch.allclose(batch.condition[:, :3][outside], batch.target[outside], atol=1e-6)
    assert batch.condition[:, -1].min() == 1.0
