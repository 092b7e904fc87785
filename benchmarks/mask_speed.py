"""How long Mask Conditioning's grow takes on the CPU: grow_mask (OpenCV's dilate there) against
torch's separable max-pools (what it used before, and still uses on other devices), in the same
run.

  .venv/bin/python -P benchmarks/mask_speed.py [--repeats 5]

Cases: a sparse batch of four 256 px masks grown 64 px (what a test used to time) and one
24 MP mask (6000 x 4000, a 2 % blob) grown 16 px. Best of --repeats, one torch thread; the two
answers are checked equal before any time is printed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("benchmarks")

import cv2  # noqa: E402
import torch  # noqa: E402

from ..conditioning.mask import grow_mask, max_pool_filter  # noqa: E402


def torch_max_pools(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    return max_pool_filter(mask, pixels)


def best_time(run: Callable[[], torch.Tensor], repeats: int) -> float:
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        seconds.append(time.perf_counter() - start)
    return min(seconds)


def cases() -> list[tuple[str, torch.Tensor, int]]:
    generator = torch.Generator().manual_seed(0)
    sparse = (torch.rand(4, 256, 256, generator=generator) > 0.999).float()
    large = torch.zeros(1, 4000, 6000)
    large[:, 1800:2200, 2500:3700] = 1.0  # 2 % of the photo
    return [("4 x 256 px, grow 64", sparse, 64), ("24 MP, grow 16", large, 16)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    for label, mask, pixels in cases():
        if not torch.equal(grow_mask(mask, pixels), torch_max_pools(mask, pixels)):
            raise SystemExit(f"{label}: grow_mask and the max-pools disagree")
        shipped = best_time(lambda m=mask, p=pixels: grow_mask(m, p), args.repeats)
        plain = best_time(lambda m=mask, p=pixels: torch_max_pools(m, p), args.repeats)
        print(
            f"{label:22s} grow_mask {shipped:.3f} s, torch max-pools {plain:.3f} s "
            f"({shipped / plain:.2f}x)"
        )


if __name__ == "__main__":
    main()
