"""RelightInpaintSampler vs ComfyUI's stock KSampler: same model, conditioning, size and steps.

Both run on one real ComfyUI host, interleaved, with a new seed per run (so the sampler node
re-executes while the loaders stay cached). Time per image comes from ComfyUI's own
execution_start / execution_success timestamps. The stock path is RelightConditioning ->
KSampler -> VAEDecode; the pack's path also encodes, builds the conditioning and composites.

Run from the repo root: .venv/bin/python -m benchmarks.sampler_overhead [--runs N] [--steps N]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
from pathlib import Path

from host.comfy_server import run_prompt, start_server, upload_image

REPO = Path(__file__).resolve().parents[1]
PACK_WORKFLOW = REPO / "workflows" / "api" / "relight_inpaint_photo.json"


def node_id(workflow: dict, class_type: str) -> str:
    return next(k for k, v in workflow.items() if v["class_type"] == class_type)


def pack_prompt(model: str, steps: int) -> dict:
    workflow = json.loads(PACK_WORKFLOW.read_text())
    workflow.pop(node_id(workflow, "PreviewImage"))
    workflow[node_id(workflow, "LoadRelightUNet")]["inputs"]["model_name"] = model
    workflow[node_id(workflow, "RelightInpaintSampler")]["inputs"]["steps"] = steps
    return workflow


def stock_prompt(pack: dict) -> dict:
    """The same graph with RelightInpaintSampler replaced by RelightConditioning + KSampler."""
    workflow = copy.deepcopy(pack)
    sampler_id = node_id(workflow, "RelightInpaintSampler")
    inputs = workflow.pop(sampler_id)["inputs"]
    model, vae = inputs["model"], inputs["vae"]
    shared = {k: inputs[k] for k in ("model", "vae", "mask_cond", "light", "mode")}
    workflow["20"] = {"class_type": "RelightConditioning", "inputs": shared}
    sampling = {
        k: inputs[k] for k in ("seed", "steps", "cfg", "sampler_name", "scheduler", "denoise")
    }
    workflow["21"] = {
        "class_type": "KSampler",
        "inputs": {
            **sampling,
            "model": model,
            "positive": ["20", 0],
            "negative": ["20", 1],
            "latent_image": ["20", 2],
        },
    }
    workflow["22"] = {"class_type": "VAEDecode", "inputs": {"samples": ["21", 0], "vae": vae}}
    workflow[node_id(workflow, "SaveImage")]["inputs"]["images"] = ["22", 0]
    return workflow


def set_seed(workflow: dict, seed: int) -> dict:
    for node in workflow.values():
        if "seed" in node["inputs"]:
            node["inputs"]["seed"] = seed
    return workflow


def execution_seconds(entry: dict) -> float:
    stamps = {event: data["timestamp"] for event, data in entry["status"]["messages"]}
    return (stamps["execution_success"] - stamps["execution_start"]) / 1000.0


def measure(url: str, prompts: dict[str, dict], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in prompts}
    for run in range(runs + 1):  # run 0 warms the caches and the model load up
        for name, prompt in prompts.items():
            seconds = execution_seconds(run_prompt(url, set_seed(prompt, 1000 + run)))
            if run > 0:
                times[name].append(seconds)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--model", default="relight_default.safetensors")
    args = parser.parse_args()
    pack = pack_prompt(args.model, args.steps)
    prompts = {"RelightInpaintSampler": pack, "stock KSampler": stock_prompt(pack)}
    with start_server() as server:
        for name in ("relight_demo_photo.png", "relight_demo_mask.png"):
            upload_image(server.url, REPO / "assets" / name, name)
        times = measure(server.url, prompts, args.runs)
        peak_rss = server.peak_rss_bytes()
    pack_s = statistics.median(times["RelightInpaintSampler"])
    stock_s = statistics.median(times["stock KSampler"])
    print(f"image 600x400, {args.steps} steps, model {args.model}, {args.runs} runs each (median)")
    print(f"{'path':<24}{'s / image':>12}")
    for name, values in times.items():
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"{name:<24}{statistics.median(values):>12.3f}   runs: {runs}")
    print(f"ratio (pack / stock): {pack_s / stock_s:.3f}  (goal <= 1.05)")
    print(f"host peak RSS: {peak_rss / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
