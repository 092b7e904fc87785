"""Train the learned shape prior (lighting/shape_prior.py) on rendered figurines, on this CPU.

  .venv/bin/python -P training/shape_prior.py [--steps 2200] [--out models/shape_prior.safetensors]

Each step renders a fresh batch (training/figurines.py, 4 ms a subject): no dataset on disk.
The loss is 1 - cos between the network's normals and the rendered ones inside the silhouette;
the held-out figurines' median angle is printed against the bare dome's. AdamW, cosine schedule.
On 2 CPU cores a step of 16 takes about 0.8 s; a device machine would take many more steps,
larger batches and sizes (docs/relighting.md).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("training")

import torch  # noqa: E402

from ..lighting.shape_prior import MODEL_PATH, network_input  # noqa: E402
from ..model_loader.shape_net import SIZE, ShapeNet, save_shape_net  # noqa: E402
from .figurines import figurine  # noqa: E402

TRAIN_SEED = 0
HELD_OUT_SEED = 123
HELD_OUT = 64


def figurine_batch(count: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """(network input [B,5,S,S], normals [B,3,S,S], mask [B,S,S])."""
    masks, normals, greys = zip(*(figurine(SIZE, generator) for _ in range(count)), strict=True)
    mask = torch.stack(masks).float()
    return network_input(mask, torch.stack(greys)), torch.stack(normals).permute(0, 3, 1, 2), mask


def median_angle(predicted: torch.Tensor, truth: torch.Tensor, mask: torch.Tensor) -> float:
    """The median over subjects of each subject's median angle (degrees) inside its mask."""
    angles = torch.rad2deg(torch.acos((predicted * truth).sum(1).clamp(-1, 1)))
    return float(
        torch.stack([a[m > 0.5].median() for a, m in zip(angles, mask, strict=True)]).median()
    )


def train(steps: int, batch: int, peak: float, out: Path) -> None:
    torch.manual_seed(TRAIN_SEED)
    generator = torch.Generator().manual_seed(TRAIN_SEED)
    held_out = figurine_batch(HELD_OUT, torch.Generator().manual_seed(HELD_OUT_SEED))
    dome_angle = median_angle(held_out[0][:, 1:4], held_out[1], held_out[2])
    net = ShapeNet()
    optimiser = torch.optim.AdamW(net.parameters(), peak, weight_decay=1e-4)
    started = time.time()
    for step in range(1, steps + 1):
        for group in optimiser.param_groups:
            group["lr"] = peak * 0.5 * (1 + math.cos(math.pi * step / steps))
        x, truth, mask = figurine_batch(batch, generator)
        loss = ((1 - (net(x) * truth).sum(1)) * mask).sum() / mask.sum()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        if step % 200 == 0 or step == steps:
            with torch.no_grad():
                net.eval()
                angle = median_angle(net(held_out[0]), held_out[1], held_out[2])
                net.train()
            print(
                f"step {step}/{steps} {time.time() - started:.0f} s loss {loss.item():.4f} "
                f"held-out {angle:.2f} deg (dome {dome_angle:.2f})",
                flush=True,
            )
    provenance = {
        "steps": steps,
        "batch": batch,
        "size": SIZE,
        "peak_lr": peak,
        "seed": TRAIN_SEED,
        "held_out_deg": round(angle, 2),
        "dome_deg": round(dome_angle, 2),
    }
    save_shape_net(net.eval(), out, provenance)
    print(f"wrote {out}: held-out {angle:.2f} deg against the dome's {dome_angle:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2200)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--peak-lr", type=float, default=2e-3)
    parser.add_argument("--out", type=Path, default=MODEL_PATH)
    args = parser.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    train(args.steps, args.batch, args.peak_lr, args.out)


if __name__ == "__main__":
    main()
