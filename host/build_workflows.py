"""Regenerate the UI workflows in workflows/ from their API twins in workflows/api/, and each
one's template-browser thumbnail (`<name>.jpg`).

Run from the repo root: .venv/bin/python -m host.build_workflows
It starts the host once to read ComfyUI's live /object_info (so the widget order is ComfyUI's)
and to run the workflows that need no downloaded weights for their thumbnails.
"""

from __future__ import annotations

import importlib
import io
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .bootstrap import import_pack
from .comfy_server import fetch_output_images, object_info, run_prompt, start_server, upload_image
from .ui_workflow import (
    STOCK_NODES,
    TEMPLATES,
    api_to_ui,
    stock_snapshot,
    ui_file_name,
    with_stock_snapshot,
)

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "workflows"
ASSETS = REPO / "assets"
THUMBNAIL_SIDE = 512


def record_stock_nodes(info: dict) -> Path:
    workflows = [json.loads(p.read_text()) for p in sorted((WORKFLOWS / "api").glob("*.json"))]
    pack_nodes = {
        name
        for name, entry in info.items()
        if entry.get("python_module", "").endswith("relight_inpaint")
    }
    STOCK_NODES.write_text(json.dumps(stock_snapshot(info, workflows, pack_nodes), indent=1) + "\n")
    return STOCK_NODES


def build_all(info: dict) -> list[Path]:
    written = [record_stock_nodes(info)]
    info = with_stock_snapshot(info)
    for stale in WORKFLOWS.glob("*.json"):
        stale.unlink()
    for api_path in sorted((WORKFLOWS / "api").glob("*.json")):
        template = TEMPLATES.get(api_path.stem)
        ui = api_to_ui(json.loads(api_path.read_text()), info, template)
        target = WORKFLOWS / ui_file_name(api_path.stem)
        target.write_text(json.dumps(ui, indent=1) + "\n")
        written.append(target)
    return written


def bundled_photo_and_mask(workflow: dict) -> tuple[np.ndarray, np.ndarray]:
    """The bundled photo (uint8 RGB) and the mask (0..1) Mask Conditioning gets from it: a
    LoadImageMask file, or the photo's own alpha (1 - alpha: the MaskEditor's), through Select by
    Clicks as the node treats it (its clicks' selection, the painted mask added, snapped or
    ignored)."""
    conditioning = next(n for n in workflow.values() if n["class_type"] == "MaskConditioning")
    photo_node = workflow[conditioning["inputs"]["image"][0]]
    photo_file = Image.open(ASSETS / photo_node["inputs"]["image"])
    photo = np.asarray(photo_file.convert("RGB"))
    source = workflow[conditioning["inputs"]["mask"][0]]
    clicks = source if source["class_type"] == "SelectByClicks" else None
    if clicks is not None:
        source = workflow[clicks["inputs"]["mask"][0]]
    if source["class_type"] == "LoadImageMask":
        mask_file = Image.open(ASSETS / source["inputs"]["image"]).convert("RGB")
        painted = np.asarray(mask_file.getchannel("R")) / 255.0
    elif "A" in photo_file.getbands():
        painted = 1.0 - np.asarray(photo_file.getchannel("A")) / 255.0
    else:  # nobody painted it: LoadImage's MASK is empty
        painted = np.zeros(photo.shape[:2])
    if clicks is None:
        return photo, painted
    how = clicks["inputs"]["painted"]
    import_pack()
    selection = importlib.import_module("relight_inpaint.conditioning.select")
    clicked = selection.parse_clicks(clicks["inputs"]["points"])
    rough = painted if how == "refine" else None
    selected = selection.select(photo / 255.0, clicked, rough).astype(np.float64)
    return photo, np.maximum(selected, painted) if how == "add" else selected


def result_of(url: str, workflow: dict) -> Image.Image:
    for node in workflow.values():
        if node["class_type"] == "LoadImage":
            upload_image(url, ASSETS / node["inputs"]["image"], node["inputs"]["image"])
    saver = next(n for n in workflow.values() if n["class_type"] == "SaveImage")
    saver["inputs"]["filename_prefix"] = "relight_thumbnails/result"
    [png] = fetch_output_images(url, run_prompt(url, workflow, timeout=600))
    return Image.open(io.BytesIO(png)).convert("RGB")


def outlined(photo: Image.Image, mask: np.ndarray) -> Image.Image:
    edge = (mask > 0.5) ^ np.roll(mask > 0.5, 2, 0) | (mask > 0.5) ^ np.roll(mask > 0.5, 2, 1)
    pixels = np.asarray(photo).copy()
    pixels[edge] = [255, 210, 60]
    return Image.fromarray(pixels)


def thumbnail(before: Image.Image, after: Image.Image, caption: str) -> Image.Image:
    """Before (mask outlined) above after, on a square card."""
    card = Image.new("RGB", (THUMBNAIL_SIDE, THUMBNAIL_SIDE), (24, 24, 28))
    half = THUMBNAIL_SIDE // 2 - 22
    for row, image in enumerate((before, after)):
        fitted = image.copy()
        fitted.thumbnail((THUMBNAIL_SIDE - 16, half))
        card.paste(fitted, ((THUMBNAIL_SIDE - fitted.width) // 2, 8 + row * (half + 8)))
    font = ImageFont.load_default(size=22)
    ImageDraw.Draw(card).text((12, THUMBNAIL_SIDE - 30), caption, fill=(235, 235, 235), font=font)
    return card


def sphere_card(light_node: dict) -> Image.Image:
    """The light the workflow asks for, as the pack's light preview draws it."""
    import_pack()  # conditioning/ is plain torch: no host needed
    lights = importlib.import_module("relight_inpaint.lighting.light")
    light_preview = importlib.import_module("relight_inpaint.lighting.shading").light_preview
    direction_from_angles, make_light = lights.direction_from_angles, lights.make_light

    inputs = light_node["inputs"]
    light = make_light(direction_from_angles(inputs["azimuth"], inputs["elevation"]))
    pixels = (light_preview(light, 256)[0].clamp(0, 1).numpy() * 255).astype(np.uint8)
    return Image.fromarray(pixels)


def build_thumbnails(url: str) -> list[Path]:
    written = []
    for name, template in TEMPLATES.items():
        workflow = json.loads((WORKFLOWS / "api" / f"{name}.json").read_text())
        pixels, mask = bundled_photo_and_mask(workflow)
        photo = Image.fromarray(pixels)
        if name == "iclight_fc_sd15":  # its weights are the user's: show the request
            light = next(n for n in workflow.values() if n["class_type"] == "LightDirectionEncode")
            card = thumbnail(outlined(photo, mask), sphere_card(light), "IC-Light fc + SD1.5")
        else:
            card = thumbnail(outlined(photo, mask), result_of(url, workflow), "before / after")
        target = WORKFLOWS / f"{template.title}.jpg"
        card.save(target, quality=88)
        written.append(target)
    return written


def main() -> None:
    with start_server() as server:
        info = object_info(server.url)
        written = build_all(info) + build_thumbnails(server.url)
    for path in written:
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
