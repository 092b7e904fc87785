"""Does the relight look right on the photos people relight?

  .venv/bin/python -P benchmarks/look.py [--photos benchmarks/look_photos] [--cases N]
      [--baseline ../baseline | --no-baseline] [--out-dir out/look] [--jobs 2]
  .venv/bin/python -P benchmarks/look.py --pack ROOT [--out-dir D] [--masks D/masks] [--table]

Real photos (benchmarks/look_photos, see its SOURCES.md) with the masks users make: a loose
ellipse painted over a face, or a person / object picked with 2-4 clicks (the pack's Select by
Clicks). Each case is relit from the left, right, top and front-left at 30 degrees elevation
in white light, and from the front-left in a warm light, the way the shipped template 1 does it:
the nodes of workflows/api/relight_inpaint_photo.json are called in-process with that file's
settings (node defaults for inputs it leaves out), the photo and mask standing in for LoadImage
and Select by Clicks. The workflow is read from the tree being measured, so a change of
defaults in its nodes or its workflow shows here.

Without --pack the script measures two trees, each in processes of its own (the pack is imported
as `relight_inpaint` from the tree's root, and two trees cannot share one process): this repo
and --baseline (default: ../baseline beside it, when it exists). Both get the same masks (drawn
once, by this repo's click selection). Each tree's cases are split over --jobs processes (default:
the cores), all single-threaded: on 2 cores, two torch threads cost several times the CPU time of
one. The whole run takes about 5 minutes on 2 cores. It prints both trees side by side:
- exposure: mean linear luminance inside the user's mask, result / input;
- dark side: 5th-percentile luminance inside the mask, result / input (a black far side);
- edge step (ellipse cases): the CIELAB step the relight adds across the user's mask edge,
  per angular sector (4 px bands inside / outside), averaged over sectors; and its maximum
  over edges moved 0, 4, 8, 12 px outward, so a step that was only pushed out is still caught;
- follows: log2 of the right/left brightness ratio of the mask's halves under a light from the
  right over the same under a light from the left (> 0: the light side is brighter);
- colour: mean |delta ab| inside the mask under white light;
- flat: the share of the mask where the result has under half the input's fine texture
  (metrics.flat_share against the input): a face turned to grey plaster, a smoothed subject;
- crease: how sharply the change of brightness turns inside the mask (metrics.crease_strength:
  the 99th percentile of the slope of log(result / input) times the mask's side): a hard line
  that an estimated shape draws down a face;
- outside: the share of pixels outside the final mask (MaskConditioning's) that changed;
and a TARGETS line per metric. Results, masks, figures, contact sheets (input | left | right |
top per case) and a baseline-above-current sheet of the ellipse cases go to --out-dir
(out/look by default, git-ignored).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PHOTOS = REPO / "benchmarks" / "look_photos"
FETCHED_PHOTOS = (REPO.parent / "shared" / "look_photos", REPO / "out" / "look_photos")
DEFAULT_BASELINE = REPO.parent / "baseline"
DEFAULT_OUT = REPO / "out" / "look"
WORKFLOW = Path("workflows") / "api" / "relight_inpaint_photo.json"
PACK_NAME = "relight_inpaint"
SAMPLER_OVERRIDES: dict = {}  # --refiner: the sampler's inputs set over the workflow's

ELEVATION = 30.0
WHITE, WARM = "#ffffff", "#ffb070"
# name: (azimuth, colour); azimuth 0 = light from the right, 90 = from the top
LIGHTS = {
    "left": (180.0, WHITE),
    "right": (0.0, WHITE),
    "top": (90.0, WHITE),
    "front_left": (135.0, WHITE),
    "warm": (135.0, WARM),
}
SHEET_LIGHTS = ("left", "right", "top")
SUPPLIED = {"LoadImage", "SelectByClicks"}  # the benchmark gives their image and mask
SKIPPED = {"SaveImage", "PreviewImage"}
SIDE_BY_SIDE = 8  # ellipse cases on the baseline-above-current sheet
THUMB = 256  # px, contact sheet thumbnails' height

EXPOSURE_RANGE = (0.8, 1.25)
EDGE_MEDIAN, EDGE_MOST, MOST = 2.5, 4.0, 0.95
FOLLOWS_MEDIAN = 4.0
COLOUR_MEDIAN = 2.0
EDGE_OFFSETS = (0.0, 4.0, 8.0, 12.0)  # px outward


# --- metrics: plain functions of float sRGB images [H, W, 3] in 0..1 and masks [H, W] ---


def to_linear(image: np.ndarray) -> np.ndarray:
    """sRGB pixels decoded to linear light."""
    c = np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_luminance(image: np.ndarray) -> np.ndarray:
    """Relative luminance Y of sRGB pixels: brightness as light adds up, not as encoded."""
    return _metrics().luminance(to_linear(image))


def srgb_to_lab(image: np.ndarray) -> np.ndarray:
    """CIELAB (D65) of sRGB pixels [..., 3]: a distance there is about how different colours
    look (scikit-image's, as benchmarks/metrics.py uses)."""
    from skimage.color import rgb2lab

    return rgb2lab(np.clip(np.asarray(image, dtype=np.float64), 0.0, 1.0))


def exposure_ratio(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> float:
    """Mean linear luminance inside the mask, after / before: 0.38 is a dark veil."""
    inside = np.asarray(mask) > 0.5
    luminance_after = linear_luminance(np.asarray(after)[inside])
    return float(luminance_after.mean() / linear_luminance(np.asarray(before)[inside]).mean())


def dark_side_ratio(
    before: np.ndarray, after: np.ndarray, mask: np.ndarray, percentile: float = 5.0
) -> float:
    """The mask's darkest pixels (5th percentile of luminance), after / before: a far side
    gone black shows here even when the mean exposure is fine."""
    inside = np.asarray(mask) > 0.5
    low_after = np.percentile(linear_luminance(np.asarray(after)[inside]), percentile)
    low_before = np.percentile(linear_luminance(np.asarray(before)[inside]), percentile)
    return float(low_after / max(low_before, 1e-6))


def signed_edge_distance(mask: np.ndarray) -> np.ndarray:
    """Pixels from the mask's edge: 1, 2, ... outside; 0, -1, ... inside (0 = the inside row
    touching the edge). Bands of it are the strips just inside / outside the edge."""
    import cv2

    inside = (np.asarray(mask) > 0.5).astype(np.uint8)
    outside_distance = cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    inside_distance = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return np.where(inside > 0, 1.0 - inside_distance, outside_distance)


def edge_steps(
    before: np.ndarray,
    after: np.ndarray,
    mask: np.ndarray,
    offsets: tuple[float, ...] = (0.0,),
    band: float = 4.0,
    sectors: int = 12,
) -> list[float]:
    """Delta E of the CIELAB step the relight adds across the mask's edge (moved each offset
    px outward), averaged over angular sectors around the mask's centroid: a visible oval where
    the user painted. Per sector: (inner band - outer band) of the result minus the same of the
    input, so the photo's own edges cancel; sectors whose bands leave the image are skipped."""
    inside = np.asarray(mask) > 0.5
    distance = signed_edge_distance(inside)
    near = (distance > -band) & (distance <= max(offsets) + band)
    change = srgb_to_lab(np.asarray(after)[near]) - srgb_to_lab(np.asarray(before)[near])
    sector = sector_map(inside, sectors)[near]
    distance = distance[near]
    return [sector_step(change, sector, distance, offset, band, sectors) for offset in offsets]


def sector_map(inside: np.ndarray, sectors: int) -> np.ndarray:
    """Each pixel's angular sector (0..sectors-1) around the mask's centroid."""
    rows, cols = np.nonzero(inside)
    yy, xx = np.mgrid[0 : inside.shape[0], 0 : inside.shape[1]]
    angle = np.arctan2(yy - rows.mean(), xx - cols.mean())
    return np.minimum(((angle + np.pi) / (2 * np.pi) * sectors).astype(int), sectors - 1)


def sector_step(change, sector, distance, offset: float, band: float, sectors: int) -> float:
    """Mean over sectors of |mean change in the inner band - mean change in the outer band|."""
    inner = (distance > offset - band) & (distance <= offset)
    outer = (distance > offset) & (distance <= offset + band)
    means = []
    for part in (inner, outer):
        count = np.bincount(sector[part], minlength=sectors)
        sums = np.stack(
            [np.bincount(sector[part], change[part, c], minlength=sectors) for c in range(3)], 1
        )
        means.append((sums / np.maximum(count, 1)[:, None], count))
    (mean_in, count_in), (mean_out, count_out) = means
    valid = (count_in >= 5) & (count_out >= 5)
    if not valid.any():
        return float("nan")
    return float(np.linalg.norm(mean_in[valid] - mean_out[valid], axis=1).mean())


def edge_step(before: np.ndarray, after: np.ndarray, mask: np.ndarray, offset: float = 0.0):
    """The edge step at the mask's edge moved `offset` px outward (see edge_steps)."""
    return edge_steps(before, after, mask, (offset,))[0]


def edge_step_max(
    before: np.ndarray,
    after: np.ndarray,
    mask: np.ndarray,
    offsets: tuple[float, ...] = EDGE_OFFSETS,
) -> float:
    """The largest edge step over edges moved outward: the pipeline grows and feathers the
    mask, so an oval may sit a few px outside the one the user painted."""
    return largest(edge_steps(before, after, mask, offsets))


def largest(values: list[float]) -> float:
    """The largest value that is not NaN (NaN when none is)."""
    return max((v for v in values if v == v), default=float("nan"))


def follows(lit_from_right: np.ndarray, lit_from_left: np.ndarray, mask: np.ndarray) -> float:
    """log2 of (right half / left half brightness) under a light from the right over the same
    under a light from the left, the halves split at the mask's centroid column. > 0: the
    result follows the light; very large: one side went black."""
    inside = np.asarray(mask) > 0.5
    centre = np.nonzero(inside)[1].mean()
    right = inside & (np.arange(inside.shape[1])[None, :] >= centre)
    left = inside & ~right

    def balance(image: np.ndarray) -> float:
        y = linear_luminance(image)
        return float(y[right].mean() / max(y[left].mean(), 1e-6))

    return float(np.log2(balance(lit_from_right) / balance(lit_from_left)))


def colour_shift(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> float:
    """Mean |delta ab| inside the mask: white light should not tint whites grey-blue."""
    inside = np.asarray(mask) > 0.5
    delta = srgb_to_lab(np.asarray(after)[inside]) - srgb_to_lab(np.asarray(before)[inside])
    delta = delta[:, 1:]
    return float(np.linalg.norm(delta, axis=1).mean())


def outside_changed(
    before: np.ndarray, after: np.ndarray, final_mask: np.ndarray, tolerance: float = 1 / 255
) -> float:
    """Share of pixels outside the final mask (any nonzero value counts as inside) that
    changed by more than `tolerance`: without a depth map nothing there may change."""
    outside = np.asarray(final_mask) <= 0
    if not outside.any():
        return 0.0
    changed = (np.abs(np.asarray(after) - np.asarray(before)) > tolerance).any(axis=-1)
    return float(changed[outside].mean())


# --- cases: photos and the masks users make ---


@dataclass
class Case:
    name: str
    photo: str
    kind: str  # ellipse | person | object
    spec: dict
    path: Path  # where the photo was found


def find_photo(photos: Path, name: str) -> Path | None:
    """The photo in the photos folder, else in one of FETCHED_PHOTOS: the photos that came from
    public repositories (SOURCES.md) are data the project does not commit; they live beside
    the repository (../shared/look_photos) or were put in out/look_photos by hand."""
    for folder in (photos, *FETCHED_PHOTOS):
        if (folder / name).is_file():
            return folder / name
    return None


def load_cases(photos: Path, count: int | None = None) -> list[Case]:
    """cases.json in the photos folder, each named after its photo and kind; cases whose photo
    is not here are left out, and said so."""
    cases, seen, missing = [], set(), []
    for spec in json.loads((photos / "cases.json").read_text()):
        path = find_photo(photos, spec["photo"])
        if path is None:
            missing.append(spec["photo"])
            continue
        name = f"{Path(spec['photo']).stem}_{spec['kind']}"
        while name in seen:
            name += "_"
        seen.add(name)
        cases.append(Case(name, spec["photo"], spec["kind"], spec, path))
    if missing:
        folders = ", ".join(str(f) for f in FETCHED_PHOTOS)
        print(
            f"{len(missing)} cases left out, their photos not found here or in {folders} "
            f"(see SOURCES.md): {', '.join(sorted(set(missing)))}",
            file=sys.stderr,
        )
    return cases[:count] if count else cases


def load_photo(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


def ellipse_mask(height: int, width: int, centre, axes) -> np.ndarray:
    """A filled ellipse, 1 inside: the loose mask painted quickly over a face."""
    yy, xx = np.mgrid[0:height, 0:width]
    d = ((xx - centre[0]) / axes[0]) ** 2 + ((yy - centre[1]) / axes[1]) ** 2
    return (d <= 1.0).astype(np.float32)


def user_mask(case: Case, image: np.ndarray, select: Callable) -> np.ndarray:
    """The mask as the user made it: painted (ellipse) or clicked (Select by Clicks)."""
    if case.kind == "ellipse":
        return ellipse_mask(*image.shape[:2], case.spec["centre"], case.spec["axes"])
    return select(image, case.spec["clicks"])


def case_mask(case: Case, image: np.ndarray, masks: Path, select: Callable) -> np.ndarray:
    """The case's mask from `masks` when drawn already (both trees get the same), else drawn
    and saved there."""
    path = masks / f"{case.name}.png"
    if path.exists():
        return (np.asarray(Image.open(path).convert("L")) > 127).astype(np.float32)
    mask = user_mask(case, image, select)
    masks.mkdir(parents=True, exist_ok=True)
    Image.fromarray((mask > 0.5).astype(np.uint8) * 255).save(path)
    return (mask > 0.5).astype(np.float32)


# --- the pack of one tree, run as the workflow runs it ---


def node_classes() -> dict[str, type]:
    """The pack's node classes by their workflow class_type."""
    nodes = importlib.import_module(f"{PACK_NAME}.nodes")
    return {node.define_schema().node_id: node for node in nodes.NODES}


@dataclass
class Graph:
    """The workflow's nodes that run here, in dependency order."""

    nodes: dict[str, dict]
    order: list[str]
    light: str  # the LightDirectionEncode feeding the sampler
    sampler: str
    masker: str  # the MaskConditioning feeding the sampler
    by_light: set[str] = field(default_factory=set)  # nodes that depend on the light


def is_link(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)


def load_graph(root: Path) -> Graph:
    """Template 1's API workflow of the tree at `root`, less the nodes the benchmark stands in
    for (LoadImage, Select by Clicks) and the ones that only show or save."""
    nodes = json.loads((root / WORKFLOW).read_text())
    nodes = {k: v for k, v in nodes.items() if v["class_type"] not in SKIPPED}
    order, done = [], {k for k, v in nodes.items() if v["class_type"] in SUPPLIED}
    while len(done) < len(nodes):
        ready = [
            k
            for k, v in nodes.items()
            if k not in done and all(val[0] in done for val in v["inputs"].values() if is_link(val))
        ]
        if not ready:
            raise ValueError(f"{root / WORKFLOW}: a cycle or a link to a missing node")
        order += sorted(ready, key=int)
        done.update(ready)
    sampler = only(nodes, "RelightInpaintSampler")
    nodes[sampler]["inputs"].update(SAMPLER_OVERRIDES)
    light = nodes[sampler]["inputs"]["light"][0]
    masker = nodes[sampler]["inputs"]["mask_cond"][0]
    graph = Graph(nodes, order, light, sampler, masker)
    graph.by_light = downstream(nodes, order, light)
    return graph


def only(nodes: dict[str, dict], class_type: str) -> str:
    found = [k for k, v in nodes.items() if v["class_type"] == class_type]
    if len(found) != 1:
        raise ValueError(f"the workflow has {len(found)} {class_type} nodes, expected 1")
    return found[0]


def downstream(nodes: dict[str, dict], order: list[str], start: str) -> set[str]:
    reached = {start}
    for key in order:
        if any(is_link(v) and v[0] in reached for v in nodes[key]["inputs"].values()):
            reached.add(key)
    return reached


def node_inputs(node_class, widgets: dict, links: dict) -> dict:
    """What the node is called with: its defaults, the workflow's widget values over them
    (only inputs the node has), the linked values over those. Optional inputs without a
    default or a link are left out, as ComfyUI leaves them."""
    types = node_class.INPUT_TYPES()
    specs = {**types.get("required", {}), **types.get("optional", {})}
    values = {}
    for name, spec in specs.items():
        options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
        if name in links:
            values[name] = links[name]
        elif name in widgets:
            values[name] = widgets[name]
        elif "default" in options:
            values[name] = options["default"]
    return values


class Runner:
    """Calls the graph's nodes in-process: nodes that do not depend on the light once per
    case, those that do once per light; link-free nodes (the model loader) once."""

    def __init__(self, graph: Graph, classes: dict[str, type]):
        self.graph, self.classes = graph, classes
        self.loaded: dict[str, tuple] = {}
        missing = {v["class_type"] for v in graph.nodes.values()} - set(classes) - SUPPLIED
        if missing:
            raise ValueError(f"the workflow uses nodes the pack lacks: {sorted(missing)}")

    def supplied(self, class_type: str, image, mask) -> tuple:
        return (image, mask) if class_type == "LoadImage" else (mask, None)

    def run_node(self, key: str, outputs: dict, overrides: dict | None = None) -> tuple:
        node = self.graph.nodes[key]
        raw = {**node["inputs"], **(overrides or {})}
        links = {n: outputs[v[0]][v[1]] for n, v in raw.items() if is_link(v)}
        widgets = {n: v for n, v in raw.items() if not is_link(v)}
        node_class = self.classes[node["class_type"]]
        cache_key = json.dumps([node["class_type"], widgets], sort_keys=True)
        if not links and cache_key in self.loaded:
            return self.loaded[cache_key]
        result = tuple(node_class.execute(**node_inputs(node_class, widgets, links)).result)
        if not links:
            self.loaded[cache_key] = result
        return result

    def relight(self, image, mask) -> dict[str, tuple]:
        """{light name: (result image, final mask)} for the case's photo and user mask."""
        outputs: dict[str, tuple] = {}
        for key, node in self.graph.nodes.items():
            if node["class_type"] in SUPPLIED:
                outputs[key] = self.supplied(node["class_type"], image, mask)
        for key in self.graph.order:
            if key not in outputs and key not in self.graph.by_light:
                outputs[key] = self.run_node(key, outputs)
        final_mask = outputs[self.graph.masker][1]
        results = {}
        for name, (azimuth, colour) in LIGHTS.items():
            lit = dict(outputs)
            for key in (k for k in self.graph.order if k in self.graph.by_light):
                override = light_widgets(azimuth, colour) if key == self.graph.light else None
                lit[key] = self.run_node(key, lit, override)
            results[name] = (lit[self.graph.sampler][0], final_mask)
        return results


def light_widgets(azimuth: float, colour: str) -> dict:
    """The Light Direction widgets for one of the benchmark's lights (intensity and ambient
    stay the workflow's)."""
    return {"direction_from": "angles", "azimuth": azimuth, "elevation": ELEVATION, "color": colour}


def settings_used(graph: Graph, classes: dict[str, type]) -> dict:
    """Each node's widget values as called (light widgets as the workflow has them)."""
    used = {}
    for key in graph.order:
        node = graph.nodes[key]
        widgets = {n: v for n, v in node["inputs"].items() if not is_link(v)}
        values = node_inputs(classes[node["class_type"]], widgets, {})
        used[f"{key} {node['class_type']}"] = values
    return used


# --- one tree: relight every case, measure, save ---


def flat_against_input(before: np.ndarray, after: np.ndarray, mask: np.ndarray) -> float:
    """The share of the mask where the result has under half the input's fine texture: a face
    turned to grey plaster (benchmarks/metrics.py's flat_share, in linear light)."""
    return _metrics().flat_share(to_linear(after), to_linear(before), np.asarray(mask))


def _metrics():
    """This script's benchmarks/metrics.py, whichever tree is measured (an earlier tree's
    package has its own, without the newer metrics)."""
    import importlib.util

    if "look_metrics" not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            "look_metrics", Path(__file__).resolve().parent / "metrics.py"
        )
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["look_metrics"] = module
    return sys.modules["look_metrics"]


def measure_run(image, result, user, final) -> dict:
    """The per-light figures of one case."""
    edges = edge_steps(image, result, user, EDGE_OFFSETS)
    return {
        "exposure": exposure_ratio(image, result, user),
        "dark": dark_side_ratio(image, result, user),
        "edge": edges[0],
        "edge_max": largest(edges),
        "colour": colour_shift(image, result, user),
        "flat": flat_against_input(image, result, user),
        "crease": _metrics().crease_strength(to_linear(result), to_linear(image), np.asarray(user)),
        "outside": outside_changed(image, result, final),
    }


def to_numpy(tensor) -> np.ndarray:
    return tensor[0].detach().float().cpu().numpy()


def save_png(image: np.ndarray, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8)).save(path)


def measure_tree(root: Path, photos: Path, cases: list[Case], out: Path, masks: Path) -> dict:
    """Every case relit by the pack at `root`: its figures, and its results and row strip
    (input | left | right | top) written to out/results and out/rows."""
    import torch

    graph = load_graph(root)
    classes = node_classes()
    runner = Runner(graph, classes)
    select = clicker(classes)
    started = time.perf_counter()
    figures = {"tree": str(root), "settings": settings_used(graph, classes), "cases": []}
    for case in cases:
        image = load_photo(case.path)
        user = case_mask(case, image, masks, select)
        results = runner.relight(torch.from_numpy(image)[None], torch.from_numpy(user)[None])
        lit = {name: to_numpy(result) for name, (result, _) in results.items()}
        final = results["left"][1][0].float().numpy()
        runs = {name: measure_run(image, lit[name], user, final) for name in lit}
        entry = {"name": case.name, "photo": case.photo, "kind": case.kind, "runs": runs}
        entry["follows"] = follows(lit["right"], lit["left"], user)
        figures["cases"].append(entry)
        for name, result in lit.items():
            save_png(result, out / "results" / f"{case.name}_{name}.png")
        row = case_row(image, user, lit, f"{case.name}  {tree_label(root)}  {brief(entry)}")
        (out / "rows").mkdir(parents=True, exist_ok=True)
        row.save(out / "rows" / f"{case.name}.png")
        print(f"  {tree_label(root)}: {case.name} {brief(entry)}", flush=True)
    figures["seconds"] = time.perf_counter() - started
    return figures


def finish_tree(out: Path, figures: dict) -> None:
    """figures.json and the contact sheet (one row per case, in the cases' order)."""
    (out / "figures.json").write_text(json.dumps(figures, indent=1))
    stack([Image.open(out / "rows" / f"{c['name']}.png") for c in figures["cases"]]).save(
        out / "contact_sheet.png"
    )


def merge_shards(parts: list[dict], cases: list[Case]) -> dict:
    """One tree's figures from its shards, cases back in cases.json's order; seconds: the
    shards' total (each ran on one core)."""
    order = {case.name: i for i, case in enumerate(cases)}
    merged = {**parts[0], "cases": [c for part in parts for c in part["cases"]]}
    merged["cases"].sort(key=lambda c: order[c["name"]])
    merged["seconds"] = sum(part["seconds"] for part in parts)
    return merged


def clicker(classes: dict[str, type]) -> Callable:
    """Clicks -> mask through the pack's Select by Clicks node, as the user's page sends them."""
    import torch

    def select(image: np.ndarray, clicks: list) -> np.ndarray:
        points = json.dumps({"points": clicks})
        node = classes["SelectByClicks"]
        mask = node.execute(torch.from_numpy(image)[None], points).result[0]
        return mask[0].float().numpy()

    return select


def tree_label(root: Path) -> str:
    return "current" if root.resolve() == REPO else "baseline"


def brief(entry: dict) -> str:
    """The case's figures in one line, for its row label and the progress lines."""
    runs = entry["runs"].values()
    expo = statistics.median(r["exposure"] for r in runs)
    edge = statistics.median(r["edge"] for r in runs)
    text = f"expo {expo:.2f}  follows {entry['follows']:+.2f}"
    return text + (f"  edge {edge:.1f}" if entry["kind"] == "ellipse" else "")


# --- contact sheets ---


def thumbnail(image: np.ndarray) -> Image.Image:
    picture = Image.fromarray((np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8))
    width = round(picture.width * THUMB / picture.height)
    return picture.resize((width, THUMB), Image.LANCZOS)


def outlined(image: np.ndarray, mask: np.ndarray) -> Image.Image:
    """The photo's thumbnail with the user's mask outlined in green."""
    picture = thumbnail(image)
    small = (
        np.asarray(
            Image.fromarray((mask > 0.5).astype(np.uint8) * 255).resize(picture.size, Image.NEAREST)
        )
        > 127
    )
    edge = small & ~(
        np.roll(small, 1, 0) & np.roll(small, -1, 0) & np.roll(small, 1, 1) & np.roll(small, -1, 1)
    )
    edge |= np.roll(edge, 1, 0) | np.roll(edge, 1, 1)
    pixels = np.asarray(picture).copy()
    pixels[edge] = (40, 255, 40)
    return Image.fromarray(pixels)


def case_row(image: np.ndarray, mask: np.ndarray, lit: dict, label: str) -> Image.Image:
    """input with the mask outlined | left | right | top, under a label."""
    tiles = [outlined(image, mask)] + [thumbnail(lit[name]) for name in SHEET_LIGHTS]
    row = Image.new("RGB", (sum(t.width for t in tiles) + 4 * len(tiles), THUMB + 20), "white")
    x = 0
    for tile in tiles:
        row.paste(tile, (x, 20))
        x += tile.width + 4
    ImageDraw.Draw(row).text((4, 4), f"{label}   [input | left | right | top]", fill="black")
    return row


def stack(rows: list[Image.Image]) -> Image.Image:
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    y = 0
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height
    return sheet


def side_by_side(out: Path, baseline: dict, current: dict) -> Path | None:
    """Baseline row above current row for the first ellipse cases."""
    names = [c["name"] for c in current["cases"] if c["kind"] == "ellipse"][:SIDE_BY_SIDE]
    both = {c["name"] for c in baseline["cases"]}
    rows = []
    for name in (n for n in names if n in both):
        rows += [Image.open(out / tree / "rows" / f"{name}.png") for tree in TREES]
    if not rows:
        return None
    path = out / "side_by_side_ellipses.png"
    stack(rows).save(path)
    return path


# --- the comparison ---

TREES = ("baseline", "current")
METRICS = (
    "exposure",
    "dark",
    "edge",
    "edge_max",
    "follows",
    "colour",
    "flat",
    "crease",
    "outside",
)


def case_figure(entry: dict, metric: str) -> float | None:
    """One figure per case for the table: medians over its lights (colour: white lights;
    outside: the worst light); edge figures only for ellipse cases."""
    if metric == "follows":
        return entry["follows"]
    if metric.startswith("edge") and entry["kind"] != "ellipse":
        return None
    runs = entry["runs"]
    if metric == "colour":
        return statistics.mean(r["colour"] for n, r in runs.items() if LIGHTS[n][1] == WHITE)
    if metric == "outside":
        return max(r["outside"] for r in runs.values())
    return statistics.median(r[metric] for r in runs.values())


def cell(value: float | None, metric: str) -> str:
    if value is None or value != value:
        return "     -"
    return f"{value:6.1%}" if metric == "outside" else f"{value:6.2f}"


def print_table(figures: dict[str, dict]) -> None:
    """Per case and as medians, each metric with the trees side by side."""
    trees = [t for t in TREES if t in figures]
    width = 7 * len(trees) - 1
    print(f"{'case':34s}" + "".join(f" | {m:^{width}s}" for m in METRICS))
    print(f"{'':34s}" + f" | {' '.join(f'{t[:6]:>6s}' for t in trees)}" * len(METRICS))
    by_name = {t: {c["name"]: c for c in figures[t]["cases"]} for t in trees}
    for name in (c["name"] for c in figures[trees[-1]]["cases"]):
        entries = [by_name[t].get(name) for t in trees]
        print(f"{name:34.34s}" + "".join(table_cells(entries, m) for m in METRICS))
    medians = [median_entry(figures[t]) for t in trees]
    print(f"{'median':34s}" + "".join(table_cells(medians, m) for m in METRICS))


def table_cells(entries: list, metric: str) -> str:
    values = [
        entry.get(metric) if isinstance(entry, Medians) else case_figure(entry, metric)
        for entry in entries
        if entry is not None
    ]
    return " | " + " ".join(cell(v, metric) for v in values)


class Medians(dict):
    """A table row of medians over cases."""


def median_entry(figures: dict) -> Medians:
    row = Medians()
    for metric in METRICS:
        values = [case_figure(c, metric) for c in figures["cases"]]
        values = [v for v in values if v is not None and v == v]
        row[metric] = statistics.median(values) if values else None
    return row


def run_values(figures: dict, metric: str, white_only: bool = False, ellipse_only: bool = False):
    """Every run's figure (one per case and light)."""
    values = []
    for entry in figures["cases"]:
        if ellipse_only and entry["kind"] != "ellipse":
            continue
        for name, run in entry["runs"].items():
            if white_only and LIGHTS[name][1] != WHITE:
                continue
            if run[metric] == run[metric]:
                values.append(run[metric])
    return values


def targets(figures: dict) -> list[tuple[str, str, bool]]:
    """(target, how this tree does, met) per metric with a target."""
    low, high = EXPOSURE_RANGE
    exposure = share(run_values(figures, "exposure"), lambda v: low <= v <= high)
    result = [
        (
            f"exposure {low}-{high} in >= {MOST:.0%} of runs",
            f"{exposure:.0%} of runs",
            exposure >= MOST,
        )
    ]
    for metric, where in (("edge", "at the user's edge"), ("edge_max", "max over 0-12 px out")):
        edges = run_values(figures, metric, ellipse_only=True)
        if edges:
            median, most = statistics.median(edges), share(edges, lambda v: v <= EDGE_MOST)
            result.append(
                (
                    f"edge step {where}: median <= {EDGE_MEDIAN}, <= {EDGE_MOST} in >= {MOST:.0%}",
                    f"median {median:.2f}, {most:.0%} <= {EDGE_MOST}",
                    median <= EDGE_MEDIAN and most >= MOST,
                )
            )
    signs = [c["follows"] for c in figures["cases"]]
    median, positive = statistics.median(signs), share(signs, lambda v: v > 0)
    result.append(
        (
            f"follows > 0 in every case, median <= {FOLLOWS_MEDIAN}",
            f"{positive:.0%} > 0, median {median:.2f}",
            positive == 1.0 and median <= FOLLOWS_MEDIAN,
        )
    )
    colours = run_values(figures, "colour", white_only=True)
    median, low_shift = statistics.median(colours), share(colours, lambda v: v <= COLOUR_MEDIAN)
    result.append(
        (
            f"colour |dab| median <= {COLOUR_MEDIAN} under white light",
            f"median {median:.2f}, {low_shift:.0%} of runs <= {COLOUR_MEDIAN}",
            median <= COLOUR_MEDIAN,
        )
    )
    untouched = share(run_values(figures, "outside"), lambda v: v == 0)
    result.append(
        (
            "outside the final mask unchanged in every run",
            f"{untouched:.0%} of runs",
            untouched == 1,
        )
    )
    return result


def share(values: list[float], test: Callable[[float], bool]) -> float:
    return sum(map(test, values)) / len(values) if values else float("nan")


def print_targets(figures: dict[str, dict]) -> None:
    """One TARGETS line per metric: how each tree does and whether it meets the target."""
    trees = [t for t in TREES if t in figures]
    per_tree = {t: targets(figures[t]) for t in trees}
    for i, (name, _, _) in enumerate(per_tree[trees[-1]]):
        parts = [
            f"{tree} {per_tree[tree][i][1]} ({'met' if per_tree[tree][i][2] else 'NOT met'})"
            for tree in trees
        ]
        print(f"TARGETS {name}: " + " | ".join(parts))
    for tree in trees:
        dark = run_values(figures[tree], "dark")
        print(
            f"dark side ({tree}): 5th-percentile luminance after/before, median "
            f"{statistics.median(dark):.2f}, min {min(dark):.2f} (no target set)"
        )
        flat = run_values(figures[tree], "flat")
        print(
            f"flat ({tree}): share of the mask with under half the input's fine texture, "
            f"median {statistics.median(flat):.3f}, max {max(flat):.3f} (no target set)"
        )
        crease = run_values(figures[tree], "crease")
        if crease:
            print(
                f"crease ({tree}): the change's sharpest turns inside the mask, median "
                f"{statistics.median(crease):.1f}, max {max(crease):.1f} (no target set: "
                "compare the trees)"
            )


# --- the command line ---


def measure_one(args: argparse.Namespace) -> None:
    """--pack ROOT: this process measures one tree, or its shard K/N of the cases (the parent
    merges them), or (--masks-only) draws the masks."""
    sys.path.insert(0, str(REPO / "host"))
    from bootstrap import import_pack, use_comfyui

    use_comfyui()
    import torch

    torch.set_num_threads(args.threads)
    root = args.pack.resolve()
    import_pack(root)
    out, cases = args.out_dir, load_cases(args.photos, args.cases)
    masks = args.masks or out / "masks"
    if args.masks_only:
        select = clicker(node_classes())
        for case in cases:
            case_mask(case, load_photo(case.path), masks, select)
        return
    shard, shards = (int(n) for n in args.shard.split("/")) if args.shard else (0, 1)
    figures = measure_tree(root, args.photos, cases[shard::shards], out, masks)
    if args.shard:
        (out / f"figures-{shard}.json").write_text(json.dumps(figures))
        return
    finish_tree(out, figures)
    print(f"{tree_label(root)}: {len(cases)} cases in {figures['seconds']:.0f} s -> {out}")
    if args.table:
        print_table({tree_label(root): figures})
        print_targets({tree_label(root): figures})


def measure_both(args: argparse.Namespace) -> None:
    """Each tree in processes of its own (one `relight_inpaint` package each), with the same
    masks, drawn first by this repo's click selection. Each tree's cases are split into --jobs
    shards, and --jobs processes run at once, one thread each."""
    out = args.out_dir
    masks = out / "masks"
    shutil.rmtree(masks, ignore_errors=True)  # cases.json may have changed since
    trees = {"current": REPO}
    if not args.no_baseline and args.baseline.exists():
        trees["baseline"] = args.baseline.resolve()
    elif not args.no_baseline:
        print(f"no baseline at {args.baseline}: measuring the current tree only")
    started = time.perf_counter()
    run_jobs([(REPO, out / "current", masks, ["--masks-only"])], 1, args)
    jobs = [
        (root, out / tree, masks, ["--shard", f"{k}/{args.jobs}"])
        for tree, root in trees.items()
        for k in range(args.jobs)
    ]
    for tree in trees:
        for old in (out / tree).glob("figures-*.json"):
            old.unlink()
    run_jobs(jobs, args.jobs, args)
    cases = load_cases(args.photos, args.cases)
    figures = {}
    for tree in trees:
        parts = [json.loads(f.read_text()) for f in sorted((out / tree).glob("figures-*.json"))]
        figures[tree] = merge_shards(parts, cases)
        finish_tree(out / tree, figures[tree])
    print(f"\n{len(trees)} tree(s), {len(cases)} cases, in {time.perf_counter() - started:.0f} s")
    print(", ".join(f"{t} {f['seconds']:.0f} s of CPU" for t, f in figures.items()) + "\n")
    print_table(figures)
    print_targets(figures)
    for tree in figures:
        print(f"contact sheet ({tree}): {out / tree / 'contact_sheet.png'}")
    if "baseline" in figures:
        path = side_by_side(out, figures["baseline"], figures["current"])
        if path:
            print(f"side by side (baseline above current): {path}")


def run_jobs(jobs: list[tuple], at_once: int, args: argparse.Namespace) -> None:
    """This script with --pack ROOT for each job, `at_once` at a time: progress lines on this
    stdout, each job's log (ComfyUI's warnings, progress bars) in OUT/log-*.txt."""
    waiting, running = list(jobs), []
    while waiting or running:
        while waiting and len(running) < at_once:
            running.append(start_job(*waiting.pop(0), args))
        time.sleep(0.5)
        for job in [job for job in running if job[0].poll() is not None]:
            running.remove(job)
            child, log_path, log = job
            log.close()
            if child.returncode != 0:
                for other in running:
                    other[0].kill()
                tail = log_path.read_text()[-3000:]
                raise SystemExit(f"{log_path}: exit {child.returncode}, the log ends:\n{tail}")


def start_job(root: Path, out: Path, masks: Path, extra: list[str], args: argparse.Namespace):
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-P", str(Path(__file__).resolve()), "--pack", str(root)]
    command += ["--out-dir", str(out), "--masks", str(masks), "--photos", str(args.photos)]
    command += ["--threads", str(args.threads), *extra]
    command += ["--cases", str(args.cases)] if args.cases else []
    if args.refiner and root.resolve() == REPO:  # earlier trees have no refiner input
        command += ["--refiner", args.refiner]
    log_path = out / f"log-{extra[-1].replace('/', '-').strip('-')}.txt"
    log = open(log_path, "w")  # closed in run_jobs
    return subprocess.Popen(command, stderr=log), log_path, log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--cases", type=int, help="only the first N cases of cases.json")
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE)
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--pack", type=Path, help="measure only the tree at PACK, in-process")
    parser.add_argument("--masks", type=Path, help="with --pack: read / write the masks here")
    parser.add_argument("--table", action="store_true", help="with --pack: print its table")
    parser.add_argument("--masks-only", action="store_true", help="with --pack: draw the masks")
    parser.add_argument("--shard", help="with --pack: K/N, only every Nth case from the Kth")
    parser.add_argument(
        "--jobs", type=int, default=os.cpu_count() or 1, help="processes at once (default: cores)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per tree (the two trees run at once; on 2 cores two threads each "
        "cost several times the CPU time of one)",
    )
    parser.add_argument(
        "--refiner",
        choices=("auto", "on", "off"),
        help="this repo's sampler with its refiner input set so (the workflow's when not given)",
    )
    args = parser.parse_args()
    SAMPLER_OVERRIDES.update({"refiner": args.refiner} if args.refiner else {})
    args.photos = args.photos.resolve()
    args.out_dir = args.out_dir.resolve()
    if args.pack:
        measure_one(args)
    else:
        measure_both(args)


if __name__ == "__main__":
    main()
