"""How a batch's start and memory scale with the manifest's length (issue 25), next to an
earlier version of the code, in the same run.

For each manifest length (100 and 10,000 lines of one 72 KB photo by default) and each code
tree (this one, and the CLI as of a baseline commit, extracted with `git archive`), a child
process runs `relight batch` on a stand-in server (no ComfyUI: every render returns a small
PNG at once) and stops the batch after a few renders with Ctrl-C, as a user would. It prints:
- first render: seconds from the CLI's `main()` (its imports done) to the first render;
- peak RSS: the child's peak resident memory (MiB), report written included.
Targets: 10,000 lines → first render ≤ 1 s; peak RSS within +50 MiB of the 100-line run.

Run from the repo root:
  .venv/bin/python -P benchmarks/batch_scale.py [--lines 100 10000] [--baseline db2f9b6]
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
BASELINE = "db2f9b6"  # main before issue 25: every line read and decoded before the first render
RENDERS = 5  # renders before the stand-in presses Ctrl-C
FIRST_RENDER_TARGET_S = 1.0
RSS_GROWTH_TARGET_MIB = 50.0

CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from host import batch, cli

started = []

class StandIn(batch.OneServer):
    def __init__(self): self.url = "stand-in"
    def __enter__(self): return self
    def __exit__(self, *exc): pass
    def infos(self, names): return {"stand-in": {"pack_version": "0", "models": {}}}

def render_item(url, server, options, inputs, prompt_id, on_progress=None):
    started.append(time.perf_counter())
    if len(started) > int(sys.argv[4]):
        raise KeyboardInterrupt
    return batch.Outcome(batch.DONE, server, 0.0, PNG)

PNG = open(sys.argv[5], "rb").read()
batch.render_item = render_item
cli.batch_servers = lambda urls, cluster: StandIn()
cli.stop_on_signals = lambda: None
begin = time.perf_counter()
cli.main(["batch", sys.argv[2], "--out-dir", sys.argv[3]])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"first_render_s": started[0] - begin, "peak_rss_mib": peak}))
"""


def write_photo(folder: Path) -> None:
    """A 72 KB PNG photo (noise compresses poorly) and its mask."""
    pixels = np.random.default_rng(0).integers(0, 255, (156, 156, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(folder / "photo.png")
    mask = np.zeros((156, 156), np.uint8)
    mask[40:110, 40:110] = 255
    Image.fromarray(mask, "L").save(folder / "mask.png")
    buffer = io.BytesIO()
    Image.fromarray(pixels[:8, :8]).save(buffer, format="PNG")
    (folder / "rendered.png").write_bytes(buffer.getvalue())


def write_manifest(folder: Path, lines: int) -> Path:
    manifest = folder / f"manifest_{lines}.jsonl"
    entries = (
        json.dumps({"image": "photo.png", "mask": "mask.png", "seed": n, "steps": 2})
        for n in range(lines)
    )
    manifest.write_text("\n".join(entries) + "\n")
    return manifest


def extract(commit: str, into: Path) -> Path:
    """The code the CLI runs (host/, the workflow file, pyproject.toml) as of `commit`."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", commit, "host", "workflows", "pyproject.toml"],
        check=True,
        capture_output=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def measure(tree: Path, manifest: Path, out_dir: Path, folder: Path) -> dict:
    command = [sys.executable, "-c", CHILD, str(tree), str(manifest), str(out_dir)]
    command += [str(RENDERS), str(folder / "rendered.png")]
    done = subprocess.run(command, cwd=tree, capture_output=True, text=True, timeout=900)
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"{tree}: the batch failed:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, nargs="+", default=[100, 10_000])
    parser.add_argument("--baseline", default=BASELINE, help=f"commit to compare ({BASELINE})")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="batch_scale_") as temp:
        folder = Path(temp)
        write_photo(folder)
        trees = {"today": REPO, f"before ({args.baseline})": extract(args.baseline, folder / "b")}
        results: dict[str, dict[int, dict]] = {label: {} for label in trees}
        print(f"photo: {(folder / 'photo.png').stat().st_size / 1024:.0f} KB", flush=True)
        for lines in args.lines:
            manifest = write_manifest(folder, lines)
            for label, tree in trees.items():
                out_dir = folder / f"out_{label.split()[0]}_{lines}"
                result = measure(tree, manifest, out_dir, folder)
                results[label][lines] = result
                print(
                    f"{label:<18} {lines:>6} lines: first render {result['first_render_s']:6.2f} s,"
                    f" peak RSS {result['peak_rss_mib']:6.0f} MiB",
                    flush=True,
                )
        verdict(results["today"], min(args.lines), max(args.lines))


def verdict(today: dict[int, dict], fewest: int, most: int) -> None:
    first = today[most]["first_render_s"]
    growth = today[most]["peak_rss_mib"] - today[fewest]["peak_rss_mib"]
    met = "met" if first <= FIRST_RENDER_TARGET_S else "NOT met"
    target = f"target first render ≤ {FIRST_RENDER_TARGET_S:g} s at {most} lines"
    print(f"{target}: {first:.2f} s, {met}")
    met = "met" if growth <= RSS_GROWTH_TARGET_MIB else "NOT met"
    print(
        f"target peak RSS within +{RSS_GROWTH_TARGET_MIB:g} MiB of {fewest} lines: "
        f"{growth:+.0f} MiB, {met}"
    )


if __name__ == "__main__":
    main()
