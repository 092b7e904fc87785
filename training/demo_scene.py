"""Write the bundled scene of workflow (c): an object pasted under the wrong light, its mask, and
the scene's depth map (what a depth estimator would give: white = near).

  .venv/bin/python -P training/demo_scene.py [--seed-base N] [--tries K]

The scene comes from the training renderer, with seeds outside every training, validation and
benchmark range. Among the first `tries` seeds, the one whose pasted object is curved, of a
useful size, lit from far enough away from the scene's own light, and whose scene light Estimate
Light finds (within 15 degrees, confidence at least 0.3) is kept: a demonstration picture
chosen where the method works; how often it works is the quality benchmark's scene-light
figure.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("training")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ..lighting.light_estimate import estimate_scene_light  # noqa: E402
from .render import depth_map, render_sample  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "assets"
SEED_BASE = 30_000_000  # training 0.., validation 10_000_000.., benchmark 20_000_000..
SIZE = 512
PHOTO, MASK, DEPTH = "relight_scene_photo.png", "relight_scene_mask.png", "relight_scene_depth.png"


def light_angle(a: dict, b: dict) -> float:
    cos = float(np.dot(a["direction"], b["direction"]))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def scene_estimate(sample: dict) -> tuple[float, float]:
    """Estimate Light outside the mask on the depth map, as workflow (c) runs it: (angle to the
    scene's true light, confidence)."""
    depth = torch.from_numpy(depth_map(sample["surface_z"]).astype(np.float32))[None]
    pasted = torch.from_numpy(pasted_image(sample).astype(np.float32))[None]
    outside = torch.from_numpy(1.0 - sample["target_mask"])[None].float()
    estimate = estimate_scene_light(pasted, depth, outside)
    found = {"direction": estimate.light.direction[0].numpy()}
    return light_angle(found, sample["light"]), float(estimate.confidence[0])


def suitable(sample: dict) -> bool:
    share = float(sample["target_mask"].mean())
    if not (
        bool(sample["curved"])
        and 0.02 <= share <= 0.12
        and light_angle(sample["light"], sample["light2"]) >= 75
    ):
        return False
    angle, confidence = scene_estimate(sample)
    print(f"  scene light estimate: {angle:.1f} deg off, confidence {confidence:.2f}")
    return angle <= 15 and confidence >= 0.3


def pasted_image(sample: dict) -> np.ndarray:
    inside = sample["target_mask"][..., None] > 0.5
    return np.where(inside, sample["image_light2"], sample["image"])


def to_png(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))


def write_scene(sample: dict, folder: Path) -> None:
    to_png(pasted_image(sample)).save(folder / PHOTO)
    to_png(sample["target_mask"]).convert("L").save(folder / MASK)
    to_png(depth_map(sample["surface_z"])).convert("L").save(folder / DEPTH)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed-base", type=int, default=SEED_BASE)
    parser.add_argument("--tries", type=int, default=80)
    parser.add_argument("--out", type=Path, default=ASSETS)
    args = parser.parse_args(argv)
    for seed in range(args.seed_base, args.seed_base + args.tries):
        sample = render_sample(seed, size=SIZE // 4)
        if not suitable(sample):
            continue
        sample = render_sample(seed, size=SIZE, supersample=2)
        if suitable(sample):
            write_scene(sample, args.out)
            scene_light = sample["light"]["direction"]
            print(f"seed {seed}: scene light {np.round(scene_light, 3).tolist()} -> {args.out}")
            return
    raise SystemExit(f"no suitable scene among seeds {args.seed_base}..+{args.tries}")


if __name__ == "__main__":
    main()
