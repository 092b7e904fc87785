"""How long a 1 MP relight takes, as the shipped template 1 runs it, against an earlier tree.

  .venv/bin/python -P benchmarks/relight_speed.py [--baseline ../baseline] [--repeats 3]

The portrait (scikit-image's astronaut) upscaled to 1024 x 1024 with a loose ellipse over the
face, relit from the left: the template's nodes called in-process (benchmarks/look.py's
runner: Mask Conditioning, Light Direction Encode, Shadow Mask, Relight Inpaint Sampler with
the workflow's settings), face mesh and person matte included. Each tree runs in a process of
its own with the same thread count, one after the other; the best of --repeats after a warm-up
is printed, and the ratio current / baseline.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
import look  # noqa: E402  (the template's runner; look.py imports no pack code at the top)

SIDE = 1024


def portrait() -> tuple[np.ndarray, np.ndarray]:
    from PIL import Image
    from skimage import data

    photo = Image.fromarray(data.astronaut()).resize((SIDE, SIDE), Image.LANCZOS)
    rows, cols = np.mgrid[:SIDE, :SIDE]
    ellipse = ((cols - 500) / 190) ** 2 + ((rows - 250) / 240) ** 2 < 1
    return np.asarray(photo, np.float32) / 255, ellipse.astype(np.float32)


def time_tree(root: Path, repeats: int, threads: int) -> dict:
    """In this process: the tree at `root`, `repeats` timed relights after one warm-up."""
    sys.path.insert(0, str(REPO / "host"))
    from bootstrap import import_pack, use_comfyui

    use_comfyui()
    import comfy.utils
    import torch

    torch.set_num_threads(threads)
    comfy.utils.PROGRESS_BAR_ENABLED = False
    import_pack(root)
    runner = look.Runner(look.load_graph(root), look.node_classes())
    image, mask = (torch.from_numpy(a)[None] for a in portrait())
    look.LIGHTS.clear()
    look.LIGHTS["left"] = (180.0, look.WHITE)
    runner.relight(image, mask)  # warm-up: model loading, the face models' interpreters
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner.relight(image, mask)
        seconds.append(time.perf_counter() - start)
    return {"best": min(seconds), "all": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", type=Path, default=REPO.parent / "baseline")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--pack", type=Path, help=argparse.SUPPRESS)  # one tree, in-process
    args = parser.parse_args()
    if args.pack:
        print(json.dumps(time_tree(args.pack.resolve(), args.repeats, args.threads)))
        return
    figures = {}
    for label, root in (("baseline", args.baseline), ("current", REPO)):
        if not (root / "__init__.py").exists():
            print(f"{label}: no tree at {root}, left out")
            continue
        command = [sys.executable, "-P", __file__, "--pack", str(root)]
        command += ["--repeats", str(args.repeats), "--threads", str(args.threads)]
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        figures[label] = json.loads(done.stdout.strip().splitlines()[-1])
        runs = ", ".join(f"{s:.2f}" for s in figures[label]["all"])
        print(f"{label:9s} {figures[label]['best']:.2f} s best of {args.repeats} ({runs})")
    if len(figures) == 2:
        ratio = figures["current"]["best"] / figures["baseline"]["best"]
        print(f"1 MP relight, current / baseline: {ratio:.2f} (target <= 2)")


if __name__ == "__main__":
    main()
