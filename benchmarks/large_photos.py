"""Photos as people have them: time and memory of a small mask on a very large photo.

  .venv/bin/python -P benchmarks/large_photos.py [--out-dir DIR] [--skip-100mp]

Through a real ComfyUI host and the shipped workflow (LoadImage -> LoadImageMask ->
MaskConditioning -> RelightInpaintSampler -> SaveImage, the pack's own model):
- 24 MP (6000x4000), one mask of about 2 % of the photo. Time, on one server, of the full photo
  against the sum of (a) its crop run alone (the crop the sampler cuts, given as a photo of its
  own) and (b) the same photo with an empty mask (what reading and writing 24 MP costs). Every
  run uploads its files under new names, so every node re-executes. Goal: ratio <= 1.3.
- 100 MP (10000x10000), small mask: the host's peak RSS (VmHWM) of a fresh server running the
  workflow, against a fresh server running it with an empty mask. ComfyUI's IMAGE and MASK are
  float32 frames (1.2 GB and 0.4 GB at 100 MP); the IMAGE the pack returns (the empty-mask run
  returns the input itself) is counted apart from its own working memory. Goal: <= 1 GB above.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import uuid
from pathlib import Path

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("benchmarks")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ..conditioning.crop_stitch import plan_crops  # noqa: E402
from ..conditioning.mask import grow_and_feather  # noqa: E402
from ..host.comfy_server import run_prompt, start_server  # noqa: E402
from ..sampling.crops import MIN_CROP  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = REPO / "workflows" / "api" / "relight_inpaint_photo.json"
Image.MAX_IMAGE_PIXELS = None  # our own 100 MP test photo


def node_id(workflow: dict, class_type: str) -> str:
    return next(k for k, v in workflow.items() if v["class_type"] == class_type)


def photo(width: int, height: int) -> Image.Image:
    """The bundled demo photo blown up to the size, with fine grain (a real photo's noise)."""
    base = Image.open(REPO / "assets" / "relight_demo_photo.png").convert("RGB")
    big = np.asarray(base.resize((width, height), Image.BICUBIC), dtype=np.int16)
    rng = np.random.default_rng(0)
    for row in range(0, height, 1000):  # in bands: no 100 MP float temporary here
        band = big[row : row + 1000]
        band += rng.integers(-6, 7, size=band.shape, dtype=np.int16)
    return Image.fromarray(big.clip(0, 255).astype(np.uint8))


def ellipse_mask(width: int, height: int, share: float) -> Image.Image:
    """An ellipse covering `share` of the frame, a little right of the centre."""
    a = (share * width * height / np.pi / 0.75) ** 0.5  # semi-axes a (x) and 0.75 a (y)
    rows, cols = np.ogrid[:height, :width]
    cy, cx = 0.55 * height, 0.6 * width
    inside = ((cols - cx) / a) ** 2 + ((rows - cy) / (0.75 * a)) ** 2 <= 1.0
    return Image.fromarray((inside * 255).astype(np.uint8))


def png_bytes(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def run_workflow(server, photo_png: bytes, mask_png: bytes) -> dict:
    """The workflow on these files, under new names (so every node runs), written straight
    into the host's input folder (a 100 MP PNG is above the upload limit) and removed after."""
    workflow = json.loads(WORKFLOW.read_text())
    tag = uuid.uuid4().hex[:8]
    inputs = server.base_dir / "input"
    files = {"LoadImage": f"bench-photo-{tag}.png", "LoadImageMask": f"bench-mask-{tag}.png"}
    try:
        for (node, name), data in zip(files.items(), (photo_png, mask_png), strict=True):
            (inputs / name).write_bytes(data)
            workflow[node_id(workflow, node)]["inputs"]["image"] = name
        entry = run_prompt(server.url, workflow, timeout=3600)
        remove_outputs(server.base_dir, entry)
        return entry
    finally:
        for name in files.values():
            (inputs / name).unlink(missing_ok=True)


def remove_outputs(base_dir: Path, entry: dict) -> None:
    """Delete the images a run saved (24 and 100 MP PNGs would pile up in the host's output)."""
    for output in entry.get("outputs", {}).values():
        for image in output.get("images", []):
            path = base_dir / image["type"] / image.get("subfolder", "") / image["filename"]
            path.unlink(missing_ok=True)


def execution_seconds(entry: dict) -> float:
    stamps = {event: data["timestamp"] for event, data in entry["status"]["messages"]}
    return (stamps["execution_success"] - stamps["execution_start"]) / 1000.0


def crop_of(mask: Image.Image, workflow: dict) -> tuple[int, int, int, int]:
    """The box the sampler cuts for this mask (same grow, feather and context)."""
    settings = workflow[node_id(workflow, "MaskConditioning")]["inputs"]
    sampler = workflow[node_id(workflow, "RelightInpaintSampler")]["inputs"]
    grown = grow_and_feather(
        torch.from_numpy(np.asarray(mask, dtype=np.float32) / 255.0)[None],
        settings["grow"],
        settings["feather"],
    )
    (box,) = plan_crops(grown[0], sampler.get("context", 0.5), MIN_CROP).boxes
    return box.left, box.top, box.right, box.bottom


def time_24mp(runs: int, out_dir: Path) -> dict:
    width, height = 6000, 4000
    image, mask = photo(width, height), ellipse_mask(width, height, 0.02)
    box = crop_of(mask, json.loads(WORKFLOW.read_text()))
    files = {
        "full photo, 2 % mask": (png_bytes(image), png_bytes(mask)),
        "its crop alone": (png_bytes(image.crop(box)), png_bytes(mask.crop(box))),
        "full photo, empty mask": (png_bytes(image), png_bytes(Image.new("L", image.size, 0))),
    }
    times: dict[str, list[float]] = {name: [] for name in files}
    with start_server() as server:
        for run in range(runs + 1):  # run 0 loads the model and warms up
            for name, (photo_png, mask_png) in files.items():
                entry = run_workflow(server, photo_png, mask_png)
                if run:
                    times[name].append(execution_seconds(entry))
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = medians["full photo, 2 % mask"] / (
        medians["its crop alone"] + medians["full photo, empty mask"]
    )
    crop_w, crop_h = box[2] - box[0], box[3] - box[1]
    print(
        f"\n24 MP photo {width}x{height}, mask {np.asarray(mask).mean() / 255:.1%}, crop "
        f"{crop_w}x{crop_h}; median of {runs} runs, ComfyUI's execution time"
    )
    for name, values in times.items():
        listed = ", ".join(f"{v:.2f}" for v in values)
        print(f"  {name:<26}{medians[name]:>8.2f} s   runs: {listed}")
    print(f"  ratio full / (crop + empty): {ratio:.3f}   (goal <= 1.3)")
    return {"seconds": medians, "ratio": ratio, "crop": [crop_w, crop_h]}


def peak_rss(out_dir: Path, photo_png: bytes, mask_png: bytes) -> int:
    with start_server() as server:
        run_workflow(server, photo_png, mask_png)
        return server.peak_rss_bytes()


def memory_100mp(out_dir: Path) -> dict:
    side = 10000
    image = photo(side, side)
    mask = ellipse_mask(side, side, 0.005)
    photo_png = png_bytes(image)
    del image
    empty = peak_rss(out_dir, photo_png, png_bytes(Image.new("L", (side, side), 0)))
    masked = peak_rss(out_dir, photo_png, png_bytes(mask))
    frames = side * side * 3 * 4  # the returned IMAGE (the final MASK is made in both runs)
    gib = 2**30
    above = (masked - empty) / gib
    print(f"\n100 MP photo {side}x{side}, mask 0.5 %: host peak RSS (fresh server each)")
    print(
        f"  empty mask {empty / gib:.2f} GiB, with the mask {masked / gib:.2f} GiB: "
        f"{above:.2f} GiB above   (goal <= 1 GB)"
    )
    print(
        f"  of which the returned IMAGE (float32, {side}x{side}x3): "
        f"{frames / gib:.2f} GiB; the pack's own working memory: {above - frames / gib:.2f} GiB"
    )
    return {"empty_gib": empty / gib, "masked_gib": masked / gib, "frames_gib": frames / gib}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out-dir", type=Path, default=REPO / "out" / "large_photos")
    parser.add_argument("--skip-24mp", action="store_true")
    parser.add_argument("--skip-100mp", action="store_true")
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    results = {} if args.skip_24mp else {"24mp": time_24mp(args.runs, args.out_dir)}
    if not args.skip_100mp:
        results["100mp"] = memory_100mp(args.out_dir)
    (args.out_dir / "large_photos.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
