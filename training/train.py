"""Train the pack's default relight/fill model on this CPU, from scratch, reproducibly.

  .venv/bin/python -P training/train.py [--out models/relight_default.safetensors]

Renders the training scenes (cached under .cache/training), trains the regressor of
`model_loader/relight_net.py` (x0 from the conditioning alone; a `relight_unet_v1` config would
train a denoiser from the same examples) with a progress bar, checkpoints every few minutes and
resumes from the last checkpoint after an interruption (same data, same random streams). Writes
fp16 weights in the pack's format with the config and provenance (data seeds, steps, validation
metrics) in the metadata.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("training")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm import tqdm  # noqa: E402

from ..model_loader.relight_format import (  # noqa: E402
    CONCAT_CHANNELS,
    REGRESSOR,
    RelightConfig,
    build_network,
    make_config,
    save_relight_model,
)
from .examples import (  # noqa: E402
    NOISE_SKEW,
    RELIGHT_SHARE,
    drop_light,
    make_batch,
    masked_psnr,
    noisy_input,
    render_dataset,
)
from .render import LIGHT_AMBIENT, LIGHT_ELEVATION, LIGHT_INTENSITY  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "models" / "relight_default.safetensors"
CACHE = REPO / ".cache" / "training"
VALIDATION_SEED_BASE = 10_000_000  # the benchmark's held-out scenes start at 20_000_000


def model_config() -> RelightConfig:
    return make_config(
        architecture=REGRESSOR,
        concat=tuple(CONCAT_CHANNELS),  # with the shading map: it refines a re-shaded subject
        base_channels=16,
        channel_mult=(1, 2, 4, 8, 12),
        num_blocks=1,
        stem=1,
        prediction="x0",
        residual="add",
        light_range={
            "elevation": LIGHT_ELEVATION,
            "intensity": LIGHT_INTENSITY,
            "ambient": LIGHT_AMBIENT,
        },
    )


def load_or_render(
    cache: Path, name: str, seeds: list[int], size: int, frame: int
) -> dict[str, np.ndarray]:
    folder = cache / f"{name}_{len(seeds)}_{seeds[0]}_{size}_{frame}"
    done = folder / "done"
    if not done.exists():
        folder.mkdir(parents=True, exist_ok=True)
        with tqdm(total=len(seeds), desc=f"render {name}", unit="scene") as bar:
            data = render_dataset(seeds, size, frame, progress=bar.update)
        for key, array in data.items():
            np.save(folder / f"{key}.npy", array)
        done.write_text("ok")
    return {p.stem: np.load(p, mmap_mode="r") for p in folder.glob("*.npy")}


def learning_rate(step: int, total: int, peak: float, warmup: int = 200) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * progress)))


def loss_fn(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weight = mask + 0.05  # outside the mask matters little: the sampler replaces it
    return ((prediction - target).abs() * weight).sum() / (weight.sum() * target.shape[1])


def init_network(config: RelightConfig, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    network = build_network(config)
    torch.nn.init.zeros_(network.conv_out.weight)  # start as "return the conditioning image"
    torch.nn.init.zeros_(network.conv_out.bias)
    return network


@torch.no_grad()
def evaluate(network, data: dict, concat: list[str], batch: int = 32) -> dict[str, float]:
    """Masked PSNR of a one-step answer from pure noise, and of the conditioning image itself
    (relight: the input left unchanged; fill: the push-pull pre-fill)."""
    network.eval()
    generator = torch.Generator().manual_seed(1234)
    figures: dict[str, float] = {}
    count = len(data["image"])
    for mode in ("relight", "fill"):
        model_psnr, baseline_psnr = [], []
        for start in range(0, count, batch):
            index = np.arange(start, min(count, start + batch))
            example = make_batch(data, index, mode, generator, concat)
            noise = torch.randn(example.target.shape, generator=generator)
            t = torch.full((len(index),), 1000.0)
            answer = network.denoise(torch.cat([noise, example.condition], dim=1), t)
            model_psnr.append(masked_psnr(answer.clamp(-1, 1), example.target, example.mask))
            baseline = example.condition[:, :3]
            baseline_psnr.append(masked_psnr(baseline, example.target, example.mask))
        # median: flat backgrounds make some fills exact (infinite PSNR) for any method
        figures[f"{mode}_psnr"] = float(torch.cat(model_psnr).median())
        figures[f"{mode}_baseline_psnr"] = float(torch.cat(baseline_psnr).median())
    network.train()
    return figures


def save_checkpoint(path: Path, state: dict) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def train(args: argparse.Namespace) -> None:
    torch.set_num_threads(args.threads)
    started = time.time()
    config = model_config()
    concat = list(config.concat)
    train_data = load_or_render(
        args.cache_dir, "train", list(range(args.scenes)), args.size, args.frame
    )
    val_seeds = [VALIDATION_SEED_BASE + i for i in range(args.val_scenes)]
    val_data = load_or_render(args.cache_dir, "val", val_seeds, args.size, args.frame)
    render_minutes = (time.time() - started) / 60

    network = init_network(config, args.seed)
    ema = init_network(config, args.seed)
    ema.load_state_dict(network.state_dict())
    optimizer = torch.optim.AdamW(network.parameters(), lr=args.lr, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(args.seed)
    step, log = 0, []
    checkpoint = args.cache_dir / f"checkpoint_seed{args.seed}_steps{args.steps}.pt"
    if checkpoint.exists() and not args.restart:
        state = torch.load(checkpoint, weights_only=False)
        network.load_state_dict(state["network"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
        step, log = state["step"], state["log"]
        print(f"resumed from {checkpoint} at step {step}", file=sys.stderr)

    last_save = time.time()
    scenes = len(train_data["image"])
    stop_at = min(args.steps, step + args.stop_after) if args.stop_after else args.steps
    with tqdm(total=args.steps, initial=step, desc="train", unit="step") as bar:
        while step < stop_at:
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(step, args.steps, args.lr)
            mode = "relight" if torch.rand(1, generator=generator) < RELIGHT_SHARE else "fill"
            index = np.sort(torch.randint(0, scenes, (args.batch,), generator=generator).numpy())
            example = make_batch(train_data, index, mode, generator, concat, args.crop)
            condition = drop_light(example.condition, concat, args.light_dropout, generator)
            x_t, t = noisy_input(example.target, generator)  # the regressor ignores both
            prediction = network.denoise(torch.cat([x_t, condition], dim=1), t * 1000)
            loss = loss_fn(prediction, example.target, example.mask)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            optimizer.step()
            with torch.no_grad():
                decay = min(args.ema, (1 + step) / (10 + step))
                for e, p in zip(ema.parameters(), network.parameters(), strict=True):
                    e.lerp_(p, 1 - decay)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.4f}", mode=mode)
            if step % args.eval_every == 0 or step == args.steps:
                figures = evaluate(ema, val_data, concat)
                log.append({"step": step, **figures})
                bar.write(json.dumps(log[-1]))
            due = time.time() - last_save > args.checkpoint_minutes * 60
            if due or step == stop_at:
                save_checkpoint(
                    checkpoint,
                    {
                        "network": network.state_dict(),
                        "ema": ema.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "generator": generator.get_state(),
                        "step": step,
                        "log": log,
                    },
                )
                last_save = time.time()

    if step < args.steps:
        print(f"stopped at step {step} of {args.steps}; run again to resume", file=sys.stderr)
        return
    provenance = {
        "trained": True,
        "script": "training/train.py",
        "train_scene_seeds": [0, args.scenes - 1],
        "validation_scene_seeds": [val_seeds[0], val_seeds[-1]],
        "render_crop": args.size,
        "crop": args.crop,
        "noise_skew": NOISE_SKEW,
        "relight_share": RELIGHT_SHARE,
        "frame": args.frame,
        "steps": args.steps,
        "batch": args.batch,
        "lr": args.lr,
        "seed": args.seed,
        "render_minutes": round(render_minutes, 1),
        "wall_minutes_this_run": round((time.time() - started) / 60, 1),
        "validation": log[-1] if log else {},
    }
    save_relight_model(args.out, ema.state_dict(), config, provenance, dtype=torch.float16)
    print(json.dumps(provenance, indent=1))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--scenes", type=int, default=16000)
    parser.add_argument("--val-scenes", type=int, default=128)
    parser.add_argument("--size", type=int, default=160, help="rendered crop side (px)")
    parser.add_argument("--crop", type=int, default=96, help="random window per batch (px)")
    parser.add_argument("--frame", type=int, default=256, help="scene framing (px)")
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--ema", type=float, default=0.999)
    parser.add_argument("--light-dropout", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--checkpoint-minutes", type=float, default=5.0)
    parser.add_argument("--restart", action="store_true", help="ignore an existing checkpoint")
    parser.add_argument("--cache-dir", type=Path, default=CACHE, help="rendered data, checkpoints")
    parser.add_argument(
        "--stop-after", type=int, default=0, help="stop this run after N steps (resume later)"
    )
    args = parser.parse_args(argv)
    multiple = model_config().downscale
    for name in ("size", "crop"):
        value = getattr(args, name)
        if value <= 0 or value % multiple:
            parser.error(f"--{name}: expected a positive multiple of {multiple}, got {value}")
    return args


if __name__ == "__main__":
    train(parse_args())
