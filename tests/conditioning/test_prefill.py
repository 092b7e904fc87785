import pytest
import torch

from relight_inpaint.conditioning.prefill import push_pull_fill


def test_known_pixels_are_kept_exactly_and_the_hole_is_filled_from_its_border():
    image = torch.rand(2, 3, 37, 50)
    known = torch.ones(2, 1, 37, 50)
    known[:, :, 10:25, 15:35] = 0
    filled = push_pull_fill(image, known)
    keep = known.expand_as(image) > 0
    assert torch.equal(filled[keep], image[keep])
    inside = filled[~keep]
    assert inside.min() >= image.min() and inside.max() <= image.max()


def test_a_hole_in_a_flat_colour_is_filled_with_that_colour():
    image = torch.full((1, 3, 32, 32), 0.3)
    image[:, :, 8:24, 8:24] = 1.0  # what is under the hole must not leak in
    known = torch.ones(1, 1, 32, 32)
    known[:, :, 8:24, 8:24] = 0
    assert torch.allclose(push_pull_fill(image, known), torch.full_like(image, 0.3), atol=1e-6)


def test_a_left_right_split_is_continued_on_each_side():
    image = torch.zeros(1, 1, 32, 64)
    image[..., 32:] = 1.0
    known = torch.ones(1, 1, 32, 64)
    known[..., 8:24, 20:44] = 0
    filled = push_pull_fill(image, known)
    assert filled[0, 0, 16, 21] < 0.3 and filled[0, 0, 16, 42] > 0.7


def test_a_mask_covering_everything_is_refused():
    with pytest.raises(ValueError, match="^mask: nothing outside the mask"):
        push_pull_fill(torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8))
