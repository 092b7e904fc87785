import pytest
import torch

from relight_inpaint.nodes.mask_conditioning import MaskConditioning


def test_mask_of_another_size_is_resized_grown_and_feathered():
    image = torch.rand(2, 40, 60, 3)
    mask = torch.zeros(1, 20, 30)
    mask[:, 8:12, 12:18] = 1
    masked, final, preview = MaskConditioning.execute(image, mask, 2, 4).result
    assert final.shape == (2, 40, 60) and preview.shape == image.shape
    assert torch.equal(masked.mask, final)
    assert final[:, 16:24, 24:36].min() == 1.0  # the original region is kept whole
    assert final[:, :, :5].max() == 0  # far from the region: untouched
    assert ((final > 0) & (final < 1)).any()  # feathered edge


def test_mask_batch_that_is_neither_one_nor_the_image_batch_names_mask():
    with pytest.raises(ValueError, match="^mask: batch of 3"):
        MaskConditioning.execute(torch.rand(2, 8, 8, 3), torch.zeros(3, 8, 8), 0, 0)


def test_empty_mask_is_reported_empty():
    masked, _, _ = MaskConditioning.execute(
        torch.rand(1, 8, 8, 3), torch.zeros(1, 8, 8), 4, 4
    ).result
    assert masked.is_empty
