"""Click selection against the figurines' own masks in ../shared/realphotos (issue 12: IoU >= 0.8
with at most 5 clicks).

Clicks are simulated as in the interactive-segmentation literature (the NoC protocol): the first
click at the object's most interior point; each next one at the most interior point of the
larger error region, inside if it is missed object, outside if it is wrongly selected
background. Every photo of every figurine (12 lights each) is one trial.

  .venv/bin/python -P benchmarks/click_select.py ../shared/realphotos [--clicks 5] [--out-dir D]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("benchmarks")

from ..conditioning.select import Clicks, select  # noqa: E402

FIGURINES = ("uw_cat", "uw_owl", "uw_horse")
TARGET = 0.8


def iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 1.0


def most_interior_point(region: np.ndarray) -> tuple[float, float, float]:
    """(x, y, distance to the region's edge) of the point deepest inside `region`."""
    import cv2

    padded = np.pad(region.astype(np.uint8), 1)
    distance = cv2.distanceTransform(padded, cv2.DIST_L2, 5)[1:-1, 1:-1]
    row, col = np.unravel_index(int(distance.argmax()), distance.shape)
    return float(col), float(row), float(distance[row, col])


def next_click(truth: np.ndarray, selected: np.ndarray) -> tuple[bool, float, float]:
    missed = truth & ~selected
    extra = selected & ~truth
    mx, my, md = most_interior_point(missed)
    ex, ey, ed = most_interior_point(extra)
    return (True, mx, my) if md >= ed else (False, ex, ey)


def trial(image: np.ndarray, truth: np.ndarray, max_clicks: int) -> list[float]:
    clicks = Clicks()
    selected = np.zeros_like(truth)
    scores = []
    for _ in range(max_clicks):
        inside, x, y = next_click(truth, selected)
        clicks.add(x, y, inside)
        selected = select(image, clicks) > 0.5
        scores.append(iou(selected, truth))
    return scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", type=Path)
    parser.add_argument("--clicks", type=int, default=5)
    parser.add_argument("--out-dir", type=Path, help="write overlays of the 5-click result here")
    args = parser.parse_args()
    rows = []
    started = time.perf_counter()
    for name in FIGURINES:
        folder = args.photos / name
        truth = np.asarray(Image.open(folder / "mask.png").convert("L")) > 127
        for path in sorted(folder.glob("[0-9][0-9].png")):
            pixels = np.asarray(Image.open(path).convert("RGB")) / 255.0
            display = pixels ** (1 / 2.2)  # the photos are linear; a user sees them displayed
            scores = trial(display, truth, args.clicks)
            rows.append((name, path.stem, scores))
            if args.out_dir and path.stem == "05":
                save_overlay(args.out_dir, name, display, truth, args.clicks)
    seconds = time.perf_counter() - started
    scores = np.array([r[2] for r in rows])
    print(f"{len(rows)} photos of {len(FIGURINES)} figurines, {seconds:.1f} s")
    for k in range(args.clicks):
        reached = (scores[:, : k + 1].max(axis=1) >= TARGET).mean()
        print(
            f"  {k + 1} click(s): mean IoU {scores[:, k].mean():.3f}, "
            f"min {scores[:, k].min():.3f}, reached {TARGET} {reached:.0%}"
        )
    for name in FIGURINES:
        own = np.array([r[2] for r in rows if r[0] == name])
        print(
            f"  {name}: IoU at {args.clicks} clicks mean {own[:, -1].mean():.3f} "
            f"min {own[:, -1].min():.3f}"
        )


def save_overlay(out_dir: Path, name: str, image: np.ndarray, truth: np.ndarray, k: int) -> None:
    clicks = Clicks()
    selected = np.zeros_like(truth)
    for _ in range(k):
        inside, x, y = next_click(truth, selected)
        clicks.add(x, y, inside)
        selected = select(image, clicks) > 0.5
    out_dir.mkdir(parents=True, exist_ok=True)
    overlay = image.copy()
    overlay[selected] = overlay[selected] * 0.5 + np.array([1.0, 0.1, 0.1]) * 0.5
    edge = truth ^ np.roll(truth, 1, 0) | truth ^ np.roll(truth, 1, 1)
    overlay[edge] = [0.2, 1.0, 0.2]
    for points, colour in ((clicks.inside, [0, 1, 0]), (clicks.outside, [1, 0, 1])):
        for x, y in points:
            overlay[max(0, int(y) - 3) : int(y) + 4, max(0, int(x) - 3) : int(x) + 4] = colour
    Image.fromarray((overlay.clip(0, 1) * 255).astype(np.uint8)).save(out_dir / f"{name}.png")


if __name__ == "__main__":
    main()
