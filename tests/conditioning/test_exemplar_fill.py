import math
from functools import partial

import pytest
import torch

from relight_inpaint.conditioning.exemplar_fill import (
    EM_ITERATIONS,
    exemplar_fill,
    exemplar_fill_rounds,
    hole_context,
)
from relight_inpaint.conditioning.prefill import push_pull_fill


def stripes(height: int = 96, width: int = 96, period: int = 8) -> torch.Tensor:
    """Diagonal colour stripes [1,3,H,W] in -1..1: a texture a smooth fill cannot continue."""
    y, x = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    phase = 2 * math.pi * (x + y) / period
    return torch.stack([torch.sin(phase), torch.cos(phase), 0.5 * torch.sin(phase)])[None] * 0.8


def square_hole(height: int = 96, width: int = 96, top=36, left=40, side=20) -> torch.Tensor:
    known = torch.ones(1, 1, height, width)
    known[..., top : top + side, left : left + side] = 0.0
    return known


def hole_psnr(output, truth, known) -> float:
    hole = known[:, 0] < 0.5
    error = (output - truth).square().mean(1)[hole].mean()
    return float(10 * torch.log10(4.0 / error))


def test_known_pixels_are_kept_exactly():
    image, known = stripes(), square_hole()
    holed = image * known
    assert torch.equal(
        exemplar_fill(holed, known)[known.expand_as(image) > 0.5],
        holed[known.expand_as(image) > 0.5],
    )


def test_texture_is_continued_where_a_smooth_fill_blurs_it():
    image, known = stripes(), square_hole()
    holed = image * known
    smooth = hole_psnr(push_pull_fill(holed, known), image, known)
    exemplar = hole_psnr(exemplar_fill(holed, known), image, known)
    assert exemplar > smooth + 8.0, (exemplar, smooth)


def test_copied_texture_takes_the_light_of_where_it_lands():
    """Stripes under a left-to-right light ramp, hole in the bright middle-right: patches match
    best where the texture is, but their brightness follows the ramp at the hole."""
    image = stripes()
    ramp = torch.linspace(0.3, 1.0, image.shape[-1]).view(1, 1, 1, -1)
    lit = (image + 1) / 2 * ramp * 2 - 1
    known = square_hole(left=56)
    filled = exemplar_fill(lit * known, known)
    hole = known[0, 0] < 0.5
    columns = hole.any(0)
    fill_columns = filled[0].mean(0)[:, columns].sum(0) / hole[:, columns].sum(0)
    truth_columns = lit[0].mean(0)[:, columns].sum(0) / hole[:, columns].sum(0)
    assert (fill_columns - truth_columns).abs().max() < 0.08


def test_deterministic_for_a_seed():
    image, known = stripes(), square_hole()
    assert torch.equal(
        exemplar_fill(image * known, known, seed=3), exemplar_fill(image * known, known, seed=3)
    )


def test_batch_items_filled_each_with_its_own_hole():
    image = stripes().expand(2, -1, -1, -1).clone()
    known = torch.cat([square_hole(), square_hole(top=10, left=10, side=12)])
    filled = exemplar_fill(image * known, known)
    for b in range(2):
        alone = exemplar_fill(image[b : b + 1] * known[b : b + 1], known[b : b + 1])
        assert hole_psnr(filled[b : b + 1], image[b : b + 1], known[b : b + 1]) > 20
        assert alone.shape == (1, 3, 96, 96)


def test_no_complete_patch_to_copy_falls_back_to_the_smooth_fill():
    image = stripes(12, 12)
    known = torch.ones(1, 1, 12, 12)
    known[..., ::3, :] = 0.0  # every third row missing: no 7x7 patch is entirely known
    filled = exemplar_fill(image * known, known)
    assert torch.isfinite(filled).all()
    assert torch.allclose(filled, push_pull_fill(image * known, known), atol=1e-5)


def test_a_mask_over_everything_is_refused_naming_the_mask():
    with pytest.raises(ValueError, match="mask"):
        exemplar_fill(stripes(), torch.zeros(1, 1, 96, 96))


def test_context_is_bounded_by_the_hole_not_the_image():
    known = torch.ones(1000, 1000, dtype=torch.bool)
    known[500:520, 600:640] = False
    rows, cols = hole_context(known)
    assert (rows.start, rows.stop) == (468, 552)
    assert (cols.start, cols.stop) == (560, 680)
    assert hole_context(torch.ones(8, 8, dtype=torch.bool)) is None


@pytest.mark.parametrize(
    ("size", "hole"),
    [(64, (20, 30)), (96, (10, 86)), (700, (100, 600)), (64, (31, 33))],
    ids=["small", "wide", "shrunk to the work size", "a 2-px hole"],
)
def test_the_fill_ticks_its_progress_once_per_round_to_the_planned_end(size, hole):
    """exemplar_fill_rounds says how long the bar is (the sampler makes it before filling);
    the fill reaches exactly that, a hole that vanishes at the work size included."""
    image = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    known = torch.ones(2, 1, size, size)
    known[0, :, hole[0] : hole[1], hole[0] : hole[1]] = 0
    known[1, :, hole[0] : hole[1], : hole[1] - hole[0]] = 0
    ticks: list[int] = []
    exemplar_fill(image, known, tick=partial(ticks.append, 1))
    assert exemplar_fill_rounds(known) >= 2 * EM_ITERATIONS
    assert len(ticks) == exemplar_fill_rounds(known)
