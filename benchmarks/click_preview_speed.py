"""How long the page waits for the selection after a click, on a 1 MP photo (target <= 0.5 s).

Times what `POST /relight/select` does for each click of a 5-click session on the bundled cup
scaled to 1 MP (clicks by the benchmark's simulator against the drawn reference): read the
photo (at most 1024 px a side), the person matte, the selection, the PNG. What a process does
once (the person segmenter loaded, OpenCV's colour tables built by a first selection on a
corner of the photo) is timed apart, as the first call. The methods before it are timed in the
same run: the edit alone through the same route, and GrabCut replaying every click (the node only
showed that after Run).

  .venv/bin/python -P benchmarks/click_preview_speed.py
"""

from __future__ import annotations

import functools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("benchmarks")

from ..conditioning import select as selection  # noqa: E402
from ..nodes import select_by_clicks  # noqa: E402
from .click_select import CASES, next_click, reference_mask  # noqa: E402

TARGET_S = 0.5
CLICKS = 5


def one_megapixel(folder: Path) -> tuple[dict, np.ndarray]:
    photo = Image.open(Path(__file__).resolve().parents[1] / "assets" / "relight_demo_photo.png")
    case = json.loads(CASES.read_text())["cup"]
    truth = reference_mask(case, (photo.height, photo.width))
    size = (1224, 816)  # 1.0 MP, the photo's shape
    photo.convert("RGB").resize(size, Image.LANCZOS).save(folder / "cup_1mp.png")
    truth = np.asarray(Image.fromarray(truth).resize(size)) > 0
    return {"filename": "cup_1mp.png", "subfolder": "", "type": "input"}, truth


def session(ref: dict, truth: np.ndarray, method: str) -> list[float]:
    """Seconds per click of one session (each request carries every click so far)."""
    points: list[list[float]] = []
    selected = np.zeros_like(truth)
    seconds = []
    for _ in range(CLICKS):
        inside, x, y = next_click(truth, selected)
        points.append([round(x, 1), round(y, 1), int(inside)])
        text = json.dumps({"points": points, "size": [truth.shape[1], truth.shape[0]]})
        started = time.perf_counter()
        if method != "grabcut":
            shipped = select_by_clicks.select
            select_by_clicks.select = functools.partial(shipped, method=method)
            try:
                png, size = select_by_clicks.preview_mask({"image": ref, "points": text})
            finally:
                select_by_clicks.select = shipped
            seconds.append(time.perf_counter() - started)
            small = np.asarray(Image.open(__import__("io").BytesIO(png))) > 127
        else:
            path = select_by_clicks.image_path(ref)
            rgb = np.asarray(Image.open(path).convert("RGB"), np.float32) / 255.0
            clicks = selection.parse_clicks(text)
            small = selection.select(rgb, clicks, method="grabcut") > 0.5
            seconds.append(time.perf_counter() - started)
        selected = np.asarray(Image.fromarray(small).resize(truth.shape[::-1])) > 0
    return seconds


def main() -> None:
    import folder_paths

    with tempfile.TemporaryDirectory() as folder:
        folder_paths.set_input_directory(folder)
        ref, truth = one_megapixel(Path(folder))
        started = time.perf_counter()
        photo = select_by_clicks.read_photo(select_by_clicks.image_path(ref), (0, 0))[0]
        select_by_clicks.person_matte(photo)
        selection.select(photo[:64, :64, :3].numpy(), selection.Clicks([(32.0, 32.0, True)]))
        seconds = time.perf_counter() - started
        print(
            "first call of the process (loads the face detector, the person segmenter and "
            f"OpenCV's Lab tables, 40-50 ms): {seconds:.2f} s"
        )
        for method in ("hybrid", "edits", "grabcut"):
            selection._steps.clear()
            select_by_clicks.read_photo.cache_clear()
            select_by_clicks.photo_person.cache_clear()
            seconds = session(ref, truth, method)
            label = {
                "hybrid": "shipped, hybrid (route)",
                "edits": "edits alone (route)",
                "grabcut": "GrabCut replay",
            }[method]
            per_click = " ".join(f"{s:.2f}" for s in seconds)
            print(
                f"{label}: per click {per_click} s; max {max(seconds):.2f} s, "
                f"median {np.median(seconds):.2f} s (target {TARGET_S} s)"
            )


if __name__ == "__main__":
    main()
