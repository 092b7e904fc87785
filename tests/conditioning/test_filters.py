"""Image filters: the wide Gaussian blur on a shrunk copy against the direct one."""

from __future__ import annotations

import torch

from relight_inpaint.conditioning.filters import gaussian_blur, masked_average, wide_gaussian_blur


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


def test_masked_average_ignores_what_has_no_weight_and_reports_its_weight():
    values = torch.full((1, 2, 32, 32), 5.0)
    weight = torch.zeros(1, 32, 32)
    weight[:, :, :16] = 1.0
    values[:, :, :, 16:] = 100.0  # unweighted: must not leak into the average
    for sigma in (2.0, 12.0):  # the plain and the shrunk blur
        average, density = masked_average(values, weight, sigma)
        assert torch.allclose(average[:, :, :, :20], torch.full_like(average[:, :, :, :20], 5.0))
        assert torch.allclose(density, wide_gaussian_blur(weight[:, None], sigma)[:, 0])
