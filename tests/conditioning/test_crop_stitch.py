"""Crop planning: regions, context, merging, the image border, working sizes."""

from __future__ import annotations

import pytest
import torch

from relight_inpaint.conditioning.crop_stitch import (
    MAX_CROPS,
    MIN_CONTEXT,
    Box,
    crop_map,
    fitted_job,
    plan_crops,
    region_boxes,
    work_size,
)


def mask_with(height, width, *boxes):
    mask = torch.zeros(height, width)
    for top, left, bottom, right in boxes:
        mask[top:bottom, left:right] = 1.0
    return mask


def test_region_boxes_are_exact_to_the_pixel_even_on_a_coarse_grid():
    mask = mask_with(5000, 3000, (1001, 17, 1013, 40), (4000, 2900, 4999, 3000))
    mask[1005, 42] = 0.01  # a faint soft-edge pixel belongs to the region
    boxes = sorted(region_boxes(mask), key=lambda b: b.top)
    assert boxes == [Box(1001, 17, 1013, 43), Box(4000, 2900, 4999, 3000)]


def test_context_is_a_share_of_the_region_and_clipped_not_shifted_at_the_border():
    mask = mask_with(1000, 1000, (0, 400, 100, 500))  # touches the top border
    plan = plan_crops(mask, context=0.5, min_side=0)
    assert plan.boxes == [Box(0, 350, 150, 550)]  # no context above, none moved below
    assert plan.warnings == []


def test_tiny_regions_get_at_least_the_minimum_context_and_side():
    mask = mask_with(1000, 1000, (500, 500, 502, 502))
    (box,) = plan_crops(mask, context=0.0, min_side=128).boxes
    assert box.height == box.width == 128
    assert box.top <= 500 - MIN_CONTEXT // 2 and box.bottom >= 502 + MIN_CONTEXT // 2


def test_disjoint_regions_are_separate_crops_and_close_ones_merge():
    far = mask_with(2000, 2000, (100, 100, 200, 200), (1500, 1500, 1600, 1600))
    assert len(plan_crops(far, 0.5, 0).boxes) == 2
    near = mask_with(2000, 2000, (100, 100, 200, 200), (100, 260, 200, 360))
    (merged,) = plan_crops(near, 0.5, 0).boxes
    assert merged.left <= 50 and merged.right >= 410


def test_hundreds_of_regions_are_merged_to_the_cap_and_said_so():
    mask = torch.zeros(3000, 3000)
    mask[5::150, 5::150] = 1.0  # 400 single pixels, far apart
    plan = plan_crops(mask, context=0.0, min_side=0)
    assert len(plan.boxes) <= MAX_CROPS
    assert any("400 separate regions" in w for w in plan.warnings)
    covered = torch.zeros_like(mask)
    for box in plan.boxes:
        covered[box.slices] = 1.0
    assert bool((covered[mask > 0] == 1).all())  # every region still inside a crop


def test_a_mask_over_most_of_the_image_is_one_whole_image_crop_said_so():
    mask = mask_with(400, 600, (20, 20, 380, 580))
    plan = plan_crops(mask, 0.5, 0)
    assert plan.boxes == [Box(0, 0, 400, 600)]
    assert plan.warnings == [
        "one whole-image crop: the mask (84% of the photo) with its context covers 100%"
    ]


def test_the_whole_image_note_gives_the_masks_own_share_not_its_bounding_boxs():
    # a thin diagonal band: its bounding box is the whole photo, its pixels about a tenth of it
    rows, cols = torch.meshgrid(torch.arange(400), torch.arange(400), indexing="ij")
    mask = ((rows - cols).abs() < 20).float()
    plan = plan_crops(mask, 0.5, 0)
    assert plan.boxes == [Box(0, 0, 400, 400)]
    assert plan.warnings == [
        "one whole-image crop: the mask (10% of the photo) with its context covers 100%"
    ]


def test_an_empty_mask_plans_nothing_and_a_bad_context_is_named():
    assert plan_crops(torch.zeros(64, 64), 0.5, 0).boxes == []
    with pytest.raises(ValueError, match="^context: expected a number >= 0"):
        plan_crops(torch.ones(64, 64), float("nan"), 0)


def test_work_size_never_upscales_the_packs_model_and_brings_iclight_to_its_range():
    small, large = Box(0, 0, 300, 200), Box(0, 0, 3000, 2000)
    assert work_size(small, 512, 8) == (304, 200)  # 1:1, rounded to the nearest multiple
    assert work_size(large, 512, 8) == (512, 344)
    assert work_size(small, 512, 64, upscale=True) == (512, 320)


def test_crop_map_cuts_a_map_of_another_size_in_proportion():
    depth = torch.arange(100.0).view(1, 10, 10, 1).expand(1, 10, 10, 3)
    part = crop_map(depth, Box(500, 200, 1000, 600), (1000, 1000))
    assert part.shape == (1, 5, 4, 3)
    assert float(part[0, 0, 0, 0]) == 52.0


def test_bounding_box_covers_every_region_and_is_none_for_an_empty_mask():
    from relight_inpaint.conditioning.crop_stitch import bounding_box

    mask = mask_with(300, 400, (10, 20, 30, 40), (200, 300, 250, 390))
    assert bounding_box(mask) == Box(10, 20, 250, 390)
    assert bounding_box(torch.zeros(50, 50)) is None


def test_a_small_crop_keeps_its_shape_at_the_models_multiple():
    """A 168 px wide photo is not stretched to 176: the box narrows to 160 about the region."""
    mask = mask_with(192, 168, (25, 17, 186, 151))
    box, size = fitted_job(Box(0, 0, 192, 168), 512, 16, mask)
    assert size == (192, 160) and (box.height, box.width) == size
    assert box.left <= 17 and box.right >= 151  # every masked pixel kept
    assert work_size(Box(0, 0, 192, 168), 512, 16) == (192, 176)  # what it was: 5 % wider


def test_a_downscaled_crop_keeps_its_shape_and_a_full_width_region_keeps_its_box():
    mask = mask_with(3000, 4000, (1000, 500, 2001, 3333))
    box = Box(900, 400, 2101, 3433)
    fitted, size = fitted_job(box, 1024, 16, mask)
    assert size == work_size(box, 1024, 16)
    assert abs(fitted.height / fitted.width - size[0] / size[1]) < 1e-3
    assert abs(box.height / box.width - size[0] / size[1]) > 4e-3  # the stretch it had
    two = mask_with(192, 400, (25, 17, 186, 151), (25, 300, 186, 380))  # another crop's region
    grown, size = fitted_job(Box(0, 0, 192, 168), 512, 16, two)  # room to widen: 176
    assert size == (192, 176) and (grown.height, grown.width) == size and grown.left == 0
    wide = mask_with(192, 168, (25, 0, 186, 168))  # no narrower box holds it
    assert fitted_job(Box(0, 0, 192, 168), 512, 16, wide) == (
        Box(0, 0, 192, 168),
        work_size(Box(0, 0, 192, 168), 512, 16),
    )
