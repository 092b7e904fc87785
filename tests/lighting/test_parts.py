"""A silhouette's parts: convexity, and the inner contours where one part passes before another."""

from __future__ import annotations

import torch

from relight_inpaint.lighting.normals import inflate_heights
from relight_inpaint.lighting.parts import (
    CONVEX_SOLIDITY,
    inner_contours,
    parts_heights,
    solidity,
)

SIZE = 160


def disc(cx: float, cy: float, radius: float) -> torch.Tensor:
    rows, cols = torch.meshgrid(torch.arange(SIZE), torch.arange(SIZE), indexing="ij")
    return (cols - cx) ** 2 + (rows - cy) ** 2 < radius**2


def snowman() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(silhouette [H,W] bool, image [H,W,3], the head's outline across the body [H,W] bool, a
    painted dot on the body [H,W] bool): a head passing in front of a body with two arms, of
    another shade, the body carrying a small dark spot."""
    body = disc(80, 108, 42) | disc(32, 90, 13) | disc(128, 90, 13)
    head = disc(80, 52, 30)
    dot = disc(65, 125, 4)
    image = torch.full((SIZE, SIZE, 3), 0.1)
    image[body] = 0.45
    image[head] = 0.75
    image[dot] = 0.15
    rim = head & ~disc(80, 52, 27)  # the head's outline, 3 px wide
    return body | head, image, rim & body, dot


def test_a_disc_is_convex_and_two_parts_are_not():
    silhouette, *_ = snowman()
    assert float(solidity(disc(80, 80, 50)[None])[0]) > 0.97
    assert float(solidity(silhouette[None])[0]) < CONVEX_SOLIDITY
    assert float(solidity(torch.zeros(1, 8, 8, dtype=torch.bool))[0]) == 1.0


def test_the_head_passing_before_the_body_is_an_inner_contour_and_a_painted_dot_is_not():
    silhouette, image, crossing, dot = snowman()
    contours = inner_contours(image, silhouette)
    assert float(contours[crossing].float().mean()) > 0.5
    near_dot = disc(65, 125, 9)
    assert not bool(contours[near_dot].any())
    assert not bool(contours[~silhouette].any())


def test_each_part_is_rounded_on_its_own_where_the_silhouette_has_parts():
    """The heights dip along the head's outline across the body (its surface turns away there),
    and a convex silhouette keeps its plain dome whatever its texture shows."""
    silhouette, image, crossing, _ = snowman()
    plain = inflate_heights(silhouette.float()[None])[0]
    parted = parts_heights(image[None], silhouette[None])[0]
    assert float((parted[crossing] / plain[crossing]).mean()) < 0.85
    round_one = disc(80, 80, 60)
    striped = torch.full((SIZE, SIZE, 3), 0.5)
    striped[:, 70:90] = 0.9  # a long painted band across a ball
    assert torch.equal(
        parts_heights(striped[None], round_one[None])[0],
        inflate_heights(round_one.float()[None])[0],
    )
