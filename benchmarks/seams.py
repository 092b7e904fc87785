"""Seams: the colour step where a repaint meets the photo, against a naive paste.

  .venv/bin/python -P benchmarks/seams.py [--scenes 40] [--out-dir DIR]

The shipped path (RelightInpaintSampler's crop and stitch: the workflow's grow 4 and feather 8,
seam matching on) against a naive paste of the same model's answer (grow 4, no feather, no
matching: what a plain crop-and-stitch does). Both run in-process through the sampler's own
crop path with the pack's default model. The figure is the median CIEDE2000 difference across
the edge of the grown mask (benchmarks.metrics.seam_delta_e), per case then the median over
cases; the floor is the same figure on the ground truth (rendered scenes) or the input (photos),
the image's own texture across that edge. Cases: held-out rendered scenes (relight the pasted
object to the scene's light; fill the object and its shadow), and the bundled photo and
scikit-image's astronaut relit from four directions. PSNR inside the repaint against the
ground truth shows that matching the seam did not cost the relight or the fill.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("benchmarks")

import comfy.utils  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ..conditioning.mask import grow_mask, prepare_masked_image  # noqa: E402
from ..conditioning.upscale import restorer  # noqa: E402
from ..lighting.light import direction_from_angles, make_light  # noqa: E402
from ..model_loader.relight_model import load_relight_model  # noqa: E402
from ..sampling.crops import ONE_STEP, relight_crops  # noqa: E402
from .metrics import masked_psnr, seam_delta_e  # noqa: E402
from .quality import ASTRONAUT_HEAD, HELD_OUT_SEED_BASE, make_cases  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
GROW, FEATHER = 4, 8  # the shipped workflow's MaskConditioning
SETTINGS = ONE_STEP


def run(model, vae, image, mask, light, mode, shipped: bool) -> np.ndarray:
    masked = prepare_masked_image(
        torch.from_numpy(image).float()[None],
        torch.from_numpy(mask).float()[None],
        GROW,
        FEATHER if shipped else 0,
    )
    result = relight_crops(
        model, vae, masked, light, mode, SETTINGS, 0.5, restore=restorer(), match_edges=shipped
    )
    return result.image[0].numpy()


def region_of(mask: np.ndarray) -> np.ndarray:
    return grow_mask(torch.from_numpy(mask).float()[None], GROW)[0].numpy() > 0.5


def light_from(light: dict):
    return make_light(
        torch.tensor(light["direction"], dtype=torch.float32),
        float(light["intensity"]),
        float(light["ambient"]),
        torch.tensor(light["color"], dtype=torch.float32),
    )


def rendered_cases(count: int):
    for index in range(count):
        cases, lights = make_cases(HELD_OUT_SEED_BASE + index)
        for case in cases:
            if case.name in ("relight", "fill"):
                yield case.name, case.input, case.mask, light_from(lights[case.name]), case.truth


def photo_cases():
    from skimage import data

    demo = np.asarray(Image.open(REPO / "assets" / "relight_demo_photo.png").convert("RGB"))
    demo_mask = np.asarray(Image.open(REPO / "assets" / "relight_demo_mask.png").convert("L"))
    astronaut = data.astronaut()
    x, y, rx, ry = ASTRONAUT_HEAD
    rows, cols = np.ogrid[: astronaut.shape[0], : astronaut.shape[1]]
    head = (((cols - x) / rx) ** 2 + ((rows - y) / ry) ** 2 <= 1).astype(np.float32)
    for name, image, mask in (("photo", demo, demo_mask / 255.0), ("astronaut", astronaut, head)):
        for azimuth in (0, 90, 180, 270):
            light = make_light(direction_from_angles(float(azimuth), 35.0))
            yield name, image.astype(np.float32) / 255.0, mask.astype(np.float32), light, None


def score(model, vae, cases, out_dir: Path, label: str) -> dict[str, list[float]]:
    scores: dict[str, list[float]] = {"shipped": [], "naive": [], "floor": [], "psnr_gain": []}
    for k, (mode, image, mask, light, truth) in enumerate(cases):
        mode = "fill" if mode == "fill" else "relight"
        shipped = run(model, vae, image, mask, light, mode, shipped=True)
        naive = run(model, vae, image, mask, light, mode, shipped=False)
        region = region_of(mask)
        scores["shipped"].append(seam_delta_e(shipped, region))
        scores["naive"].append(seam_delta_e(naive, region))
        scores["floor"].append(seam_delta_e(image if truth is None else truth, region))
        if truth is not None:
            gain = masked_psnr(shipped, truth, region) - masked_psnr(naive, truth, region)
            scores["psnr_gain"].append(gain)
        if k < 4:
            row = np.concatenate([image, naive, shipped], axis=1)
            name = f"seams_{label}_{k}_{mode}.png"
            Image.fromarray(np.round(row.clip(0, 1) * 255).astype(np.uint8)).save(out_dir / name)
    return scores


def report(label: str, scores: dict[str, list[float]]) -> dict[str, float]:
    med = {k: statistics.median(v) for k, v in scores.items() if v}
    ratio = med["shipped"] / max(med["naive"], 1e-9)
    gain = (
        f", PSNR in the repaint vs naive {med['psnr_gain']:+.2f} dB" if "psnr_gain" in med else ""
    )
    print(
        f"{label:<22}{len(scores['naive']):>4} cases  ΔE shipped {med['shipped']:5.2f}  naive "
        f"{med['naive']:5.2f}  floor {med['floor']:5.2f}  shipped / naive {ratio:.2f}{gain}"
    )
    return {**med, "ratio": ratio}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=40)
    parser.add_argument("--model", default="relight_default.safetensors")
    parser.add_argument("--out-dir", type=Path, default=REPO / "out" / "seams")
    args = parser.parse_args()
    comfy.utils.PROGRESS_BAR_ENABLED = False
    args.out_dir.mkdir(parents=True, exist_ok=True)
    model, vae = load_relight_model(REPO / "models" / args.model)
    print("seam ΔE (CIEDE2000, median across the grown mask's edge; goal: shipped <= half naive)")
    rendered = list(rendered_cases(args.scenes))
    for mode in ("relight", "fill"):
        cases = [c for c in rendered if c[0] == mode]
        report(f"rendered {mode}", score(model, vae, cases, args.out_dir, f"rendered_{mode}"))
    report("photos (4 lights)", score(model, vae, list(photo_cases()), args.out_dir, "photos"))
    print(f"pictures: {args.out_dir} (input | naive paste | shipped)")


if __name__ == "__main__":
    main()
