"""Masks: layouts, resizing, grow/erode, feathering, batching, preparation."""

from __future__ import annotations

import pytest
import torch

from relight_inpaint.conditioning.composite import composite
from relight_inpaint.conditioning.mask import (
    MaskedImage,
    as_mask_batch,
    feather_mask,
    grow_mask,
    match_batch,
    max_pool_filter,
    prepare_masked_image,
    resize_mask,
)


def dot_mask(size: int = 15, row: int = 7, col: int = 7) -> torch.Tensor:
    mask = torch.zeros(1, size, size)
    mask[0, row, col] = 1.0
    return mask


def square_mask(size: int, top: int, left: int, side: int) -> torch.Tensor:
    mask = torch.zeros(1, size, size)
    mask[0, top : top + side, left : left + side] = 1.0
    return mask


# --- as_mask_batch / resize ------------------------------------------------------------------


def test_as_mask_batch_accepts_comfy_layouts():
    plain = torch.rand(4, 5)
    assert torch.equal(as_mask_batch(plain), plain[None])
    batch = torch.rand(2, 4, 5)
    assert torch.equal(as_mask_batch(batch), batch)
    assert torch.equal(as_mask_batch(batch[:, None]), batch)
    assert as_mask_batch(torch.ones(2, 2, dtype=torch.bool)).dtype == torch.float32


@pytest.mark.parametrize("shape", [(5,), (2, 3, 4, 5), (1, 2, 3, 4, 5)])
def test_as_mask_batch_rejects_other_shapes(shape):
    with pytest.raises(ValueError, match=r"^mask: expected shape \[H, W\]"):
        as_mask_batch(torch.zeros(shape))


def test_resize_mask_same_size_is_a_no_op():
    mask = torch.rand(2, 6, 7)
    assert resize_mask(mask, 6, 7) is mask


def test_resize_mask_up_and_down_keeps_values():
    mask = torch.zeros(1, 4, 4)
    mask[:, :, 2:] = 1.0
    up = resize_mask(mask, 8, 8)
    assert up.shape == (1, 8, 8)
    torch.testing.assert_close(up[0, :, :3], torch.zeros(8, 3))
    torch.testing.assert_close(up[0, :, 5:], torch.ones(8, 3))
    assert 0.0 < up[0, 0, 3].item() < 1.0  # bilinear, not nearest
    down = resize_mask(mask, 2, 2)  # antialiased: the halves bleed a little into each other
    assert down[0, :, 0].max().item() < 0.2 and down[0, :, 1].min().item() > 0.8
    torch.testing.assert_close(down[0, :, 0] + down[0, :, 1], torch.ones(2))
    assert float(up.min()) >= 0.0 and float(up.max()) <= 1.0


def test_resize_mask_keeps_a_sharp_edge_at_the_sides():
    mask = torch.zeros(6, 6)
    mask[:, 3:] = 1.0
    resized = resize_mask(mask, 3, 3)
    assert resized.shape == (1, 3, 3)
    torch.testing.assert_close(resized[0, :, 0], torch.zeros(3))
    torch.testing.assert_close(resized[0, :, 2], torch.ones(3))


def test_resize_mask_accepts_2d_mask():
    assert resize_mask(torch.ones(3, 3), 6, 5).shape == (1, 6, 5)


# --- grow ------------------------------------------------------------------------------------


def test_grow_single_pixel_by_3_gives_7x7_block():
    grown = grow_mask(dot_mask(), 3)
    torch.testing.assert_close(grown, square_mask(15, 4, 4, 7))


def test_grow_large_radius_in_steps_equals_a_square():
    grown = grow_mask(dot_mask(size=101, row=50, col=50), 40)
    torch.testing.assert_close(grown, square_mask(101, 10, 10, 81))


def test_grow_clips_at_the_image_border():
    grown = grow_mask(dot_mask(row=0, col=0), 2)
    torch.testing.assert_close(grown, square_mask(15, 0, 0, 3))


def test_grow_zero_is_unchanged():
    mask = torch.rand(2, 9, 9)
    assert torch.equal(grow_mask(mask, 0), mask)


def test_grow_soft_mask_is_a_max_filter():
    mask = torch.zeros(1, 9, 9)
    mask[0, 4, 4] = 0.4
    mask[0, 4, 6] = 0.8
    grown = grow_mask(mask, 1)
    assert grown[0, 4, 5].item() == pytest.approx(0.8)
    assert grown[0, 3, 3].item() == pytest.approx(0.4)
    assert grown[0, 4, 2].item() == 0.0


def test_erode_shrinks_a_block():
    eroded = grow_mask(square_mask(15, 3, 3, 9), -2)
    torch.testing.assert_close(eroded, square_mask(15, 5, 5, 5))


def test_erode_removes_a_single_pixel_and_spares_the_border():
    assert grow_mask(dot_mask(), -1).max().item() == 0.0
    full = torch.ones(1, 8, 8)
    torch.testing.assert_close(grow_mask(full, -3), full)


def test_grow_256_grows_a_sparse_batch():
    """What it does, not how fast (speed on a shared machine is a benchmark's to print)."""
    mask = (torch.rand(4, 256, 256, generator=torch.Generator().manual_seed(0)) > 0.999).float()
    grown = grow_mask(mask, 64)
    assert grown.mean() > mask.mean()
    assert torch.equal(grown.amax(dim=(1, 2)), mask.amax(dim=(1, 2)))


# --- feather ---------------------------------------------------------------------------------


def test_feather_never_shrinks_and_is_soft_outside():
    mask = square_mask(32, 10, 10, 12)
    feathered = feather_mask(mask, 4)
    assert bool((feathered >= mask).all())
    torch.testing.assert_close(feathered[0, 10:22, 10:22], torch.ones(12, 12))
    just_outside = feathered[0, 15, 9].item()
    further_out = feathered[0, 15, 6].item()
    assert 0.0 < further_out < just_outside < 1.0
    assert feathered[0, 0, 0].item() == pytest.approx(0.0, abs=1e-4)
    assert float(feathered.max()) <= 1.0


def test_feather_zero_is_unchanged_and_negative_rejected():
    mask = torch.rand(1, 8, 8)
    assert torch.equal(feather_mask(mask, 0), mask)
    with pytest.raises(ValueError, match=r"^feather: expected"):
        feather_mask(mask, -1)


def test_feather_wider_spreads_further():
    mask = square_mask(48, 20, 20, 8)
    narrow = feather_mask(mask, 2)
    wide = feather_mask(mask, 8)
    assert wide[0, 23, 14].item() > narrow[0, 23, 14].item()


def test_feather_of_a_border_mask_keeps_edge_full():
    mask = torch.zeros(1, 16, 16)
    mask[0, :, :4] = 1.0
    feathered = feather_mask(mask, 3)
    torch.testing.assert_close(feathered[0, :, :4], torch.ones(16, 4))
    torch.testing.assert_close(feathered[0, 0], feathered[0, 8])  # replicate padding: no edge dip


# --- batching --------------------------------------------------------------------------------


def test_match_batch_rules():
    single = torch.rand(1, 3, 3)
    repeated = match_batch(single, 4, "mask")
    assert repeated.shape == (4, 3, 3)
    assert torch.equal(repeated[3], single[0])
    same = torch.rand(4, 3, 3)
    assert match_batch(same, 4, "mask") is same
    with pytest.raises(ValueError, match=r"^mask: batch of 3, expected 1 or 4 \(the image batch\)"):
        match_batch(torch.rand(3, 3, 3), 4, "mask")


def test_masked_image_validates_and_reports():
    image = torch.rand(2, 4, 5, 3)
    masked = MaskedImage(image, torch.zeros(2, 4, 5))
    assert masked.is_empty
    assert masked.batch_size == 2
    assert not MaskedImage(image, torch.full((2, 4, 5), 0.01)).is_empty
    with pytest.raises(ValueError, match=r"^mask: expected shape \[2, 4, 5\]"):
        MaskedImage(image, torch.zeros(2, 4, 4))
    with pytest.raises(ValueError, match=r"^image: expected shape"):
        MaskedImage(torch.rand(2, 4, 5, 4), torch.zeros(2, 4, 5))


def test_prepare_masked_image_resizes_grows_feathers_and_batches():
    image = torch.rand(3, 20, 20, 4)
    mask = torch.zeros(10, 10)
    mask[4:6, 4:6] = 1.0  # → 8..12 at 20×20
    prepared = prepare_masked_image(image, mask, grow=2, feather=2)
    assert prepared.image.shape == (3, 20, 20, 3)
    assert torch.equal(prepared.image, image[..., :3])
    assert prepared.mask.shape == (3, 20, 20)
    assert torch.equal(prepared.mask[0], prepared.mask[2])
    torch.testing.assert_close(prepared.mask[0, 7:13, 7:13], torch.ones(6, 6))
    assert 0.0 < prepared.mask[0, 10, 4].item() < 1.0  # feathered beyond the grown edge
    assert prepared.mask[0, 0, 0].item() == pytest.approx(0.0, abs=1e-3)


def test_prepare_masked_image_without_changes_keeps_the_mask():
    image = torch.rand(2, 8, 8, 3)
    mask = (torch.rand(2, 8, 8) > 0.5).float()
    prepared = prepare_masked_image(image, mask, grow=0, feather=0)
    assert torch.equal(prepared.mask, mask)


def test_prepare_masked_image_batch_mismatch_names_mask():
    with pytest.raises(ValueError, match=r"^mask: batch of 2, expected 1 or 3"):
        prepare_masked_image(torch.rand(3, 8, 8, 3), torch.zeros(2, 8, 8), grow=0, feather=0)


def test_prepare_masked_image_rejects_bad_image():
    with pytest.raises(ValueError, match=r"^image: expected"):
        prepare_masked_image(torch.rand(8, 8, 3), torch.zeros(8, 8), grow=0, feather=0)


def test_grow_and_feather_around_the_mask_equals_the_whole_image_version():
    from relight_inpaint.conditioning.mask import feather_mask, grow_and_feather, grow_mask

    mask = torch.zeros(2, 300, 400)
    mask[0, 0:40, 100:160] = 1.0  # at the border
    mask[0, 200:230, 300:330] = 0.5
    mask[1, 150:160, 390:400] = 1.0
    for grow, feather in ((0, 8), (6, 4), (-3, 5), (12, 0)):
        whole = feather_mask(grow_mask(mask, grow), feather)
        assert torch.allclose(grow_and_feather(mask, grow, feather), whole, atol=1e-6)
    assert torch.equal(grow_and_feather(torch.zeros(1, 50, 50), 4, 4), torch.zeros(1, 50, 50))


def test_white_and_black_of_an_8_bit_mask_count_as_exactly_1_and_0():
    """Newer ComfyUI's LoadImageMask gives white as 254/255: still 'generated here, exactly'."""
    mask = torch.zeros(1, 8, 8)
    mask[:, 2:6, 2:6] = 254 / 255
    mask[:, 0, 0] = 1 / 255
    mask[:, 7, 7] = 128 / 255
    masked = prepare_masked_image(torch.rand(1, 8, 8, 3), mask, 0, 0)
    assert masked.mask[0, 2:6, 2:6].eq(1.0).all()
    assert masked.mask[0, 0, 0] == 0.0
    assert masked.mask[0, 7, 7] == pytest.approx(128 / 255)
    original, generated = torch.rand(1, 8, 8, 3), torch.rand(1, 8, 8, 3)
    result = composite(original, generated, masked.mask)
    assert torch.equal(result[0, 2:6, 2:6], generated[0, 2:6, 2:6])
    assert torch.equal(result[0, 0, 0], original[0, 0, 0])


def test_grow_on_the_cpu_equals_torchs_max_pools_for_soft_masks_both_ways():
    """The CPU path (OpenCV's dilate) and the max-pool path other devices take give one answer:
    a square element, the outside neutral, soft values kept."""
    generator = torch.Generator().manual_seed(3)
    mask = (torch.rand(2, 37, 53, generator=generator) > 0.97).float() * 0.7
    mask[:, 0, 0] = 1.0  # at the border
    for pixels in (1, 5, 20):
        torch.testing.assert_close(grow_mask(mask, pixels), max_pool_filter(mask, pixels))
        eroded = -max_pool_filter(-(1 - mask), pixels)
        torch.testing.assert_close(grow_mask(1 - mask, -pixels), eroded)
