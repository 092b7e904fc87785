"""Soak: queue N mixed prompts at one ComfyUI server with the pack, and print how many came
back right, how many were lost, and the server's memory after 10 and after N.

The mix, in turn: a good relight, a good fill, a prompt with an unknown sampler (refused at
queue time), a good relight with another light, and one interrupted while it runs. A prompt is lost
when it neither finished nor was refused or interrupted as intended.

Run from the repo root:
  .venv/bin/python -P benchmarks/soak.py [--prompts 100] [--size 96]
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

if __package__ in (None, ""):
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "boot", Path(__file__).resolve().parents[1] / "host" / "bootstrap.py"
    )
    _boot = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_boot)
    __package__ = _boot.run_as_pack_module("benchmarks")  # noqa: A001

from ..host.comfy_server import (  # noqa: E402
    PromptError,
    PromptInterrupted,
    cancel_prompt,
    new_id,
    queue_prompt,
    run_prompt,
    start_server,
    upload_image,
)
from ..host.workflow import build_prompt  # noqa: E402

UPLOADS = "relight_soak"
KINDS = ("relight", "fill", "hostile", "relight_other_light", "interrupted")


def test_images(folder: Path, size: int) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    photo = (rng.random((size, size, 3)) * 200 + 30).astype(np.uint8)
    mask = np.zeros((size, size), np.uint8)
    mask[size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] = 255
    photo_path, mask_path = folder / "photo.png", folder / "mask.png"
    Image.fromarray(photo).save(photo_path)
    Image.fromarray(mask).save(mask_path)
    return photo_path, mask_path


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return math.nan


def prompt_for(kind: str, index: int, image: str, mask: str) -> dict:
    options: dict = {"seed": index, "grow": 0, "feather": 2}
    if kind == "fill":
        options["mode"] = "fill"
    if kind == "relight_other_light":
        options.update(azimuth=float(index % 360), elevation=20.0)
    if kind == "interrupted":
        options["steps"] = 400
    prompt = build_prompt(options, image, mask)
    if kind == "hostile":
        sampler = next(n for n in prompt.values() if n["class_type"] == "RelightInpaintSampler")
        sampler["inputs"]["sampler_name"] = "bogus"
    return prompt


def run_one(url: str, kind: str, prompt: dict) -> bool:
    """True when the prompt ended as its kind should."""
    if kind == "hostile":
        try:
            queue_prompt(url, prompt)
        except PromptError as error:
            return "sampler_name" in str(error)
        return False
    if kind == "interrupted":
        prompt_id = new_id()
        timer = threading.Timer(1.0, cancel_prompt, (url, prompt_id))
        timer.start()
        try:
            run_prompt(url, prompt, prompt_id=prompt_id, timeout=300)
        except PromptInterrupted:
            return True
        finally:
            timer.cancel()
        return False  # finished before the interrupt: not what was asked
    entry = run_prompt(url, prompt, timeout=300)
    return bool(entry.get("outputs"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--size", type=int, default=96, help="test photo side in px")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, start_server() as server:
        photo, mask = test_images(Path(folder), args.size)
        image = upload_image(server.url, photo, "photo.png", UPLOADS)
        mask_name = upload_image(server.url, mask, "mask.png", UPLOADS)
        counts = {kind: [0, 0] for kind in KINDS}  # kind: [as intended, lost]
        rss_at: dict[int, float] = {}
        started = time.perf_counter()
        for index in range(args.prompts):
            kind = KINDS[index % len(KINDS)]
            try:
                ok = run_one(server.url, kind, prompt_for(kind, index, image, mask_name))
            except (PromptError, OSError) as error:
                print(f"prompt {index} ({kind}): {error}", file=sys.stderr)
                ok = False
            counts[kind][0 if ok else 1] += 1
            if index + 1 in (10, args.prompts):
                rss_at[index + 1] = rss_mib(server.process.pid)
        seconds = time.perf_counter() - started
        alive = server.is_running()
        (server.base_dir / "input" / UPLOADS / "photo.png").unlink(missing_ok=True)
        (server.base_dir / "input" / UPLOADS / "mask.png").unlink(missing_ok=True)
    good = sum(c[0] for c in counts.values())
    lost = sum(c[1] for c in counts.values())
    print(f"soak: {args.prompts} prompts in {seconds:.0f} s, {args.size} px photo")
    for kind, (ok, bad) in counts.items():
        print(f"  {kind:22s} as intended {ok:4d}   lost {bad:3d}")
    print(f"  total                  as intended {good:4d}   lost {lost:3d}")
    for n, rss in rss_at.items():
        print(f"  server RSS after {n:4d} prompts: {rss:.0f} MiB")
    print(f"  server still running: {alive}")
    return 0 if lost == 0 and alive else 1


if __name__ == "__main__":
    sys.exit(main())
