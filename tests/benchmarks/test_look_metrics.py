"""The look benchmark's metrics on synthetic photos: each must see the failure it is there for
(a dark veil, an oval at the mask's edge, light from the wrong side, a tint, changes outside)."""

from __future__ import annotations

import numpy as np
import pytest

from relight_inpaint.benchmarks.look import (
    colour_shift,
    dark_side_ratio,
    edge_step,
    edge_step_max,
    ellipse_mask,
    exposure_ratio,
    flat_against_input,
    follows,
    outside_changed,
    srgb_to_lab,
)

HEIGHT, WIDTH = 96, 128


def photo(seed: int = 0) -> np.ndarray:
    """A textured photo: a smooth gradient with noise, so edges and halves are not trivial."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH] / max(HEIGHT, WIDTH)
    base = 0.35 + 0.25 * np.stack([xx, yy, 0.5 * (xx + yy)], axis=-1)
    return np.clip(base + rng.normal(0, 0.02, base.shape), 0, 1).astype(np.float32)


def face() -> np.ndarray:
    return ellipse_mask(HEIGHT, WIDTH, (64, 48), (30, 36))


def lit_from(image: np.ndarray, mask: np.ndarray, side: str) -> np.ndarray:
    """Inside the mask, brighter toward `side` and darker away from it."""
    ramp = np.linspace(0.6, 1.4, WIDTH)[None, :, None]
    gain = ramp if side == "right" else ramp[:, ::-1]
    return np.where(mask[..., None] > 0.5, np.clip(image * gain, 0, 1), image)


def test_a_dark_veil_inside_an_ellipse_is_underexposed_with_a_large_edge_step():
    before, mask = photo(), face()
    after = np.where(mask[..., None] > 0.5, before * 0.38, before)
    assert exposure_ratio(before, after, mask) < 0.5
    assert dark_side_ratio(before, after, mask) < 0.5
    assert edge_step(before, after, mask) > 8.0
    assert edge_step_max(before, after, mask) >= edge_step(before, after, mask)


def test_an_unchanged_image_has_no_step_no_colour_shift_and_nothing_changed_outside():
    before, mask = photo(), face()
    after = before.copy()
    assert exposure_ratio(before, after, mask) == pytest.approx(1.0)
    assert edge_step(before, after, mask) == pytest.approx(0.0, abs=1e-9)
    assert edge_step_max(before, after, mask) == pytest.approx(0.0, abs=1e-9)
    assert colour_shift(before, after, mask) == pytest.approx(0.0, abs=1e-9)
    assert outside_changed(before, after, mask) == 0.0


def test_a_step_moved_outward_is_caught_by_the_max_over_offsets():
    """A veil over the mask grown by 8 px: no step where the user painted, one further out."""
    before, mask = photo(), face()
    grown = ellipse_mask(HEIGHT, WIDTH, (64, 48), (38, 44))
    after = np.where(grown[..., None] > 0.5, before * 0.5, before)
    assert edge_step(before, after, mask) < 1.0
    assert edge_step_max(before, after, mask) > 8.0


def test_the_photos_own_edge_at_the_mask_is_no_step():
    """Only the step the relight adds counts, not one the photo had there."""
    before, mask = photo(), face()
    before = np.where(mask[..., None] > 0.5, before * 0.6, before)  # an edge in the photo
    assert edge_step(before, before.copy(), mask) == pytest.approx(0.0, abs=1e-9)
    veiled = np.where(mask[..., None] > 0.5, before * 0.5, before)
    assert edge_step(before, veiled, mask) > 5.0


def test_light_from_the_right_follows_and_swapped_does_not():
    before, mask = photo(), face()
    right, left = lit_from(before, mask, "right"), lit_from(before, mask, "left")
    assert follows(right, left, mask) > 0.5
    assert follows(left, right, mask) < -0.5


def test_a_per_channel_tint_shifts_colour():
    before, mask = photo(), face()
    tinted = np.where(mask[..., None] > 0.5, np.clip(before * [0.85, 0.95, 1.15], 0, 1), before)
    assert colour_shift(before, tinted, mask) > 2.0
    grey = np.where(mask[..., None] > 0.5, before * 0.9, before)  # darker, same chromaticity
    assert colour_shift(before, grey, mask) < colour_shift(before, tinted, mask)


def test_changes_outside_the_final_mask_are_counted_and_inside_ones_are_not():
    before, mask = photo(), face()
    after = before.copy()
    after[mask > 0.5] *= 0.5
    assert outside_changed(before, after, mask) == 0.0
    after[:10, :] = 1.0  # a shadow painted on the wall above
    share = outside_changed(before, after, mask)
    assert share == pytest.approx(10 * WIDTH / (mask <= 0).sum(), rel=1e-6)
    feathered = np.maximum(mask, 0.01 * ellipse_mask(HEIGHT, WIDTH, (64, 48), (40, 46)))
    in_feather = np.where(feathered[..., None] > 0, before * 0.9, before)
    assert outside_changed(before, in_feather, feathered) == 0.0  # faint feather is inside
    assert outside_changed(before, in_feather, mask) > 0.0


def test_lab_of_white_and_mid_grey():
    lab = srgb_to_lab(np.array([[1.0, 1.0, 1.0], [0.5, 0.5, 0.5]]))
    assert lab[0] == pytest.approx([100.0, 0.0, 0.0], abs=0.05)
    assert lab[1, 0] == pytest.approx(53.4, abs=0.2) and np.abs(lab[1, 1:]).max() < 0.05


def test_a_plaster_face_is_flat_and_a_relit_one_is_not():
    image, mask = photo(), face()
    relit = lit_from(image, mask, "right")
    plaster = np.where(mask[..., None] > 0.5, np.float32(0.5), image)
    assert flat_against_input(image, relit, mask) < 0.05
    assert flat_against_input(image, plaster, mask) > 0.7  # all but its rim, where windows
    # reach the photo outside
