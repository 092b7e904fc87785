"""Items per second of one batch on one ComfyUI server and on two (issue 14).

Starts two servers (each its own base directory), warms both, then renders the same batch
three ways and prints items/s and the ratio to the first:
  1. one server, the CLI's own loop (no Ray): the baseline;
  2. one server through Ray (one actor): what Ray's dispatch costs;
  3. two servers through Ray.
Times cover rendering only (Ray's start and the servers' start are printed apart). On a
machine with one GPU per server, the second server should nearly double the rate; on a small
CPU machine the two servers share the same cores, so it helps only while the other one waits
(uploads, fetches, Python between steps).

Run from the repo root:
  .venv/bin/python -P benchmarks/batch_servers.py [--items 24] [--size 128] [--steps 12]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # as the CLI runs: Ray's workers import `host` from the repo

from host import comfy_server as comfy  # noqa: E402
from host.batch import (  # noqa: E402
    BatchRun,
    OneServer,
    agreed_info,
    load_jobs,
    model_names,
    prepare_batch,
)
from host.cluster import RayServers  # noqa: E402


def write_batch(folder: Path, items: int, size: int, steps: int) -> list[str]:
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 4 : 3 * size // 4] = 255
    Image.fromarray(mask, "L").save(folder / "mask.png")
    lines = []
    for index in range(items):
        pixels = np.random.default_rng(index).integers(0, 255, (size, size, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"photo{index}.png")
        entry = {"image": f"photo{index}.png", "mask": "mask.png", "steps": steps, "seed": index}
        lines.append(json.dumps(entry))
    return lines


def timed_run(servers, lines: list[str], folder: Path, label: str) -> float:
    out_dir = folder / label
    jobs, bad = prepare_batch(lines, folder, out_dir)
    assert not bad, bad
    started = time.perf_counter()
    with servers:
        entered = time.perf_counter()
        info = agreed_info(servers.infos(model_names(jobs)))
        load_jobs(jobs, info)  # inputs read before the clock starts, as before
        run = BatchRun(out_dir, jobs, {}, info)
        rendering = time.perf_counter()
        servers.run(jobs, run)
        seconds = time.perf_counter() - rendering
    counts = run.close()
    assert counts == {"done": len(jobs)}, counts
    rate = len(jobs) / seconds
    print(
        f"{label:<28} {rate:6.2f} items/s  ({len(jobs)} items in {seconds:5.1f} s; "
        f"start-up {entered - started:4.1f} s)",
        flush=True,
    )
    return rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument(
        "--threads",
        type=int,
        default=max(1, (os.cpu_count() or 2) // 2),
        help="torch CPU threads per server: each its share of the cores (default); 0 = torch's "
        "default, every core for each server (they then fight over the cores)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        lines = write_batch(folder, args.items, args.size, args.steps)
        base_a = comfy.make_base_dir(folder / "a")
        base_b = comfy.make_base_dir(folder / "b")
        with (
            comfy.start_server(base_dir=base_a, threads=args.threads or None) as a,
            comfy.start_server(base_dir=base_b, threads=args.threads or None) as b,
        ):
            threads = args.threads or "all"
            print(
                f"batch: {args.items} items, {args.size}x{args.size}, {args.steps} steps; CPU, "
                f"{threads} threads per server"
            )
            for server in (a, b):  # load the model once on each before timing anything
                timed_run(OneServer(server.url), lines[:2], folder, f"warm-up {server.port}")
            base = timed_run(OneServer(a.url), lines, folder, "1 server, no Ray")
            one = timed_run(RayServers([a.url], None), lines, folder, "1 server through Ray")
            two = timed_run(
                RayServers([a.url, b.url], None), lines, folder, "2 servers through Ray"
            )
        print(
            f"ratio to 1 server, no Ray: Ray 1 server {one / base:.2f}, 2 servers {two / base:.2f}"
        )
        print(f"2 servers / 1 server (both through Ray): {two / one:.2f}")


if __name__ == "__main__":
    main()
