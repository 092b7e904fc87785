"""Click selection: a few inside / outside clicks, a rough box or a scribble turned into a mask
snapped to the image's edges, with OpenCV's GrabCut (colour models + graph cut, no weights).

Clicks are points in image pixels. Inside clicks become small certain-foreground disks, outside
clicks certain-background disks; the region GrabCut may call foreground starts as a box around
the inside clicks (or the user's box / rough mask), grown so an object larger than the clicks'
spread is still reached. Only the connected parts that hold an inside click are kept, so a
stray patch of similar colour elsewhere does not join the selection.

Each later click is an edit of the selection (`hybrid_edit`): a watershed of the colour
gradient and GrabCut's correction each propose a change near the click, and the one whose
outline lies on the stronger edges is kept (docs/click_select.md has the measurements).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

WORK_SIDE = 512  # GrabCut runs at most this long side; the mask is scaled back up
CLICK_RADIUS = 0.012  # of the working image's diagonal
# A click's disk reaches at most to the nearest strong edge (the colour gradient's top tenth),
# and no less than this share of CLICK_RADIUS: a disk wider than a pencil (6 px at the working
# size, 16 px of disk) marked the table under it as certainly the object. 24 photos, 5
# simulated clicks: mean IoU 0.929 -> 0.933, worst tenth 0.833 -> 0.861, the horse's legs
# 0.82 -> 0.95, the cup unchanged (0.870); the least share 0.25 lost the cup (0.68).
STRONG_EDGE_PERCENTILE = 90
MIN_CLICK_SHARE = 0.5
REACH = 0.06  # radius of the possible foreground around the first inside clicks, of the diagonal
# The first selection's GrabCut rounds. 24 photos by the click simulator, 5 clicks: 5 rounds
# mean IoU 0.894, worst tenth 0.475, figurines 0.949; 3 rounds 0.894, 0.474, 0.945, and the
# first click's preview on a 1 MP photo 0.61 -> 0.52 s.
ITERATIONS = 3
CORRECTION_ITERATIONS = 1  # a later click's GrabCut correction starts from the selection
CORRECTION_SIDE = 256  # px: the correction runs at most this long a side in its window
WINDOW_MARGIN = 0.08  # the correction's window: the selection and click's box grown this much
MIN_BOX = 2.0  # px: a box narrower than this is a click
KNOWN_STEPS = 64  # selections remembered per (image, clicks so far): a click works one step
CORE_MARGIN = 0.01  # the selection's core (eroded by this much of the diagonal) floods as object
EDGE_SIGMA = 1.0  # px of smoothing before the gradient the watershed floods
PERSON_THRESHOLD = 0.5  # a first click where the person matte is above this starts from it
PERSON_SURE = 0.9  # the matte's core above this (eroded as the selection's core) is certain

_steps: OrderedDict[tuple, np.ndarray] = OrderedDict()
_steps_lock = threading.Lock()


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
    room: tuple[float, ...] | None = None  # px per click: how far its disk may reach (with_room)

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

    def within(self, width: int, height: int) -> Clicks:
        """Only the clicks on the image (one outside it selects nothing); a box of no size
        (a click that did not move) becomes an inside click at its place."""
        points = [(x, y, i) for x, y, i in self.points if 0 <= x <= width and 0 <= y <= height]
        box = self.box
        if box and (box[2] - box[0] < MIN_BOX or box[3] - box[1] < MIN_BOX):
            points.append(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2, True))
            box = None
        if box:
            box = (max(0.0, box[0]), max(0.0, box[1]), min(width, box[2]), min(height, box[3]))
            if box[2] - box[0] < MIN_BOX or box[3] - box[1] < MIN_BOX:
                box = None  # wholly outside the image
        return Clicks([p for p in points if 0 <= p[0] <= width and 0 <= p[1] <= height], box)

    def add(self, x: float, y: float, inside: bool) -> None:
        self.points.append((x, y, inside))

    def first(self, count: int) -> Clicks:
        room = None if self.room is None else self.room[:count]
        return Clicks(self.points[:count], self.box, self.size, room)

    def disk(self, shape: tuple[int, int], index: int, grow: float = 1.0) -> np.ndarray:
        """The disk of click `index` (negative counts from the end) on an image of `shape`."""
        x, y, _ = self.points[index]
        return click_disk(shape, x, y, grow, None if self.room is None else self.room[index])

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


# hybrid (shipped): each later click is the better-edged of an edit and a GrabCut correction,
# both only adding / removing near the click; edits: the edit alone; grabcut: GrabCut replay
METHODS = ("hybrid", "edits", "grabcut")


def select(
    image: np.ndarray,
    clicks: Clicks,
    rough: np.ndarray | None = None,
    person: np.ndarray | None = None,
    method: str = "hybrid",
) -> np.ndarray:
    """The selected region, float32 0/1 at the image's size.

    `image` is HxWx3 float in 0..1; `rough` an optional HxW mask of where the object roughly
    is (a scribble or a loose painted region): it seeds the possible foreground. `person` an
    optional HxW 0..1 person matte (a person segmenter's): a first click on a person starts
    from it. `method` "edits" (the edit alone) and "grabcut" (GrabCut replaying every click)
    are the methods before the hybrid, kept to be measured.
    """
    import cv2

    if method not in METHODS:
        raise ValueError(f"method: expected one of {METHODS}, got {method!r}")
    height, width = image.shape[:2]
    clicks = clicks.at_size(width, height).within(width, height)
    has_rough = rough is not None and bool((rough > 0.5).any())
    if clicks.empty() and not has_rough:
        return np.zeros((height, width), np.float32)
    scale = min(1.0, WORK_SIDE / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image.astype(np.float32), size, interpolation=cv2.INTER_AREA)
    pixels = np.ascontiguousarray((small.clip(0, 1) * 255).round().astype(np.uint8))
    rough_small = _resized(rough, size) if has_rough else None
    clicks = clicks.scaled(scale, scale)
    if method == "grabcut":
        selected = replay(pixels, clicks, rough_small)
    else:
        person_small = _resized(person, size) if person is not None else None
        selected = replay_edits(pixels, clicks, rough_small, person_small, method)
    if scale < 1.0:
        up = cv2.resize(
            selected.astype(np.float32), (width, height), interpolation=cv2.INTER_LINEAR
        )
        return (up > 0.5).astype(np.float32)
    return selected.astype(np.float32)


def _resized(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    import cv2

    return cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA)


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


def replay_edits(
    pixels: np.ndarray,
    clicks: Clicks,
    rough: np.ndarray | None,
    person: np.ndarray | None,
    method: str = "hybrid",
) -> np.ndarray:
    """Select as a user's session would, each click an edit of the selection before it: the
    first inside click (or the box / rough mask) makes a selection; each later left click only
    adds the part connected to it, each right click only removes the part connected to it
    (`method` "hybrid": `hybrid_edit`, "edits": `edit`)."""
    step = hybrid_edit if method == "hybrid" else edit
    edges = edge_map(pixels)
    clicks = with_room(edges, clicks)
    sure = sure_person(person) if person is not None else None
    first = max(1, next((i + 1 for i, p in enumerate(clicks.points) if p[2]), 1))
    if clicks.box or rough is not None:
        first = 0
    session = _session_key(pixels, rough, person, clicks.box, method)
    done, selected = _known_steps(session, clicks, first)
    if selected is None:
        done, selected = first, first_selection(pixels, clicks.first(first), rough, person, sure)
        _remember(session, clicks.first(first), selected)
    for count in range(done + 1, len(clicks.points) + 1):
        keep = kept_person(sure, clicks.first(count))
        selected = step(pixels, selected, clicks.first(count), keep, edges)
        _remember(session, clicks.first(count), selected)
    return selected


def _session_key(pixels: np.ndarray, *arrays: object) -> bytes:
    """What a selection step depends on besides the clicks: the pixels, rough mask, person
    matte and box."""
    digest = hashlib.blake2b(np.ascontiguousarray(pixels).tobytes(), digest_size=16)
    for item in arrays:
        if isinstance(item, np.ndarray):
            digest.update(np.ascontiguousarray(item, dtype=np.float32).tobytes())
        digest.update(repr(item if not isinstance(item, np.ndarray) else item.shape).encode())
    return digest.digest()


def _known_steps(session: bytes, clicks: Clicks, first: int) -> tuple[int, np.ndarray | None]:
    """The longest run of these clicks already selected for this image (a page's session
    adds one click at a time: only the new click is worked)."""
    with _steps_lock:
        for count in range(len(clicks.points), first - 1, -1):
            known = _steps.get((session, tuple(clicks.points[:count])))
            if known is not None:
                _steps.move_to_end((session, tuple(clicks.points[:count])))
                return count, known.copy()
    return first, None


def _remember(session: bytes, clicks: Clicks, selected: np.ndarray) -> None:
    with _steps_lock:
        _steps[(session, tuple(clicks.points))] = selected.copy()
        while len(_steps) > KNOWN_STEPS:
            _steps.popitem(last=False)


def first_selection(
    pixels: np.ndarray,
    clicks: Clicks,
    rough: np.ndarray | None,
    person: np.ndarray | None,
    sure: np.ndarray | None = None,
) -> np.ndarray:
    """The selection the first inside click (or box / rough mask) makes: GrabCut from a seed
    around the click, or from the person matte when the click is on a person (`sure`: its
    sure core, sure_person's, when the caller has it)."""
    trimap = seed_trimap(pixels.shape[:2], clicks, rough)
    if person is not None and rough is None and not clicks.box and clicks.inside:
        sure = sure_person(person) if sure is None else sure
        trimap = person_trimap(trimap, person, clicks, sure)
    return keep_clicked_parts(run_grabcut(pixels, trimap), clicks)


def sure_person(person: np.ndarray) -> np.ndarray:
    """The person matte's sure core: PERSON_SURE, eroded as a selection's core."""
    return core(person >= PERSON_SURE)


def person_trimap(
    trimap: np.ndarray, person: np.ndarray, clicks: Clicks, sure: np.ndarray
) -> np.ndarray:
    """The person matte as GrabCut's possible labels when the first click is on a person;
    its sure core (`sure`) certain."""
    import cv2

    if person[pixel_at(person.shape, *clicks.inside[0])] < PERSON_THRESHOLD:
        return trimap
    seeded = np.where(person >= PERSON_THRESHOLD, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    seeded[person < 0.05] = cv2.GC_BGD
    # The segmenter's sure core stays: a person's clothes of the backdrop's colour are kept.
    seeded[sure] = cv2.GC_FGD
    _mark_clicks(seeded, clicks)
    return seeded


def kept_person(sure: np.ndarray | None, clicks: Clicks) -> np.ndarray | None:
    """The person matte's sure core when the last click is a right click outside it: a right
    click beside a selected person (on the backdrop by her hair) removes the backdrop, never
    her face; one on the person herself (an arm) removes that part as any other."""
    if sure is None or clicks.points[-1][2]:
        return None
    return None if bool((sure & clicks.disk(sure.shape, -1)).any()) else sure


def edit(
    pixels: np.ndarray,
    selected: np.ndarray,
    clicks: Clicks,
    keep: np.ndarray | None = None,
    edges: np.ndarray | None = None,
) -> np.ndarray:
    """The selection after the last of `clicks` by the image's edges: the watershed (`flood`)
    proposes a new selection from the old one (every click certain); only the part of the
    change connected to the last click is taken, added for a left click, removed for a right
    one (never `keep`). `edges`: edge_map(pixels), when the caller has it already."""
    edges = edge_map(pixels) if edges is None else edges
    return take_clicked_part(selected, flood(edges, selected, clicks, keep), clicks, keep)


def take_clicked_part(
    selected: np.ndarray, proposed: np.ndarray, clicks: Clicks, keep: np.ndarray | None = None
) -> np.ndarray:
    """Of the change from `selected` to `proposed`, only the part connected to the last click:
    added for a left click, removed for a right one (less `keep`)."""
    x, y, inside = clicks.points[-1]
    disk = clicks.disk(selected.shape, -1)
    if inside:
        part = connected_at((proposed & ~selected) | disk, x, y)
        return fill_small_holes(selected | part, max_share=0.01)
    part = connected_at((selected & ~proposed) | (disk & selected), x, y)
    if keep is not None:
        part &= ~keep
    return selected & ~part


def hybrid_edit(
    pixels: np.ndarray,
    selected: np.ndarray,
    clicks: Clicks,
    keep: np.ndarray | None = None,
    edges: np.ndarray | None = None,
) -> np.ndarray:
    """The selection after the last of `clicks`: two candidates, each only adding (a left
    click) or removing (a right click) the part connected to the click, and the one whose
    outline lies on the stronger image edges is kept (mean colour gradient along it).

    The edit (`edit`: a watershed of the gradient) splits an object from a support of its
    colour (a cup on its saucer) but on a textured object can follow an edge inside it and
    take or drop a large piece; GrabCut's correction (`grabcut_edit`) keeps to where the colours
    change, so on such an object its outline is the one on the object's edge. `edges`:
    edge_map(pixels), when the caller has it already."""
    edges = edge_map(pixels) if edges is None else edges
    by_edits = edit(pixels, selected, clicks, keep, edges)
    by_colour = grabcut_edit(pixels, selected, clicks, keep)
    if insisted(selected, by_colour, by_edits, clicks):
        return by_edits
    return (
        by_colour
        if outline_strength(by_colour, edges) >= outline_strength(by_edits, edges)
        else by_edits
    )


def insisted(
    selected: np.ndarray, by_colour: np.ndarray, by_edits: np.ndarray, clicks: Clicks
) -> bool:
    """Whether the click repeats the one before it (same kind, on the region the edit changes)
    after GrabCut changed nothing there but the clicked spot, and does so again now: its colours
    do not separate that region, so the edit's fill is taken (else every such click would
    only punch a dot)."""
    if len(clicks.points) < 2 or clicks.points[-2][2] != clicks.points[-1][2]:
        return False
    spot = clicks.disk(selected.shape, -1, 1.5)
    if ((by_colour ^ selected) & ~spot).any():
        return False
    return bool(((by_edits ^ selected) & clicks.disk(selected.shape, -2, 2.0)).any())


def grabcut_edit(
    pixels: np.ndarray, selected: np.ndarray, clicks: Clicks, keep: np.ndarray | None = None
) -> np.ndarray:
    """GrabCut's correction of the selection (the selection as possible labels, every click
    certain), of which only the part connected to the last click is taken: added for a left
    click, removed for a right one. It runs in a window around the selection and the click
    (`WINDOW_MARGIN`) with `CORRECTION_ITERATIONS`: it starts from a selection, not from
    nothing, and the page waits for it after every click."""
    rows, cols = window(selected | clicks.disk(selected.shape, -1))
    trimap = correction_trimap(selected, clicks)
    proposed = selected.copy()  # outside the window: unchanged
    proposed[rows, cols] = correction(pixels[rows, cols], trimap[rows, cols])
    return take_clicked_part(selected, keep_clicked_parts(proposed, clicks), clicks, keep)


def correction(pixels: np.ndarray, trimap: np.ndarray) -> np.ndarray:
    """GrabCut on a window, at most `CORRECTION_SIDE` px a side (scaled back)."""
    import cv2

    from .composite import size_within

    height, width = trimap.shape
    size = size_within(height, width, CORRECTION_SIDE)
    if size == (height, width):
        return run_grabcut(np.ascontiguousarray(pixels), trimap, CORRECTION_ITERATIONS)
    small = cv2.resize(pixels, size[::-1], interpolation=cv2.INTER_AREA)
    labels = cv2.resize(trimap, size[::-1], interpolation=cv2.INTER_NEAREST)
    found = run_grabcut(small, labels, CORRECTION_ITERATIONS).astype(np.float32)
    return cv2.resize(found, (width, height), interpolation=cv2.INTER_LINEAR) > 0.5


def window(region: np.ndarray) -> tuple[slice, slice]:
    """The bounding box of `region` grown by `WINDOW_MARGIN` of the diagonal on every side."""
    height, width = region.shape
    margin = round(WINDOW_MARGIN * float(np.hypot(height, width)))
    rows, cols = np.nonzero(region.any(axis=1))[0], np.nonzero(region.any(axis=0))[0]
    return (
        slice(max(0, rows[0] - margin), min(height, rows[-1] + margin + 1)),
        slice(max(0, cols[0] - margin), min(width, cols[-1] + margin + 1)),
    )


def outline_strength(selected: np.ndarray, edges: np.ndarray) -> float:
    """The mean edge strength along the selection's outline (the image border is no outline;
    nothing or everything selected: 0)."""
    import cv2

    mask = selected.astype(np.uint8)
    kernel = np.ones((3, 3), np.uint8)
    outline = cv2.dilate(mask, kernel) > cv2.erode(mask, kernel)
    return float(edges[outline].mean()) if outline.any() else 0.0


def flood(
    edges: np.ndarray, selected: np.ndarray, clicks: Clicks, keep: np.ndarray | None = None
) -> np.ndarray:
    """Where the object is by the image's edges: a watershed of the colour gradient (`edges`,
    edge_map's) flooded from the inside clicks (and, for a left click, the selection's core;
    for a right one, what must be kept), against the outside clicks and the image border.
    Regions of one colour separated by an edge (a cup on its saucer) are split where the edge
    is; colour alone (GrabCut) cannot split them."""
    from skimage.segmentation import watershed

    markers = np.zeros(selected.shape, np.int32)
    if not selected[[0, -1], :].any() and not selected[:, [0, -1]].any():
        markers[[0, -1], :] = 2
        markers[:, [0, -1]] = 2
    if clicks.points[-1][2]:  # adding: the selection so far floods as object too
        markers[core(selected)] = 1
    elif keep is not None:
        markers[keep & selected] = 1
    for index, (_, _, inside) in enumerate(clicks.points):
        markers[clicks.disk(selected.shape, index)] = 1 if inside else 2
    return watershed(edges, markers) == 1


def core(selected: np.ndarray) -> np.ndarray:
    import cv2

    radius = max(1, round(CORE_MARGIN * float(np.hypot(*selected.shape))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.erode(selected.astype(np.uint8), kernel) > 0


def edge_map(pixels: np.ndarray) -> np.ndarray:
    """The colour gradient's magnitude (CIELAB, lightly smoothed so texture counts less)."""
    import cv2

    lab = cv2.cvtColor(cv2.GaussianBlur(pixels, (0, 0), EDGE_SIGMA), cv2.COLOR_RGB2LAB)
    lab = lab.astype(np.float32)
    gx = cv2.Sobel(lab, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(lab, cv2.CV_32F, 0, 1, ksize=3)
    return np.sqrt((gx**2 + gy**2).sum(axis=2))


def click_disk(
    shape: tuple[int, int], x: float, y: float, grow: float = 1.0, room: float | None = None
) -> np.ndarray:
    """The click's disk: CLICK_RADIUS (times `grow`), at most `grow` times its `room` and at
    least MIN_CLICK_SHARE of the full radius."""
    import cv2

    disk = np.zeros(shape, np.uint8)
    radius = max(2, round(grow * CLICK_RADIUS * float(np.hypot(*shape))))
    if room is not None:
        radius = max(round(MIN_CLICK_SHARE * radius), min(radius, round(grow * room)))
    cv2.circle(disk, (round(x), round(y)), max(2, radius), 1, -1)
    return disk > 0


def pixel_at(shape: tuple[int, ...], x: float, y: float) -> tuple[int, int]:
    """(row, col) of the pixel nearest (x, y), on the image."""
    height, width = shape[:2]
    return min(height - 1, max(0, round(y))), min(width - 1, max(0, round(x)))


def with_room(edges: np.ndarray, clicks: Clicks) -> Clicks:
    """The clicks with each one's room: its distance to the nearest strong edge (the top
    STRONG_EDGE_PERCENTILE of `edges`, edge_map's), so that a click on a thin part marks only
    it."""
    import cv2

    if not clicks.points:
        return clicks
    strong = edges > np.percentile(edges, STRONG_EDGE_PERCENTILE)
    distance = cv2.distanceTransform((~strong).astype(np.uint8), cv2.DIST_L2, 5)
    room = tuple(float(distance[pixel_at(distance.shape, x, y)]) for x, y, _ in clicks.points)
    return Clicks(clicks.points, clicks.box, clicks.size, room)


def connected_at(region: np.ndarray, x: float, y: float) -> np.ndarray:
    """The 8-connected part of `region` holding pixel (x, y) (empty when it is not in it)."""
    import cv2

    at = pixel_at(region.shape, x, y)
    if not region[at]:
        return np.zeros_like(region)
    _, labels = cv2.connectedComponents(region.astype(np.uint8), connectivity=8)
    return labels == labels[at]


def correction_trimap(selected: np.ndarray, clicks: Clicks) -> np.ndarray:
    """The last selection as GrabCut's possible labels, every click so far as certain."""
    import cv2

    trimap = np.where(selected, cv2.GC_PR_FGD, cv2.GC_PR_BGD).astype(np.uint8)
    _mark_clicks(trimap, clicks)
    return trimap


def _mark_clicks(trimap: np.ndarray, clicks: Clicks) -> None:
    import cv2

    for index, (_, _, inside) in enumerate(clicks.points):
        trimap[clicks.disk(trimap.shape, index)] = cv2.GC_FGD if inside else cv2.GC_BGD


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


def run_grabcut(pixels: np.ndarray, trimap: np.ndarray, iterations: int = ITERATIONS) -> np.ndarray:
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
    cv2.grabCut(pixels, labels, None, background, foreground, iterations, cv2.GC_INIT_WITH_MASK)
    return (labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD)


def keep_clicked_parts(selected: np.ndarray, clicks: Clicks) -> np.ndarray:
    """Only the connected parts holding an inside click (every part when there is none: a box
    or rough mask already bounds them), with their small holes filled."""
    import cv2

    count, labels = cv2.connectedComponents(selected.astype(np.uint8), connectivity=8)
    keep = np.zeros(count, bool)
    for x, y in clicks.inside:
        keep[labels[pixel_at(selected.shape, x, y)]] = True
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
