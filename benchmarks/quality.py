"""Quality and speed of the pack's default model, through the `relight` CLI on a real host.

  .venv/bin/python -P benchmarks/quality.py [--scenes 200] [--model relight_default.safetensors]
                                            [--baseline-model relight_gradient_v1.safetensors]
                                            [--steps N (default: the workflow's, 1)]

Held-out procedural scenes (seeds never used in training) at 256x256, each with ground truth:
- relight: the target object pasted lit by another light; the request is the scene's light.
  Also asked with the mirrored light (azimuth + 180, same elevation), scored against that request,
  and with the light map zeroed (cfg 0: the model's unconditional branch).
- fill: the target and its shadow masked; the answer is the scene without them. Baselines: the
  input unchanged, OpenCV's Telea, the push-pull fill (smooth, from the border) and the
  exemplar fill the model sees in the hole (conditioning/exemplar_fill).
Every method runs in the same call: the model, the baseline model (the previous default, trained
on the gradient light map) through the same CLI, and in-process the pipeline with its refiner off
(re-shading with the pack's estimated normals and light) and, as a reference only, re-shading
with the renderer's true normals. The pack's pipeline never sees true normals.
--encoding camera: the scenes as a camera writes them. The renderer's images are linear light
(tonemapped) saved as they are, which no camera or PNG a user has does: a relight whose
arithmetic is in linear light after decoding sRGB, as it must be on photos, is scored against
the wrong curve on them (its changes come out as their 1/2.4 power). camera encodes every input
and truth to sRGB first and reads the light of an output after decoding it; both encodings are
worth printing, each tree in the same encoding. --scenes-only skips the photos, the scene-light
fit and the speed runs (a shorter run for comparing trees).
Colour kept under a white light: the bundled photo and scikit-image's astronaut (a colour
portrait) relit from four directions; the median rg-chromaticity shift inside the mask.
Prints tables, writes PNG grids (held-out examples; both photos under four lights) to --out-dir,
and measures seconds per 512x512 image for both models (model loaded; at the run's steps and at
20) and the host's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("benchmarks")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ..conditioning.prefill import push_pull_fill  # noqa: E402
from ..host.comfy_server import run_prompt, start_server, upload_image  # noqa: E402
from ..host.workflow import (  # noqa: E402
    apply_options,
    load_workflow,
    node_inputs,
    set_input_images,
)
from ..lighting.light import Light  # noqa: E402
from ..lighting.light_estimate import estimate_light, estimate_scene_light  # noqa: E402
from ..lighting.normals import (  # noqa: E402
    angular_error_degrees,
    estimate_normals,
    heights_from_depth,
    normals_from_heights,
)
from ..lighting.reshade import reshade  # noqa: E402
from ..sampling.spatial import start_image  # noqa: E402
from ..training.render import depth_map, render_relit_target, render_sample  # noqa: E402
from .metrics import angle_degrees, fit_light_direction, masked_psnr, masked_ssim  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
HELD_OUT_SEED_BASE = 20_000_000  # training uses 0.., validation 10_000_000..
SIZE = 256
MASK_GROW = 2
PHOTO_AZIMUTHS = (0, 90, 180, 270)
DARK, CLIPPED = 0.05, 0.95  # colour shift: pixels neither dark nor clipped
ASTRONAUT_HEAD = (226, 105, 75, 100)  # ellipse centre x, y and radii over hair and face (px)


@dataclass
class Case:
    name: str
    seed: int
    curved: bool
    mask: np.ndarray
    target: np.ndarray
    truth: np.ndarray
    request: np.ndarray
    normals: np.ndarray
    albedo: np.ndarray
    input: np.ndarray
    depth: np.ndarray  # the renderer's surface z, scaled 0..1 (white = near): a user's depth map
    depth_relief: float  # its range as a fraction of the image side (heights_from_depth's relief)
    scene_light: np.ndarray  # the scene's light direction (the request in relight cases)
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    encoding: str = "rendered"  # see --encoding


def grow(mask: np.ndarray, pixels: int) -> np.ndarray:
    kernel = np.ones((2 * pixels + 1, 2 * pixels + 1), np.uint8)
    return cv2.dilate((mask > 0.5).astype(np.uint8), kernel).astype(np.float32)


def scene_light_error(case: Case) -> dict[str, tuple[float, float]]:
    """The scene's light found outside the mask from its depth map, as Estimate Light finds it
    (shading and cast shadows, the depth map's scale unknown), and by the Lambertian fit alone
    on the normals of the depth map at its true scale (a baseline the user could not run: a
    depth estimator gives no scale): method -> (angle to the scene's light, confidence)."""
    depth = torch.from_numpy(case.depth)[None]
    image = torch.from_numpy(case.input)[None].float()
    outside = torch.from_numpy(1.0 - case.mask)[None].float()
    normals = normals_from_heights(heights_from_depth(depth, max(case.depth_relief, 1e-3)))
    found = {
        "estimate_light": estimate_scene_light(image, depth, outside),
        "lambert_true_scale": estimate_light(image, normals, outside),
    }
    return {
        name: (
            angle_degrees(e.light.direction[0].numpy(), case.scene_light),
            float(e.confidence[0]),
        )
        for name, e in found.items()
    }


def mirrored(light: dict) -> dict:
    direction = np.asarray(light["direction"], dtype=float)
    return {**light, "direction": np.array([-direction[0], -direction[1], direction[2]])}


def hex_color(color) -> str:
    return "#" + "".join(f"{round(float(c) * 255):02x}" for c in np.clip(color, 0, 1))


def light_options(light: dict) -> dict:
    return {
        "light": [float(v) for v in light["direction"]],
        "intensity": float(light["intensity"]),
        "ambient": float(light["ambient"]),
        "color": hex_color(light["color"]),
    }


# numpy twins of lighting/exposure's to_srgb and to_linear, on purpose: the script is also run
# in the tree before the rework (the baseline in the same session), which has no lighting/.
def srgb_encoded(linear: np.ndarray) -> np.ndarray:
    """Linear 0..1 -> sRGB-encoded 0..1 (the exact piecewise curve), as a camera writes it."""
    linear = np.clip(linear, 0.0, 1.0)
    return np.where(
        linear <= 0.0031308, linear * 12.92, 1.055 * np.power(linear, 1 / 2.4) - 0.055
    ).astype(np.float32)


def srgb_decoded(encoded: np.ndarray) -> np.ndarray:
    encoded = np.clip(encoded, 0.0, 1.0)
    return np.where(
        encoded <= 0.04045, encoded / 12.92, np.power((encoded + 0.055) / 1.055, 2.4)
    ).astype(np.float32)


ENCODING = {"rendered": lambda image: image, "camera": srgb_encoded}
DECODING = {"rendered": lambda image: image, "camera": srgb_decoded}


def make_cases(seed: int, encoding: str = "rendered") -> tuple[list[Case], dict]:
    sample = render_sample(seed, size=SIZE)
    encode = ENCODING[encoding]
    for key in ("image", "image_light2", "image_without_target"):
        sample[key] = encode(sample[key])
    target = sample["target_mask"] > 0.5
    pasted = np.where(target[..., None], sample["image_light2"], sample["image"])
    eroded = cv2.erode(target.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(np.float32)
    common = {
        "seed": seed,
        "curved": bool(sample["curved"]),
        "normals": sample["normals"],
        "albedo": sample["albedo"],
        "input": pasted,
        "target": eroded,
        "depth": depth_map(sample["surface_z"]).astype(np.float32),
        "depth_relief": float(np.ptp(sample["surface_z"])) / 2.0,  # the frame spans 2 units
        "scene_light": np.asarray(sample["light"]["direction"]),
        "encoding": encoding,
    }
    relight_mask = grow(sample["target_mask"], MASK_GROW)
    flipped = mirrored(sample["light"])
    mirror_truth = encode(render_relit_target(sample["scene"], SIZE, flipped))
    hole = np.maximum(sample["target_mask"], sample["shadow_mask"])
    cases = [
        Case(
            "relight",
            mask=relight_mask,
            truth=sample["image"],
            request=np.asarray(sample["light"]["direction"]),
            **common,
        ),
        Case(
            "mirrored",
            mask=relight_mask,
            truth=mirror_truth,
            request=np.asarray(flipped["direction"]),
            **common,
        ),
        Case(
            "fill",
            mask=grow(hole, MASK_GROW),
            truth=sample["image_without_target"],
            request=np.asarray(sample["light"]["direction"]),
            **{**common, "input": sample["image"]},
        ),
    ]
    lights = {"relight": sample["light"], "mirrored": flipped, "fill": sample["light"]}
    return cases, lights


def save_png(path: Path, image: np.ndarray) -> None:
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(path)


def write_manifest(
    cases: list[Case],
    lights: list[dict],
    folder: Path,
    model: str,
    steps: int | None = None,
    baseline: str | None = None,
) -> Path:
    """One line per run: the model as asked, with the light map zeroed (cfg 0), and the baseline
    model. `steps` None keeps the workflow's default, as the CLI would."""
    lines = []
    for index, (case, light) in enumerate(zip(cases, lights, strict=True)):
        stem = f"{index:04d}_{case.name}"
        save_png(folder / f"{stem}_in.png", case.input)
        save_png(folder / f"{stem}_mask.png", np.repeat(case.mask[..., None], 3, axis=2))
        mode = "fill" if case.name == "fill" else "relight"
        base = {
            "image": f"{stem}_in.png",
            "mask": f"{stem}_mask.png",
            "mode": mode,
            "grow": 0,
            "feather": 0,
            "model": model,
            "seed": case.seed,
            **light_options(light),
            **({} if steps is None else {"steps": steps}),
        }
        lines.append({**base, "out": f"{stem}_model.png"})
        if case.name == "relight":
            lines.append({**base, "cfg": 0.0, "out": f"{stem}_nolight.png"})
        if baseline is not None:
            lines.append({**base, "model": baseline, "out": f"{stem}_previous.png"})
    return write_manifest_lines(folder / "manifest.jsonl", lines)


def write_manifest_lines(path: Path, lines: list[dict]) -> Path:
    """A `./relight batch` manifest: one JSON object per line."""
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def run_batch(manifest: Path, out_dir: Path, url: str) -> None:
    command = [
        sys.executable,
        "-m",
        "host.cli",
        "batch",
        str(manifest),
        "--out-dir",
        str(out_dir),
        "--server",
        url,
    ]
    subprocess.run(command, cwd=REPO, check=True)


def load_png(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


def telea(case: Case) -> np.ndarray:
    pixels = np.round(case.input * 255).astype(np.uint8)
    filled = cv2.inpaint(pixels, (case.mask > 0.5).astype(np.uint8), 5, cv2.INPAINT_TELEA)
    return filled.astype(np.float32) / 255.0


def prefill(case: Case) -> np.ndarray:
    """The pre-fill the model sees in the hole and starts from (the exemplar fill)."""
    image = torch.from_numpy(case.input)[None].float()
    mask = torch.from_numpy(case.mask)[None].float()
    return start_image(image, mask, "fill")[0].numpy()


def push_pull(case: Case) -> np.ndarray:
    """The smooth fill from the hole's border (the pre-fill before the exemplar fill)."""
    pixels = torch.from_numpy(case.input).movedim(-1, 0)[None].float() * 2.0 - 1.0
    known = torch.from_numpy(case.mask < 0.5)[None, None].float()
    return ((push_pull_fill(pixels, known)[0].movedim(0, -1) + 1.0) / 2.0).numpy()


def as_light(light: dict) -> Light:
    return Light(
        direction=torch.tensor(np.asarray(light["direction"], np.float32))[None],
        intensity=torch.tensor([float(light["intensity"])]),
        ambient=torch.tensor([float(light["ambient"])]),
        color=torch.tensor(np.asarray(light["color"], np.float32))[None],
    )


def reshaded(case: Case, light: dict, true_normals: bool = False) -> np.ndarray:
    """The pipeline with its refiner off: re-shading with the pack's estimated normals and light
    (true_normals: the renderer's, a reference no user has)."""
    image = torch.from_numpy(case.input)[None].float()
    mask = torch.from_numpy(case.mask)[None].float()
    normals = torch.from_numpy(case.normals)[None] if true_normals else None
    return reshade(image, mask, as_light(light), normals).image[0].numpy()


def normals_error(case: Case) -> float:
    """Median angle of the pack's silhouette normals from the renderer's, on the object."""
    estimate, _ = estimate_normals(torch.from_numpy(case.mask)[None].float())
    target = torch.from_numpy(case.target)[None]
    return float(angular_error_degrees(estimate, torch.from_numpy(case.normals)[None], target)[0])


def light_error(case: Case, image: np.ndarray) -> float | None:
    """Angle between the light the target shows (on its eroded mask) and the request."""
    linear = DECODING[case.encoding](image)
    fitted = fit_light_direction(linear, case.albedo, case.normals, case.target)
    return None if fitted is None else angle_degrees(fitted, case.request)


def summarize(values: list[float]) -> str:
    """Median; an exact answer (infinite PSNR, e.g. a fill of a flat floor) counts as the best
    value, not as missing: dropping it would penalise the method that got it exactly."""
    known = [v for v in values if not np.isnan(v)]
    return f"{statistics.median(known):6.2f}" if known else "   n/a"


def percentile(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):6.1f}" if values else "   n/a"


def score(cases: list[Case]) -> list[tuple[str, str, str, str, str, str]]:
    rows = []
    by_task: dict[str, list[Case]] = {}
    for case in cases:
        by_task.setdefault(case.name, []).append(case)
    for task, group in by_task.items():
        methods = ["model", "previous", "input"] + (["nolight"] if task == "relight" else [])
        methods += (
            ["telea", "push_pull", "prefill"] if task == "fill" else ["refiner_off", "true_normals"]
        )
        methods += ["truth"] if task != "fill" else []
        for method in methods:
            psnr, ssim, angles = [], [], []
            for case in group:
                if method not in case.outputs and method != "truth":
                    continue
                image = case.truth if method == "truth" else case.outputs[method]
                if method != "truth":
                    psnr.append(masked_psnr(image, case.truth, case.mask))
                    ssim.append(masked_ssim(image, case.truth, case.mask))
                if task != "fill" and case.curved:
                    error = light_error(case, image)
                    if error is not None:
                        angles.append(error)
            rows.append(
                (
                    task,
                    method,
                    summarize(psnr) if psnr else "     -",
                    summarize(ssim) if ssim else "     -",
                    percentile(angles, 50),
                    percentile(angles, 90),
                )
            )
    return rows


def grid(rows: list[list[np.ndarray]]) -> np.ndarray:
    return np.concatenate([np.concatenate(row, axis=1) for row in rows], axis=0)


def default_steps() -> int:
    return int(node_inputs(load_workflow(), "RelightInpaintSampler")["steps"])


def speed_512(url: str, model: str, steps: int, folder: Path, runs: int = 3) -> float:
    sample = render_sample(HELD_OUT_SEED_BASE + 99_999, size=512)
    save_png(folder / "speed_in.png", sample["image"])
    save_png(folder / "speed_mask.png", np.repeat(grow(sample["target_mask"], 4)[..., None], 3, 2))
    upload_image(url, folder / "speed_in.png", "relight_speed_in.png")
    upload_image(url, folder / "speed_mask.png", "relight_speed_mask.png")
    workflow = set_input_images(load_workflow(), "relight_speed_in.png", "relight_speed_mask.png")
    times = []
    for run in range(runs + 1):
        prompt = apply_options(workflow, {"model": model, "steps": steps, "seed": run})
        entry = run_prompt(url, prompt)
        stamps = {event: data["timestamp"] for event, data in entry["status"]["messages"]}
        if run > 0:
            times.append((stamps["execution_success"] - stamps["execution_start"]) / 1000)
    return statistics.median(times)


def astronaut_files(folder: Path) -> tuple[Path, Path]:
    """scikit-image's astronaut (public domain) and an ellipse over her head, as PNG files."""
    from skimage.data import astronaut

    image = astronaut()
    rows, cols = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
    cx, cy, rx, ry = ASTRONAUT_HEAD
    head = ((cols - cx) / rx) ** 2 + ((rows - cy) / ry) ** 2 < 1.0
    save_png(folder / "astronaut.png", image / 255.0)
    save_png(folder / "astronaut_mask.png", np.repeat(head[..., None], 3, axis=2).astype(float))
    return folder / "astronaut.png", folder / "astronaut_mask.png"


PHOTOS = {
    "photo": (REPO / "assets" / "relight_demo_photo.png", REPO / "assets" / "relight_demo_mask.png")
}


def colour_shift(output: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    """Median rg-chromaticity change inside the mask over pixels neither dark nor clipped."""

    def rg(image: np.ndarray) -> np.ndarray:
        return image[..., :2] / np.maximum(image.sum(axis=2, keepdims=True), 1e-6)

    usable = mask > 0.5
    for image in (output, reference):
        usable &= (image.max(axis=2) > DARK) & (image.max(axis=2) < CLIPPED)
    return float(np.median(np.linalg.norm(rg(output) - rg(reference), axis=2)[usable]))


def photo_runs(url: str, models: dict[str, str], folder: Path) -> dict:
    """Each photo under four white lights, per model: (grid, median colour shifts)."""
    photos = {**PHOTOS, "astronaut": astronaut_files(folder)}
    lines = [
        {
            "image": str(image),
            "mask": str(mask),
            "azimuth": az,
            "elevation": 30.0,
            "model": model,
            "out": f"{name}_{label}_az{az}.png",
        }
        for name, (image, mask) in photos.items()
        for label, model in models.items()
        for az in PHOTO_AZIMUTHS
    ]
    run_batch(write_manifest_lines(folder / "photo_manifest.jsonl", lines), folder, url)
    results = {}
    for name, (image, mask) in photos.items():
        original, region = load_png(image), load_png(mask)[..., 0]
        for label in models:
            outs = [load_png(folder / f"{name}_{label}_az{az}.png") for az in PHOTO_AZIMUTHS]
            shifts = [colour_shift(out, original, region) for out in outs]
            picture = grid([[original, outs[0], outs[1]], [original, outs[2], outs[3]]])
            results[name, label] = (picture, shifts)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=200)
    parser.add_argument("--model", default="relight_default.safetensors")
    parser.add_argument("--baseline-model", default="relight_gradient_v1.safetensors")
    parser.add_argument("--out-dir", type=Path, default=REPO / "out" / "benchmarks")
    parser.add_argument(
        "--steps", type=int, default=None, help="sampling steps (default: the workflow's)"
    )
    parser.add_argument("--encoding", choices=sorted(ENCODING), default="rendered")
    parser.add_argument("--scenes-only", action="store_true")
    args = parser.parse_args()
    steps = default_steps() if args.steps is None else args.steps
    folder = args.out_dir
    folder.mkdir(parents=True, exist_ok=True)
    cases, lights = [], []
    for i in range(args.scenes):
        scene_cases, scene_lights = make_cases(HELD_OUT_SEED_BASE + i, args.encoding)
        cases += scene_cases
        lights += [scene_lights[c.name] for c in scene_cases]
    manifest = write_manifest(cases, lights, folder, args.model, steps, args.baseline_model)
    models = {"model": args.model, "previous": args.baseline_model}
    with start_server() as server:
        run_batch(manifest, folder, server.url)
        if not args.scenes_only:
            seconds_512 = {
                (label, n): speed_512(server.url, name, n, folder)
                for label, name in models.items()
                for n in sorted({steps, 20})
            }
            photos = photo_runs(server.url, models, folder)
        peak_rss = server.peak_rss_bytes()
    for index, (case, light) in enumerate(zip(cases, lights, strict=True)):
        collect_outputs(folder / f"{index:04d}_{case.name}", case, light)
    rows = score(cases)
    examples = [[c.input, c.outputs["model"], c.outputs["previous"], c.truth] for c in cases[:12]]
    save_png(folder / "heldout_grid.png", grid(examples))
    print(
        f"{args.scenes} held-out scenes at {SIZE}x{SIZE} ({args.encoding}), model {args.model}, "
        f"{steps} steps;"
    )
    print(f"previous = {args.baseline_model}; refiner_off and true_normals run in-process")
    print(f"{'task':<10}{'method':<14}{'PSNR':>8}{'SSIM':>8}{'angle p50':>11}{'p90':>8}")
    for task, method, psnr, ssim, p50, p90 in rows:
        print(f"{task:<10}{method:<14}{psnr:>8}{ssim:>8}{p50:>11}{p90:>8}")
    curved = [c for c in cases if c.name == "relight" and c.curved]
    print(
        f"normals (silhouette estimate vs renderer), median over {len(curved)} curved objects: "
        f"{statistics.median(normals_error(c) for c in curved):.1f} deg"
    )
    if args.scenes_only:
        return
    scene = [scene_light_error(c) for c in cases if c.name == "relight"]
    print(
        f"scene light outside the mask, from the renderer's depth as a user's depth map "
        f"({len(scene)} scenes): median error, and for the more confident half"
    )
    for method in scene[0]:
        errors = np.array([found[method][0] for found in scene])
        confidence = np.array([found[method][1] for found in scene])
        sure = confidence >= np.median(confidence)
        halves = f"{np.median(errors[sure]):5.1f} / {np.median(errors[~sure]):5.1f}"
        print(
            f"  {method:<20} {np.median(errors):5.1f} deg (more / less confident half {halves}); "
            f"median confidence {np.median(confidence):.2f}"
        )
    print("colour kept under a white light: median rg-chromaticity shift inside the mask")
    for (name, label), (_, shifts) in photos.items():
        print(
            f"  {name:<10}{label:<10}"
            + "  ".join(f"az {a}: {v:.4f}" for a, v in zip(PHOTO_AZIMUTHS, shifts, strict=True))
        )
    for (label, n), seconds in seconds_512.items():
        ratio = seconds / seconds_512["previous", n]
        print(
            f"speed 512x512, {label}, {n} steps, model loaded: {seconds:.2f} s/image "
            f"({ratio:.2f}x the previous default)"
        )
    print(f"host peak RSS: {peak_rss / 2**30:.2f} GiB")
    for (name, label), (picture, _) in photos.items():
        save_png(folder / f"{name}_{label}_grid.png", picture)
    print(f"grids: {folder}")


def collect_outputs(stem: Path, case: Case, light: dict) -> None:
    def output(suffix: str) -> np.ndarray:
        return load_png(stem.with_name(f"{stem.name}_{suffix}.png"))

    case.outputs.update(model=output("model"), previous=output("previous"), input=case.input)
    if case.name == "relight":
        case.outputs["nolight"] = output("nolight")
    if case.name == "fill":
        case.outputs["telea"] = telea(case)
        case.outputs["push_pull"] = push_pull(case)
        case.outputs["prefill"] = prefill(case)
    else:
        case.outputs["refiner_off"] = reshaded(case, light)
        case.outputs["true_normals"] = reshaded(case, light, true_normals=True)


if __name__ == "__main__":
    main()
