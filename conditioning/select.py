"""Click selection: a few inside / outside clicks, a rough box or a scribble turned into a mask
snapped to the image's edges, with OpenCV's GrabCut (colour models + graph cut, no weights).

Clicks are points in image pixels. Inside clicks become small certain-foreground disks, outside
clicks certain-background disks; the region GrabCut may call foreground starts as a box around
the inside clicks (or the user's box / rough mask), grown so an object larger than the clicks'
spread is still reached. Only the connected parts that hold an inside click are kept, so a
stray patch of similar colour elsewhere does not join the selection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

WORK_SIDE = 512  # GrabCut runs at most this long side; the mask is scaled back up
CLICK_RADIUS = 0.012  # of the working image's diagonal
REACH = 0.06  # radius of the possible foreground around the first inside clicks, of the diagonal
ITERATIONS = 5


class SelectionError(ValueError):
    """Bad clicks / box text; `field` names the part of the input that is wrong."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field


@dataclass
class Clicks:
    """Clicks in the order they were made: (x, y, inside)."""

    points: list[tuple[float, float, bool]] = field(default_factory=list)
    box: tuple[float, float, float, float] | None = None
    size: tuple[float, float] | None = None  # the image size the clicks were made on

    def at_size(self, width: int, height: int) -> Clicks:
        """The clicks in pixels of an image this size (the page may click on a preview)."""
        if self.size is None:
            return self
        return self.scaled(width / self.size[0], height / self.size[1])

    def scaled(self, sx: float, sy: float) -> Clicks:
        """The clicks with x scaled by sx and y by sy (in pixels: no `size` left)."""
        box = (
            (self.box[0] * sx, self.box[1] * sy, self.box[2] * sx, self.box[3] * sy)
            if self.box
            else None
        )
        return Clicks([(x * sx, y * sy, inside) for x, y, inside in self.points], box)

    @property
    def inside(self) -> list[tuple[float, float]]:
        return [(x, y) for x, y, inside in self.points if inside]

    @property
    def outside(self) -> list[tuple[float, float]]:
        return [(x, y) for x, y, inside in self.points if not inside]

    def add(self, x: float, y: float, inside: bool) -> None:
        self.points.append((x, y, inside))

    def first(self, count: int) -> Clicks:
        return Clicks(self.points[:count], self.box, self.size)

    def empty(self) -> bool:
        return not self.inside and not self.box


def parse_clicks(text: str) -> Clicks:
    """`{"points": [[x, y, 1], [x, y, 0], ...], "box": [x0, y0, x1, y1]}`: clicks in order,
    1 = inside the object, 0 = outside (what the node's page widget writes).

    Also takes `"inside"` / `"outside"` lists, and a plain list of points (`[[x, y], ...]` or
    `[{"x": .., "y": ..}, ...]`, as other point editors write them) as inside clicks. Empty
    text is no clicks.
    """
    if not text.strip():
        return Clicks()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SelectionError("points", f"not valid JSON ({error.msg})") from None
    if isinstance(data, list):
        data = {"inside": data}
    if not isinstance(data, dict):
        raise SelectionError("points", "expected an object with points / inside / outside / box")
    unknown = sorted(set(data) - {"points", "inside", "outside", "box", "size"})
    if unknown:
        raise SelectionError("points", f"unknown key {unknown[0]!r}")
    clicks = Clicks(_labelled_points(data.get("points", [])))
    for key, inside in (("inside", True), ("outside", False)):
        clicks.points += [(x, y, inside) for x, y in _points(key, data.get(key, []))]
    if data.get("box") is not None:
        box = data["box"]
        if not isinstance(box, list) or len(box) != 4 or not all(_finite(v) for v in box):
            raise SelectionError("box", f"expected [x0, y0, x1, y1] (got {box!r})")
        x0, y0, x1, y1 = (float(v) for v in box)
        clicks.box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
    if data.get("size") is not None:
        size = data["size"]
        if (
            not isinstance(size, list)
            or len(size) != 2
            or not all(_finite(v) and v > 0 for v in size)
        ):
            raise SelectionError("size", f"expected [width, height] > 0 (got {size!r})")
        clicks.size = (float(size[0]), float(size[1]))
    return clicks


def _labelled_points(value: object) -> list[tuple[float, float, bool]]:
    if not isinstance(value, list):
        raise SelectionError("points", "expected a list of [x, y, 1 or 0] clicks")
    points = []
    for point in value:
        if (
            not isinstance(point, list)
            or len(point) != 3
            or not all(map(_finite, point))
            or point[2] not in (0, 1)
        ):
            raise SelectionError("points", f"expected [x, y, 1 or 0] (got {point!r})")
        points.append((float(point[0]), float(point[1]), bool(point[2])))
    return points


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and np.isfinite(value)


def _points(name: str, value: object) -> list[tuple[float, float]]:
    if not isinstance(value, list):
        raise SelectionError(name, "expected a list of [x, y] points")
    points = []
    for point in value:
        if isinstance(point, dict):
            point = [point.get("x"), point.get("y")]
        if not isinstance(point, list | tuple) or len(point) != 2 or not all(map(_finite, point)):
            raise SelectionError(name, f"expected [x, y] numbers (got {point!r})")
        points.append((float(point[0]), float(point[1])))
    return points


def select(image: np.ndarray, clicks: Clicks, rough: np.ndarray | None = None) -> np.ndarray:
    """The selected region, float32 0/1 at the image's size.

    `image` is HxWx3 float in 0..1; `rough` an optional HxW mask of where the object roughly
    is (a scribble or a loose painted region): it seeds the possible foreground.
    """
    import cv2

    height, width = image.shape[:2]
    clicks = clicks.at_size(width, height)
    has_rough = rough is not None and bool((rough > 0.5).any())
    if clicks.empty() and not has_rough:
        return np.zeros((height, width), np.float32)
    scale = min(1.0, WORK_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    pixels = np.ascontiguousarray((small.clip(0, 1) * 255).round().astype(np.uint8))
    rough_small = None
    if has_rough:
        rough_small = cv2.resize(rough.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    selected = replay(pixels, clicks.scaled(scale, scale), rough_small)
    if scale < 1.0:
        up = cv2.resize(
            selected.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR
        )
        return (up > 0.5).astype(np.float32)
    return selected.astype(np.float32)


def replay(pixels: np.ndarray, clicks: Clicks, rough: np.ndarray | None) -> np.ndarray:
    """Select as a user's session would: the first inside click (or the box / rough mask)
    makes a selection, and each later click corrects the one before it, so a click near an
    edge changes that edge rather than starting over."""
    first = max(1, next((i + 1 for i, p in enumerate(clicks.points) if p[2]), 1))
    if clicks.box or rough is not None:
        first = 0
    trimap = seed_trimap(pixels.shape[:2], clicks.first(first), rough)
    selected = keep_clicked_parts(run_grabcut(pixels, trimap), clicks.first(first))
    for count in range(first + 1, len(clicks.points) + 1):
        trimap = correction_trimap(selected, clicks.first(count))
        selected = keep_clicked_parts(run_grabcut(pixels, trimap), clicks.first(count))
    return selected


def correction_trimap(selected: np.ndarray, clicks: Clicks) -> np.ndarray:
    """The last selection as GrabCut's possible labels, every click so far as certain."""
    import cv2

    trimap = np.where(selected, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    _mark_clicks(trimap, clicks)
    return trimap


def _mark_clicks(trimap: np.ndarray, clicks: Clicks) -> None:
    import cv2

    diagonal = float(np.hypot(*trimap.shape))
    radius = max(2, round(CLICK_RADIUS * diagonal))
    for x, y, inside in clicks.points:
        label = cv2.GC_FGD if inside else cv2.GC_BGD
        cv2.circle(trimap, (round(x), round(y)), radius, int(label), -1)


def seed_trimap(shape: tuple[int, int], clicks: Clicks, rough: np.ndarray | None) -> np.ndarray:
    """GrabCut's initial labels: certain where clicked, possible foreground near the clicks,
    inside the box or under the rough mask, possible background elsewhere."""
    import cv2

    height, width = shape
    diagonal = float(np.hypot(height, width))
    trimap = np.full(shape, cv2.GC_PR_BGD, np.uint8)
    possible = np.zeros(shape, bool)
    if clicks.box:
        x0, y0, x1, y1 = (int(round(v)) for v in clicks.box)
        possible[max(0, y0) : max(0, y1) + 1, max(0, x0) : max(0, x1) + 1] = True
    if rough is not None:
        possible |= rough > 0.5
    if clicks.inside and not clicks.box:
        seed = np.zeros(shape, np.uint8)
        for x, y in clicks.inside:
            cv2.circle(seed, (round(x), round(y)), round(REACH * diagonal), 1, -1)
        possible |= seed > 0
    outlined = clicks.box is not None or rough is not None
    trimap[possible] = cv2.GC_PR_FGD
    if outlined:  # a box or a rough outline: what is outside it is background
        trimap[~possible] = cv2.GC_BGD
    elif not possible[[0, -1], :].any() and not possible[:, [0, -1]].any():
        _border_is_background(trimap)
    _mark_clicks(trimap, clicks)
    if not (trimap == cv2.GC_PR_BGD).any() and not (trimap == cv2.GC_BGD).any():
        _border_is_background(trimap)  # GrabCut needs some background to model
    return trimap


def _border_is_background(trimap: np.ndarray) -> None:
    import cv2

    trimap[[0, -1], :] = cv2.GC_BGD
    trimap[:, [0, -1]] = cv2.GC_BGD


def run_grabcut(pixels: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    import cv2

    labels = trimap.copy()
    background = np.zeros((1, 65), np.float64)
    foreground = np.zeros((1, 65), np.float64)
    has_both = ((labels == cv2.GC_BGD) | (labels == cv2.GC_PR_BGD)).any() and (
        (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    ).any()
    if not has_both:
        return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)
    cv2.setRNGSeed(0)
    cv2.grabCut(pixels, labels, None, background, foreground, ITERATIONS, cv2.GC_INIT_WITH_MASK)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def keep_clicked_parts(selected: np.ndarray, clicks: Clicks) -> np.ndarray:
    """Only the connected parts holding an inside click (every part when there is none: a box
    or rough mask already bounds them), with their small holes filled."""
    import cv2

    count, labels = cv2.connectedComponents(selected.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    height, width = selected.shape
    for x, y in clicks.inside:
        row, col = min(height - 1, max(0, round(y))), min(width - 1, max(0, round(x)))
        keep[labels[row, col]] = True
    if not clicks.inside:
        keep[:] = True
    keep[0] = False
    kept = keep[labels]
    return fill_small_holes(kept, max_share=0.01)


def fill_small_holes(mask: np.ndarray, max_share: float) -> np.ndarray:
    """Fill enclosed background pockets smaller than `max_share` of the image (specular spots
    and dark markings inside an object), not large enclosed regions a user cut out."""
    import cv2

    holes = (~mask).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(holes, connectivity=4)
    height, width = mask.shape
    filled = mask.copy()
    for label in range(1, count):
        x, y, w, h, area = stats[label]
        touches_border = x == 0 or y == 0 or x + w == width or y + h == height
        if not touches_border and area <= max_share * mask.size:
            filled[labels == label] = True
    return filled
