"""Shadows that move with the light, on rendered scenes with ground-truth shadows.

  .venv/bin/python -P benchmarks/shadows.py [--scenes 80] [--out-dir DIR]

Held-out rendered scenes (256 px) whose target casts a shadow of at least 30 px:
- relight: the target pasted without its shadow (lit by another light, over the scene without
  it); Shadow Mask (relight) for the scene's light must find where its shadow falls. IoU with
  the renderer's shadow of the target.
- fill: the photo as rendered; Shadow Mask (fill) must find the target's existing shadow.
Each with: the silhouette alone (no depth map); the scene's 8-bit depth map with its scale
fitted to the photo's shadows (depth_relief 0, what a user with a depth estimator gets); the
same map at its true scale (a reference: a user cannot know it). The scene's light is the
renderer's (as set by hand) and, for fill, also Estimate Light's estimate from the depth map.
Then the fill itself, through the sampler's crop path with the pack's model: PSNR against the
scene without the target, over the target and its true shadow, when the object alone is
removed and when the found shadow goes with it (and the true shadow, as a bound). Relight:
PSNR over the true shadow region of the pasted input, with the painted shadow, against the
scene with the target's shadow. Writes example pictures and the bundled scene photo's masks.
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

from ..conditioning.mask import MaskedImage, grow_mask  # noqa: E402
from ..conditioning.upscale import restorer  # noqa: E402
from ..lighting.light import make_light  # noqa: E402
from ..lighting.light_estimate import estimate_scene_light  # noqa: E402
from ..lighting.shadows import shadow_mask  # noqa: E402
from ..model_loader.relight_model import load_relight_model  # noqa: E402
from ..sampling.crops import ONE_STEP, relight_crops  # noqa: E402
from ..training.render import depth_map, render_sample  # noqa: E402
from .metrics import masked_psnr  # noqa: E402
from .quality import HELD_OUT_SEED_BASE  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MIN_SHADOW = 30
GROW = 2  # the fill mask around the target, as quality.py's
SETTINGS = ONE_STEP


def iou(found: torch.Tensor, truth: np.ndarray) -> float:
    found = found[0].numpy() > 0.5
    return float((found & truth).sum() / max((found | truth).sum(), 1))


def to_light(light: dict):
    return make_light(
        torch.tensor(light["direction"], dtype=torch.float32),
        float(light["intensity"]),
        float(light["ambient"]),
    )


def scenes(count: int):
    seed = HELD_OUT_SEED_BASE
    found = 0
    while found < count:
        sample = render_sample(seed, size=256)
        seed += 1
        if (sample["shadow_mask"] > 0.5).sum() >= MIN_SHADOW:
            found += 1
            yield sample


class Fill:
    def __init__(self, model_name: str):
        self.model, self.vae = load_relight_model(REPO / "models" / model_name)

    def __call__(self, image, mask, light, mode="fill", shadow=None) -> np.ndarray:
        masked = MaskedImage(torch.from_numpy(image).float()[None], mask)
        result = relight_crops(
            self.model,
            self.vae,
            masked,
            light,
            mode,
            SETTINGS,
            0.5,
            restore=restorer(),
            shadow=shadow,
        )
        return result.image[0].numpy()


def score_scene(sample, run) -> dict[str, float]:
    truth = sample["shadow_mask"] > 0.5
    target = torch.from_numpy((sample["target_mask"] > 0.5).astype(np.float32))[None]
    light = to_light(sample["light"])
    depth = torch.from_numpy(depth_map(sample["surface_z"]).astype(np.float32))[None]
    relief = float(np.ptp(sample["surface_z"])) / 2.0  # the frame spans 2 units
    on_target = target[0, ..., None].numpy() > 0
    pasted = np.where(on_target, sample["image_light2"], sample["image_without_target"])
    photo = torch.from_numpy(sample["image"]).float()[None]
    pasted_t = torch.from_numpy(pasted).float()[None]
    estimated = estimate_scene_light(photo, depth, 1.0 - grow_mask(target, 4)).light
    masks = {
        "relight silhouette": shadow_mask(pasted_t, target, light, "relight"),
        "relight depth, scale fitted": shadow_mask(pasted_t, target, light, "relight", depth),
        "relight depth, true scale": shadow_mask(pasted_t, target, light, "relight", depth, relief),
        "fill silhouette": shadow_mask(photo, target, light, "fill"),
        "fill depth, scale fitted": shadow_mask(photo, target, light, "fill", depth),
        "fill depth, estimated light": shadow_mask(photo, target, estimated, "fill", depth),
    }
    scores = {f"IoU {name}": iou(found, truth) for name, found in masks.items()}
    hole = grow_mask(target, GROW)
    region = (
        grow_mask(torch.maximum(target, torch.from_numpy(truth).float()[None]), GROW)[0].numpy()
        > 0.5
    )
    clean = sample["image_without_target"]
    fills = {
        "object alone": run(sample["image"], hole, light),
        "object + found shadow": run(
            sample["image"], hole, light, shadow=masks["fill depth, estimated light"]
        ),
        "object + true shadow": run(
            sample["image"], hole, light, shadow=torch.from_numpy(truth).float()[None]
        ),
    }
    for name, output in fills.items():
        scores[f"fill PSNR {name}"] = masked_psnr(output, clean, region)
    shadow_region = truth.astype(np.float32)
    painted = run(pasted, target, light, "relight", masks["relight depth, scale fitted"])
    unpainted = run(pasted, target, light, "relight")
    scores["relight PSNR in shadow, no shadow"] = masked_psnr(
        unpainted, sample["image"], shadow_region
    )
    scores["relight PSNR in shadow, painted"] = masked_psnr(painted, sample["image"], shadow_region)
    scores["_pictures"] = (pasted, painted, sample["image"], fills, masks)
    return scores


def save_row(path: Path, images: list[np.ndarray]) -> None:
    row = np.concatenate([np.clip(i, 0, 1) for i in images], axis=1)
    Image.fromarray(np.round(row * 255).astype(np.uint8)).save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=80)
    parser.add_argument("--model", default="relight_default.safetensors")
    parser.add_argument("--out-dir", type=Path, default=REPO / "out" / "shadows")
    args = parser.parse_args()
    comfy.utils.PROGRESS_BAR_ENABLED = False
    args.out_dir.mkdir(parents=True, exist_ok=True)
    run = Fill(args.model)
    totals: dict[str, list[float]] = {}
    for k, sample in enumerate(scenes(args.scenes)):
        scores = score_scene(sample, run)
        pasted, painted, truth, fills, masks = scores.pop("_pictures")
        for name, value in scores.items():
            totals.setdefault(name, []).append(value)
        if k < 4:
            overlay = np.stack(
                [
                    sample["shadow_mask"],
                    masks["fill depth, estimated light"][0].numpy(),
                    masks["relight depth, scale fitted"][0].numpy(),
                ],
                -1,
            )
            save_row(
                args.out_dir / f"shadows_{k}.png",
                [
                    sample["image"],
                    overlay,
                    fills["object alone"],
                    fills["object + found shadow"],
                    pasted,
                    painted,
                    truth,
                ],
            )
    print(f"{len(totals['IoU fill silhouette'])} held-out rendered scenes with a cast shadow")
    for name, values in totals.items():
        print(f"  {name:<42}{statistics.median(values):7.3f} median   {np.mean(values):7.3f} mean")
    print(
        f"pictures: {args.out_dir} (photo | truth R, found for fill G, for relight B | fill "
        "object alone | fill with shadow | pasted | relight painted | truth)"
    )


if __name__ == "__main__":
    main()
