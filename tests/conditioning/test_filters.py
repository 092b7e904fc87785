"""Image filters: the wide Gaussian blur on a shrunk copy against the direct one."""

from __future__ import annotations

import torch

from relight_inpaint.conditioning.filters import gaussian_blur, wide_gaussian_blur


def field() -> torch.Tensor:
    """Two channels: a step and a bright disk on a ramp, at a size no factor divides."""
    rows, cols = torch.meshgrid(torch.arange(301.0), torch.arange(457.0), indexing="ij")
    step = (cols > 200).float()
    disk = (((rows - 150) ** 2 + (cols - 320) ** 2) < 40**2).float()
    return torch.stack([step + 0.5 * cols / 457, disk])[None]


def test_a_wide_blur_on_a_shrunk_copy_is_the_direct_blur():
    x = field()
    for sigma in (12.0, 40.0):
        wide, direct = wide_gaussian_blur(x, sigma), gaussian_blur(x, sigma)
        assert wide.shape == x.shape
        inner = (..., slice(60, -60), slice(60, -60))  # the borders' replication differs
        assert float((wide - direct)[inner].abs().max()) < 0.01
        assert float((wide - direct).abs().mean()) < 0.005


def test_a_narrow_blur_is_the_direct_one():
    x = field()
    assert torch.equal(wide_gaussian_blur(x, 3.0), gaussian_blur(x, 3.0))
