"""Click selection on real photos with reference masks, by the standard click simulator.

Photos: the cases of `benchmarks/select_photos/cases.json` (photos from package registries,
reference masks drawn as polygons in pixels of the photo: see select_photos/SOURCES.md; the
bundled cup is the case `cup`) and, when the folder is given, 9 figurine photos of
`../shared/realphotos` (3 per figurine, their own masks: measured here, never committed).

Clicks are simulated as in the interactive-segmentation literature: each next click at the
centre (the point farthest inside) of the largest error region, a left click if it is missed
object, a right click if it is wrongly selected background. Every method runs on the same
photos in the same run: `hybrid` (shipped: each later click the better-edged of an edit and a
GrabCut correction), `edits` (the edit alone) and `grabcut` (GrabCut replaying every click).

  .venv/bin/python -P benchmarks/click_select.py [--realphotos ../shared/realphotos]
      [--clicks 5] [--out-dir D] [--only NAME ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("benchmarks")

from ..conditioning.select import METHODS, Clicks, select  # noqa: E402

HERE = Path(__file__).resolve().parent
CASES = HERE / "select_photos" / "cases.json"
FIGURINES = {"uw_cat": ("00", "04", "08"), "uw_owl": ("00", "04", "08")}
FIGURINES["uw_horse"] = ("00", "04", "08")
MEAN_TARGET = 0.90
WORST_TARGET = 0.85


@dataclass
class Photo:
    name: str
    image: np.ndarray  # HxWx3 float 0..1, as a user sees it
    truth: np.ndarray  # HxW bool
    person: np.ndarray | None = None


def reference_mask(case: dict, shape: tuple[int, ...]) -> np.ndarray:
    """The drawn reference: filled polygons, a circle, thick lines (thin parts)."""
    import cv2

    mask = np.zeros(shape[:2], np.uint8)
    for polygon in case.get("polygons", []):
        cv2.fillPoly(mask, [np.array(polygon, np.int32)], 1)
    if "circle" in case:
        x, y, radius = case["circle"]
        cv2.circle(mask, (x, y), radius, 1, -1)
    for x0, y0, x1, y1, width in case.get("lines", []):
        cv2.line(mask, (x0, y0), (x1, y1), 1, width)
    return mask > 0


def load_cases(only: list[str] | None) -> list[Photo]:
    photos = []
    for name, case in json.loads(CASES.read_text()).items():
        if only and name not in only:
            continue
        rgb = Image.open(HERE / case["photo"]).convert("RGB")
        image = np.asarray(rgb) / 255.0
        photos.append(Photo(name, image, reference_mask(case, image.shape)))
    return photos


def load_figurines(folder: Path, only: list[str] | None) -> list[Photo]:
    photos = []
    for figurine, stems in FIGURINES.items():
        truth = np.asarray(Image.open(folder / figurine / "mask.png").convert("L")) > 127
        for stem in stems:
            name = f"{figurine}_{stem}"
            if only and name not in only:
                continue
            pixels = np.asarray(Image.open(folder / figurine / f"{stem}.png").convert("RGB"))
            display = (pixels / 255.0) ** (1 / 2.2)  # linear photos; a user sees them displayed
            photos.append(Photo(name, display, truth))
    return photos


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def next_click(truth: np.ndarray, selected: np.ndarray) -> tuple[bool, float, float]:
    """The centre of the largest error region, and whether it is missed object."""
    import cv2

    best = (0, True, 0.0, 0.0)
    for inside, error in ((True, truth & ~selected), (False, selected & ~truth)):
        count, labels, stats, _ = cv2.connectedComponentsWithStats(error.astype(np.uint8), 8)
        if count < 2:
            continue
        label = 1 + int(stats[1:, cv2.CC_STAT_AREA].argmax())
        area = int(stats[label, cv2.CC_STAT_AREA])
        if area > best[0]:
            region = np.pad(labels == label, 1).astype(np.uint8)
            distance = cv2.distanceTransform(region, cv2.DIST_L2, 5)[1:-1, 1:-1]
            row, col = np.unravel_index(int(distance.argmax()), distance.shape)
            best = (area, inside, float(col), float(row))
    return best[1], best[2], best[3]


def trial(photo: Photo, method: str, max_clicks: int) -> tuple[list[float], Clicks, np.ndarray]:
    clicks = Clicks()
    selected = np.zeros_like(photo.truth)
    scores = []
    for _ in range(max_clicks):
        inside, x, y = next_click(photo.truth, selected)
        clicks.add(x, y, inside)
        selected = select(photo.image, clicks, person=photo.person, method=method) > 0.5
        scores.append(iou(selected, photo.truth))
    return scores, clicks, selected


def person_mattes(photos: list[Photo]) -> str:
    """The person matte for every photo, as the node computes it (only where a face is
    found); says when the face models are missing (the method then runs without it)."""
    import torch

    from ..lighting.faces import faces_unavailable
    from ..nodes.select_by_clicks import person_matte

    problem = faces_unavailable()
    if problem:
        return f"no person matte ({problem})"
    for photo in photos:
        photo.person = person_matte(torch.from_numpy(photo.image.astype(np.float32)))
    with_face = [p.name for p in photos if p.person is not None]
    return f"person matte (selfie segmenter, photos with a face: {', '.join(with_face)})"


def summary(method: str, scores: np.ndarray, seconds: float) -> list[str]:
    last = np.sort(scores[:, -1])
    tenth = max(1, round(len(last) / 10))
    lines = [f"{method}: {seconds:.1f} s"]
    for k in range(scores.shape[1]):
        lines.append(f"  {k + 1} click(s): mean IoU {scores[:, k].mean():.3f}")
    lines.append(
        f"  after {scores.shape[1]}: mean {last.mean():.3f} (target {MEAN_TARGET}), worst tenth "
        f"({tenth} photos) {last[:tenth].mean():.3f} (target {WORST_TARGET}), min {last[0]:.3f}"
    )
    return lines


def save_overlay(out_dir: Path, name: str, photo: Photo, clicks: Clicks, selected: np.ndarray):
    out_dir.mkdir(parents=True, exist_ok=True)
    overlay = photo.image.copy()
    overlay[selected] = overlay[selected] * 0.5 + np.array([0.1, 0.3, 1.0]) * 0.5
    truth = photo.truth
    edge = truth ^ np.roll(truth, 1, 0) | truth ^ np.roll(truth, 1, 1)
    overlay[edge] = [0.2, 1.0, 0.2]
    for points, colour in ((clicks.inside, [0, 1, 0]), (clicks.outside, [1, 0, 1])):
        for x, y in points:
            overlay[max(0, int(y) - 3) : int(y) + 4, max(0, int(x) - 3) : int(x) + 4] = colour
    Image.fromarray((overlay.clip(0, 1) * 255).astype(np.uint8)).save(out_dir / f"{name}.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--realphotos", type=Path, help="../shared/realphotos: adds 9 figurines")
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out-dir", type=Path, help="write overlays of the last click here")
    parser.add_argument("--only", nargs="+", help="only these photos")
    args = parser.parse_args()
    photos = load_cases(args.only)
    if args.realphotos:
        photos += load_figurines(args.realphotos, args.only)
    print(f"{len(photos)} photos; {person_mattes(photos)}")
    table: dict[str, np.ndarray] = {}
    for method in args.methods:
        started = time.perf_counter()
        rows = []
        for photo in photos:
            scores, clicks, selected = trial(photo, method, args.clicks)
            rows.append(scores)
            if args.out_dir:
                save_overlay(args.out_dir / method, photo.name, photo, clicks, selected)
        table[method] = np.array(rows)
        print("\n".join(summary(method, table[method], time.perf_counter() - started)))
    figurines = [i for i, p in enumerate(photos) if p.name.startswith("uw_")]
    if figurines:
        print(f"figurines ({len(figurines)} photos), mean IoU after {args.clicks} clicks:")
        for method, scores in table.items():
            print(f"  {method}: {scores[figurines, -1].mean():.3f}")
    print(f"IoU after {args.clicks} clicks per photo ({' / '.join(table)}):")
    for index, photo in enumerate(photos):
        values = " / ".join(f"{table[m][index, -1]:.3f}" for m in table)
        print(f"  {photo.name:16s} {values}")


if __name__ == "__main__":
    main()
