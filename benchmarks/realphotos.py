"""Relighting measured against reality: real photos of one subject under known lights.

  .venv/bin/python -P benchmarks/realphotos.py [PHOTOS (default ../shared/realphotos)]
      [--model relight_default.safetensors] [--baseline-model relight_gradient_v1.safetensors]
      [--pairs 40] [--out-dir out/realphotos] [--normals-oracles]
      [--only SUBJECT ...] [--reshade-only] [--whole-photo]

Protocol (issue 10): the input is the photo under light A, the request is light B, and the
answer is compared with the real photo under B inside the subject:
- masked PSNR after a per-channel gain fit (the absolute exposure of B is not the method's);
- light error: a Lambertian light fitted to the answer with photometric-stereo normals and
  albedo (least squares over every photo of the subject), against B; the real photo B's own fit
  is the metric's floor;
- colour shift: median rg-chromaticity change from the input, over subject pixels neither dark
  nor clipped (real photo B against A shows what the light itself does);
- flat: the share of the subject where the answer has under half the real photo B's fine
  texture (metrics.flat_share), mean over the pairs: a plaster-like fill of an old shadow;
- normals: the pack's silhouette estimate against photometric stereo (median angle).
Methods in the same run: the input unchanged, the previous default (gradient light map), the
re-shading alone (the pack's estimated normals and light, no crop, no model), the pipeline with
its refiner on and as shipped (refiner auto), and a Lambertian quotient relight with the
photometric-stereo normals (what a shading-only method can reach with the true shape). The
photos are linear: the pack is shown them display-encoded (^1/2.2), its answers decoded.
Today's code as the baseline: run the same script of the earlier tree (--pairs equal: the same
pairs are drawn). The pack's own pipeline always
uses its estimated normals and light, never the photometric-stereo ones.

--normals-oracles adds two re-shadings that tell at which scale the pack's normals lose: the
photometric-stereo normals blurred at COARSE_SIGMA of the subject's side (`ps_coarse`), and the
same with the pack's own finer detail added (`ps_coarse_own_fine`). Where `ps_coarse_own_fine`
is near `quotient_ps`, the pack's fine detail is right and its coarse shape is what costs.

--whole-photo gives the pack (and the photometric-stereo quotient) the whole photo as its region,
as a user relighting a whole portrait would, and scores inside the same masks: on the Yale face,
whose ellipse lies inside the face, it tells what the ellipse's edge fade costs from what the
shape costs.

The photos are not the project's (see their README): the benchmark reads them from the folder
given, writes its pictures outside the repository's tracked files, and is run by hand, not in CI.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "host"))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("benchmarks")

import comfy.utils  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from ..conditioning.filters import masked_average  # noqa: E402
from ..conditioning.mask import prepare_masked_image  # noqa: E402
from ..conditioning.upscale import restorer  # noqa: E402
from ..lighting.light import Light, make_light  # noqa: E402
from ..lighting.normals import angular_error_degrees, estimate_normals  # noqa: E402
from ..lighting.reshade import reshade  # noqa: E402
from ..lighting.subject import estimated_geometry  # noqa: E402
from ..model_loader.relight_model import load_relight_model  # noqa: E402
from ..nodes.relight_inpaint_sampler import DEFAULT_CONTEXT  # noqa: E402
from ..sampling.crops import ONE_STEP, relight_crops  # noqa: E402
from .metrics import angle_degrees, fit_light_direction, flat_share  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = REPO.parent / "shared" / "realphotos"
SHADOW, CLIPPED = 0.03, 0.95  # photometric stereo ignores pixels outside this range
DARK = 0.05
REQUEST_INTENSITY, REQUEST_AMBIENT = 1.0, 0.1
METHODS = ("input", "previous", "reshade_only", "refiner_on", "pipeline", "quotient_ps", "truth")
ORACLES = ("ps_coarse", "ps_coarse_own_fine")
COARSE_SIGMA = 0.03  # of the subject's side (sqrt of its area): 6 px on the 512 x 340 owl
DISPLAY_GAMMA = 2.2  # the photos are linear; ComfyUI's IMAGEs (and the pack) are display-referred


@dataclass
class Subject:
    name: str
    images: np.ndarray  # [N,H,W,3] 0..1
    lights: np.ndarray  # [N,3] unit, toward the light
    mask: np.ndarray  # [H,W] 0/1: where every method is scored
    normals: np.ndarray  # [H,W,3] photometric stereo (over the region)
    albedo: np.ndarray  # [H,W,3]
    region: np.ndarray  # [H,W] 0/1: what the methods are asked to relight (the mask, or all)


def load_rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


def face_mask(height: int, width: int) -> np.ndarray:
    """The cropped Yale faces fill the frame: an ellipse over the face, hair and chin left out."""
    rows, cols = np.mgrid[0:height, 0:width]
    y = (rows - 0.55 * height) / (0.42 * height)
    x = (cols - 0.5 * width) / (0.40 * width)
    return (x**2 + y**2 < 1.0).astype(np.float32)


def photometric_stereo(images: np.ndarray, lights: np.ndarray, mask: np.ndarray):
    """Per-pixel least squares I_k = rho n . l_k over the lights that neither shadow nor clip
    the pixel; normals [H,W,3] (flat where unknown) and RGB albedo [H,W,3]."""
    grey = images.mean(axis=3)  # [N,H,W]
    weight = ((grey > SHADOW) & (grey < CLIPPED)).astype(np.float64)
    a = np.einsum("nhw,ni,nj->hwij", weight, lights, lights) + 1e-6 * np.eye(3)
    b = np.einsum("nhw,nhw,ni->hwi", weight, grey, lights)
    g = np.linalg.solve(a, b[..., None])[..., 0]
    norm = np.linalg.norm(g, axis=2, keepdims=True)
    normals = np.where(norm > 1e-6, g / np.maximum(norm, 1e-6), [0.0, 0.0, 1.0])
    shading = np.einsum("hwi,ni->nhw", normals, lights).clip(0, None)
    w = weight * (shading > 0.05)
    albedo = (
        np.einsum("nhw,nhwc,nhw->hwc", w, images, shading)
        / np.maximum(np.einsum("nhw,nhw->hw", w, shading**2), 1e-6)[..., None]
    )
    normals = np.where(mask[..., None] > 0.5, normals, [0.0, 0.0, 1.0])
    return normals.astype(np.float32), albedo.astype(np.float32)


def load_lights(folder: Path) -> np.ndarray:
    """[N,3] the subject's unit light directions, in its photos' order."""
    lights = np.asarray(json.loads((folder / "lights.json").read_text())["lights"], np.float64)
    return lights / np.linalg.norm(lights, axis=1, keepdims=True)


def load_subject(folder: Path, whole_photo: bool = False) -> Subject:
    meta = json.loads((folder / "lights.json").read_text())
    images = np.stack([load_rgb(folder / name) for name in meta["images"]])
    lights = load_lights(folder)
    if (folder / "mask.png").exists():
        mask = (load_rgb(folder / "mask.png").mean(axis=2) > 0.5).astype(np.float32)
    else:
        mask = face_mask(*images.shape[1:3])
    region = np.ones_like(mask) if whole_photo else mask
    normals, albedo = photometric_stereo(images, lights, region)
    return Subject(folder.name, images, lights.astype(np.float32), mask, normals, albedo, region)


def pairs(lights: np.ndarray, count: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Ordered pairs of distinct lights [N,3] at least 10 degrees apart, a fixed random subset."""
    n = len(lights)
    candidates = [
        (a, b)
        for a in range(n)
        for b in range(n)
        if a != b and angle_degrees(lights[a], lights[b]) >= 10.0
    ]
    order = rng.permutation(len(candidates))[:count]
    return [candidates[i] for i in sorted(order)]


def request(direction: np.ndarray) -> Light:
    return make_light(torch.from_numpy(direction), REQUEST_INTENSITY, REQUEST_AMBIENT)


SETTINGS = ONE_STEP


class PackModel:
    """A model file of the pack's format run in-process through the sampler's own functions."""

    def __init__(self, name: str):
        path = Path(name) if Path(name).is_file() else REPO / "models" / name
        self.model, self.vae = load_relight_model(path)

    def __call__(
        self, image: np.ndarray, mask: np.ndarray, light: Light, refiner: str = "auto"
    ) -> np.ndarray:
        """The sampler's own path: the subject's crop, seam matched, stitched back; the linear
        photo shown to it display-encoded, as a user's photo would be, the answer decoded."""
        shown = torch.from_numpy(image ** (1 / DISPLAY_GAMMA))[None]
        masked = prepare_masked_image(shown, torch.from_numpy(mask)[None], 0, 0)
        result = relight_crops(
            self.model,
            self.vae,
            masked,
            light,
            "relight",
            SETTINGS,
            DEFAULT_CONTEXT,
            restore=restorer(),
            refiner=refiner,
        )
        return result.image[0].numpy() ** DISPLAY_GAMMA


def blurred_inside(values: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """values [H,W,C] averaged with a Gaussian of `sigma` px over the mask's pixels only
    (filters.masked_average, on numpy arrays)."""
    stack = torch.from_numpy(values.astype(np.float32)).movedim(-1, 0)[None]
    weight = torch.from_numpy(mask.astype(np.float32))[None]
    return masked_average(stack, weight, sigma)[0][0].movedim(0, -1).numpy()


def oracle_normals(subject: Subject, image: np.ndarray) -> dict[str, np.ndarray]:
    """The photometric-stereo normals at the coarse scale alone, and with the pack's own normals'
    finer detail (estimated from `image`) added."""
    sigma = COARSE_SIGMA * float(np.sqrt(subject.mask.sum()))
    shown = torch.from_numpy(image ** (1 / DISPLAY_GAMMA))[None]
    own = estimated_geometry(shown, torch.from_numpy(subject.mask)[None] > 0.5).normals[0]
    own = own.numpy()
    coarse = blurred_inside(subject.normals, subject.mask, sigma)
    detailed = coarse + own - blurred_inside(own, subject.mask, sigma)
    unit = {
        name: n / np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-6)
        for name, n in (("ps_coarse", coarse), ("ps_coarse_own_fine", detailed))
    }
    return {
        name: np.where(subject.mask[..., None] > 0.5, n, 0.0).astype(np.float32)
        for name, n in unit.items()
    }


def quotient(image, mask, light, normals=None) -> np.ndarray:
    """The re-shading alone (no crop, no model), display-encoded in and decoded out."""
    t = torch.from_numpy
    given = None if normals is None else t(normals)[None]
    shown = t(image ** (1 / DISPLAY_GAMMA))[None]
    return reshade(shown, t(mask)[None], light, given).image[0].numpy() ** DISPLAY_GAMMA


def gain_psnr(output: np.ndarray, truth: np.ndarray, mask: np.ndarray) -> float:
    inside = mask > 0.5
    o, t = output[inside].astype(np.float64), truth[inside].astype(np.float64)
    gain = (o * t).sum(0) / np.maximum((o * o).sum(0), 1e-12)
    mse = float(np.mean((o * gain - t) ** 2))
    return 10 * np.log10(1.0 / max(mse, 1e-12))


def colour_shift(output: np.ndarray, reference: np.ndarray, mask: np.ndarray) -> float:
    def rg(image):
        return image[..., :2] / np.maximum(image.sum(axis=2, keepdims=True), 1e-6)

    usable = (mask > 0.5) & (output.max(2) > DARK) & (output.max(2) < CLIPPED)
    usable &= (reference.max(2) > DARK) & (reference.max(2) < CLIPPED)
    if usable.sum() == 0:
        return float("nan")
    return float(np.median(np.linalg.norm(rg(output) - rg(reference), axis=2)[usable]))


def light_error(subject: Subject, output: np.ndarray, target: np.ndarray) -> float:
    fitted = fit_light_direction(output, subject.albedo, subject.normals, subject.mask)
    return 180.0 if fitted is None else angle_degrees(fitted, target)


def answer(method, subject, models, image, light, truth) -> np.ndarray:
    """One method's answer to the request `light` for the photo `image` (truth: the real photo)."""
    if method in ("previous", "pipeline"):
        return models[method](image, subject.region, light)
    if method == "refiner_on":
        return models["pipeline"](image, subject.region, light, "on")
    if method == "reshade_only":
        return quotient(image, subject.region, light)
    if method == "quotient_ps":
        return quotient(image, subject.region, light, subject.normals)
    return {"input": image, "truth": truth}[method]


def run_subject(
    subject, models, count, rng, out_dir, methods=METHODS
) -> dict[str, dict[str, list[float]]]:
    scores = {m: {"psnr": [], "light": [], "colour": [], "flat": []} for m in methods}
    for a, b in pairs(subject.lights, count, rng):
        image, truth, light = subject.images[a], subject.images[b], request(subject.lights[b])
        outputs = {
            method: answer(method, subject, models, image, light, truth)
            for method in methods
            if method not in ORACLES
        }
        if ORACLES[0] in methods:
            for name, normals in oracle_normals(subject, image).items():
                outputs[name] = quotient(image, subject.mask, light, normals)
        for method, output in outputs.items():
            if method != "truth":
                scores[method]["psnr"].append(gain_psnr(output, truth, subject.mask))
            scores[method]["light"].append(light_error(subject, output, subject.lights[b]))
            scores[method]["colour"].append(colour_shift(output, image, subject.mask))
            scores[method]["flat"].append(flat_share(output, truth, subject.mask))
        if out_dir is not None and len(scores["input"]["psnr"]) <= 3:
            row = np.concatenate([outputs[m] for m in methods], axis=1)
            name = f"{subject.name}_{a:02d}_to_{b:02d}.png"
            Image.fromarray(np.round(row.clip(0, 1) * 255).astype(np.uint8)).save(out_dir / name)
    return scores


def normals_error(subject: Subject) -> tuple[float, float, str]:
    """(the pack's estimate from the first photo, the bare silhouette dome: median degrees
    against photometric stereo, what the estimate used)."""
    mask = torch.from_numpy(subject.mask)[None]
    shown = torch.from_numpy(subject.images[0] ** (1 / DISPLAY_GAMMA))[None]
    geometry = estimated_geometry(shown, mask > 0.5)
    dome, _ = estimate_normals(mask)
    truth = torch.from_numpy(subject.normals)[None]
    errors = [float(angular_error_degrees(n, truth, mask)[0]) for n in (geometry.normals, dome)]
    return errors[0], errors[1], "; ".join(geometry.notes)


def mean(values: list[float]) -> float:
    return _over_known(statistics.fmean, values)


def median(values: list[float]) -> float:
    return _over_known(statistics.median, values)


def _over_known(statistic, values: list[float]) -> float:
    """`statistic` of the values that are not NaN (a metric with too few pixels gives NaN)."""
    known = [v for v in values if not np.isnan(v)]
    return statistic(known) if known else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("photos", nargs="?", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--model", default="relight_default.safetensors")
    parser.add_argument("--baseline-model", default="relight_gradient_v1.safetensors")
    parser.add_argument("--pairs", type=int, default=40, help="A -> B pairs per subject")
    parser.add_argument("--out-dir", type=Path, default=REPO / "out" / "realphotos")
    parser.add_argument("--only", nargs="+", metavar="SUBJECT", help="only these subjects")
    parser.add_argument(
        "--reshade-only",
        action="store_true",
        help="only the re-shadings (no model runs): a quick check of the light path",
    )
    parser.add_argument(
        "--whole-photo",
        action="store_true",
        help="relight the whole photo, score inside the masks (see the docstring)",
    )
    parser.add_argument(
        "--normals-oracles",
        action="store_true",
        help="add re-shadings with photometric stereo's coarse normals (see the docstring)",
    )
    args = parser.parse_args()
    comfy.utils.PROGRESS_BAR_ENABLED = False
    logging.getLogger().setLevel(logging.ERROR)  # the photos' lights lie outside training's
    if args.whole_photo and args.normals_oracles:
        parser.error("--normals-oracles: measured on the masks only, not with --whole-photo")
    if not args.photos.is_dir():
        parser.error(f"photos: {args.photos} is not a folder (see ../shared/realphotos)")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    methods = chosen_methods(args.reshade_only, args.normals_oracles)
    models = {}
    if not args.reshade_only:
        models = {"previous": PackModel(args.baseline_model), "pipeline": PackModel(args.model)}
    rng = np.random.default_rng(0)
    subjects = sorted(p for p in args.photos.iterdir() if (p / "lights.json").exists())
    unknown = set(args.only or ()) - {p.name for p in subjects}
    if unknown:
        parser.error(f"only: no subject {sorted(unknown)} in {args.photos}")
    totals = {m: {"psnr": [], "light": [], "colour": [], "flat": []} for m in methods}
    print(f"real photos from {args.photos}; model {args.model}, previous {args.baseline_model}")
    if args.whole_photo:
        print("the whole photo relit, scored inside each subject's mask")
    for folder in subjects:
        if args.only and folder.name not in args.only:
            pairs(load_lights(folder), args.pairs, rng)  # the others keep their pairs
            continue
        subject = load_subject(folder, args.whole_photo)
        scores = run_subject(subject, models, args.pairs, rng, args.out_dir, methods)
        estimate, dome, used = normals_error(subject)
        print(
            f"\n{subject.name}: normals vs photometric stereo, median: the pack's estimate "
            f"{estimate:.1f} deg, the bare silhouette dome {dome:.1f} deg ({used})"
        )
        print_table(scores)
        for method in methods:
            for key in totals[method]:
                totals[method][key] += scores[method][key]
    print("\nall subjects")
    print_table(totals)
    print(f"pictures (not to be committed): {args.out_dir}")


def chosen_methods(reshade_only: bool, oracles: bool) -> tuple[str, ...]:
    """The methods a run measures: without the model's (`reshade_only`), with the normals'
    oracles before the truth."""
    methods = METHODS[:-1] + (ORACLES if oracles else ()) + METHODS[-1:]
    if reshade_only:
        methods = tuple(m for m in methods if m not in ("previous", "refiner_on", "pipeline"))
    return methods


def print_table(scores: dict[str, dict[str, list[float]]]) -> None:
    base = median(scores["input"]["psnr"])
    print(
        f"{'method':<19}{'PSNR':>8}{'vs input':>10}{'light p50':>11}{'colour p50':>12}"
        f"{'flat mean':>11}"
    )
    for method in scores:
        s = scores[method]
        psnr = median(s["psnr"]) if s["psnr"] else float("nan")
        gain = "" if np.isnan(psnr) else f"{psnr - base:+.2f}"
        print(
            f"{method:<19}{psnr:8.2f}{gain:>10}{median(s['light']):11.1f}"
            f"{median(s['colour']):12.4f}{mean(s['flat']):11.3f}"
        )


if __name__ == "__main__":
    main()
