"""Model sizes, image resizing, compositing and the grey fill for the model."""

from __future__ import annotations

import pytest
import torch

from relight_inpaint.conditioning.composite import (
    composite,
    resize_image,
    resize_to_multiple,
)

# --- sizes -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "width", "multiple", "min_side", "expected"),
    [
        (512, 768, 64, None, (512, 768)),  # already fine
        (100, 99, 8, None, (104, 96)),  # 12.5 rounds up, 12.375 down
        (500, 300, 64, None, (512, 320)),
        (3, 3, 8, None, (8, 8)),  # at least one multiple
        (100, 300, 64, 200, (256, 320)),  # min_side 200 → 256
        (1000, 1000, 64, 200, (1024, 1024)),
        (33, 33, 1, None, (33, 33)),
    ],
)
def test_resize_to_multiple(height, width, multiple, min_side, expected):
    assert resize_to_multiple(height, width, multiple, min_side) == expected


@pytest.mark.parametrize(
    ("args", "name"),
    [((0, 10, 8), "height"), ((10, -1, 8), "width"), ((10, 10, 0), "multiple")],
)
def test_resize_to_multiple_rejects_bad_sizes(args, name):
    with pytest.raises(ValueError, match=rf"^{name}: expected"):
        resize_to_multiple(*args)


def test_resize_image_same_size_is_a_no_op():
    image = torch.rand(1, 5, 6, 3)
    assert resize_image(image, 5, 6) is image


def test_resize_image_keeps_constant_and_layout():
    image = torch.zeros(2, 8, 16, 3)
    image[..., 0] = 0.25
    image[..., 2] = 1.0
    for height, width in [(4, 8), (16, 32), (3, 20)]:
        resized = resize_image(image, height, width)
        assert resized.shape == (2, height, width, 3)
        torch.testing.assert_close(resized[..., 0], torch.full((2, height, width), 0.25))
        torch.testing.assert_close(resized[..., 1], torch.zeros(2, height, width))
        torch.testing.assert_close(resized[..., 2], torch.ones(2, height, width))


def test_resize_image_shrink_is_antialiased():
    image = torch.zeros(1, 8, 8, 3)
    image[:, :, ::2] = 1.0  # one-pixel stripes
    shrunk = resize_image(image, 2, 2)
    torch.testing.assert_close(shrunk, torch.full((1, 2, 2, 3), 0.5), atol=0.05, rtol=0)


# --- composite -------------------------------------------------------------------------------


def random_case(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    original = torch.rand(2, 16, 24, 3, generator=generator)
    generated = torch.rand(2, 16, 24, 3, generator=generator) * 1.4 - 0.2  # out of range too
    mask = torch.rand(2, 16, 24, generator=generator)
    mask[mask < 0.4] = 0.0
    mask[mask > 0.8] = 1.0
    return original, generated, mask


def test_composite_is_bit_exact_outside_and_inside_the_mask():
    original, generated, mask = random_case()
    result = composite(original, generated, mask)
    outside = mask == 0
    inside = mask == 1
    assert outside.any() and inside.any()
    assert torch.equal(result[outside], original[outside])
    assert torch.equal(result[inside], generated.clamp(0, 1)[inside])


def test_composite_blends_soft_mask():
    original, generated, mask = random_case(1)
    result = composite(original, generated, mask)
    m = mask[..., None]
    expected = original * (1 - m) + generated.clamp(0, 1) * m
    torch.testing.assert_close(result, expected)
    soft = (mask > 0) & (mask < 1)
    assert soft.any()
    assert not torch.equal(result[soft], original[soft])


def test_composite_single_mask_serves_the_batch():
    original, generated, _ = random_case()
    mask = torch.zeros(16, 24)
    mask[4:8, 4:8] = 1.0
    result = composite(original, generated, mask)
    assert torch.equal(result[:, :4], original[:, :4])
    assert torch.equal(result[:, 4:8, 4:8], generated.clamp(0, 1)[:, 4:8, 4:8])


def test_composite_rejects_mismatches():
    original, generated, mask = random_case()
    with pytest.raises(ValueError, match=r"^generated: expected the original's shape"):
        composite(original, generated[:, :8], mask)
    with pytest.raises(ValueError, match=r"^mask: expected size \[16, 24\]"):
        composite(original, generated, mask[:, :8])
    with pytest.raises(ValueError, match=r"^mask: batch of 3, expected 1 or 2"):
        composite(original, generated, torch.zeros(3, 16, 24))
    with pytest.raises(ValueError, match=r"^original: expected shape \[B, H, W, 3\]"):
        composite(original[..., :2], generated, mask)


def test_composite_ignores_non_finite_generated_pixels_outside_the_mask():
    original, generated, mask = random_case(2)
    outside = mask == 0
    generated[outside] = float("nan")
    result = composite(original, generated, mask)
    assert torch.equal(result[outside], original[outside])
    assert not result.isnan().any()
