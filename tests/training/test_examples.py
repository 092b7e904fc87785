import numpy as np
import pytest
import torch

from relight_inpaint.lighting.light import light_gradient
from relight_inpaint.training.examples import (
    as_light,
    augment,
    make_batch,
    noisy_input,
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


@pytest.mark.parametrize("mode", ["relight", "fill"])
def test_a_cropped_batch_cuts_one_window_from_image_answer_and_mask(data, mode):
    full = make_batch(data, np.arange(4), mode, torch.Generator().manual_seed(0), CONCAT)
    batch = make_batch(data, np.arange(4), mode, torch.Generator().manual_seed(0), CONCAT, 48)
    assert batch.target.shape[-2:] == batch.mask.shape[-2:] == batch.condition.shape[-2:]
    assert batch.target.shape[-2:] == (48, 48)
    windows = full.target.unfold(2, 48, 1).unfold(3, 48, 1)  # [B,3,17,17,48,48]
    matches = (windows == batch.target[:, :, None, None]).all(dim=(0, 1, 4, 5))
    assert matches.any(), "the answer is not a window of the uncropped answer"
    top, left = (int(i) for i in matches.nonzero()[0])
    assert torch.equal(batch.mask, full.mask[:, :, top : top + 48, left : left + 48])


def test_noise_levels_lean_towards_pure_noise():
    target = torch.zeros(4000, 1, 1, 1)
    _, t = noisy_input(target, torch.Generator().manual_seed(0))
    assert 0 < t.min() and t.max() <= 1
    assert (t > 0.5).float().mean() > 0.75  # 1 - 0.5 ** (1 / 3) = 0.79; uniform t: 0.5
