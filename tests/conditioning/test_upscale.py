"""Detail at full resolution: a relight worked at a lower resolution keeps the original's
detail where the structure is unchanged; fill never takes the removed object's."""

from __future__ import annotations

import torch

from relight_inpaint.conditioning.composite import resize_image
from relight_inpaint.conditioning.filters import gaussian_blur
from relight_inpaint.conditioning.upscale import restorer, transfer_detail


def textured(size=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    texture = 0.6 + 0.4 * torch.rand(1, size, size, 1, generator=g).expand(-1, -1, -1, 3)
    ramp = torch.linspace(0.3, 0.9, size).view(1, 1, size, 1)
    return (texture * ramp).clamp(0, 1)


def high_pass(image):
    x = image.movedim(-1, 1)
    return (x - gaussian_blur(x, 2.0)).flatten()


def correlation(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_a_relight_worked_small_gets_the_original_detail_back():
    original = textured()
    relit_small = resize_image(original, 64, 64) * torch.linspace(1.2, 0.6, 64).view(1, 1, 64, 1)
    plain = resize_image(relit_small, 256, 256)
    restored = transfer_detail(plain, original, (64, 64))
    assert correlation(high_pass(plain), high_pass(original)) < 0.5
    assert correlation(high_pass(restored), high_pass(original)) > 0.9
    # the new light survives: low frequencies follow the relit answer, not the original
    low = gaussian_blur(restored.movedim(-1, 1), 8.0)
    assert torch.allclose(low, gaussian_blur(plain.movedim(-1, 1), 8.0), atol=0.03)


def test_where_the_structure_changed_no_detail_is_carried_over():
    original = textured(seed=0)
    other = resize_image(resize_image(textured(seed=5), 64, 64), 256, 256)
    restored = transfer_detail(other, original, (64, 64))
    assert correlation(high_pass(restored), high_pass(original)) < 0.2


def test_fill_is_only_upscaled():
    original = textured()
    small = resize_image(original.flip(1), 64, 64)
    restore = restorer()
    out = restore(small, original, torch.ones(1, 256, 256), "fill")
    assert torch.equal(out, resize_image(small, 256, 256))
