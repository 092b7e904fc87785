"""The README's first picture: the bundled photo and a portrait with a loose ellipse painted
over the face, relit by the pack's own model from the right, top, left and bottom (elevation
30 degrees, white light) through the sampler's own path with the template's settings.

  .venv/bin/python -P host/readme_picture.py [--out docs/images/four_lights.png]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

if __package__ in (None, ""):  # run as a script: see host/bootstrap.py
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from bootstrap import run_as_pack_module

    __package__ = run_as_pack_module("host")

import comfy.utils  # noqa: E402
import torch  # noqa: E402

from ..conditioning.mask import prepare_masked_image  # noqa: E402
from ..conditioning.upscale import restorer  # noqa: E402
from ..lighting.light import direction_from_angles, make_light  # noqa: E402
from ..model_loader.relight_model import load_relight_model  # noqa: E402
from ..sampling.crops import ONE_STEP, relight_crops  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
AZIMUTHS = {"right": 0.0, "top": 90.0, "left": 180.0, "bottom": 270.0}
ROW_HEIGHT = 256


def bundled_photo() -> tuple[np.ndarray, np.ndarray, tuple[slice, slice]]:
    """The bundled photo and mask, shown whole."""
    photo = np.asarray(Image.open(REPO / "assets" / "relight_demo_photo.png").convert("RGB"))
    mask = np.asarray(Image.open(REPO / "assets" / "relight_demo_mask.png").convert("L"))
    whole = (slice(None), slice(None))
    return photo.astype(np.float32) / 255, (mask > 127).astype(np.float32), whole


def portrait() -> tuple[np.ndarray, np.ndarray, tuple[slice, slice]]:
    """scikit-image's astronaut (public domain, NASA) with a loose ellipse over the face, shown
    around the face at the bundled photo's 3:2 (relit whole)."""
    from skimage import data

    photo = data.astronaut().astype(np.float32) / 255
    rows, cols = np.mgrid[: photo.shape[0], : photo.shape[1]]
    ellipse = ((cols - 250) / 95) ** 2 + ((rows - 125) / 120) ** 2 < 1
    return photo, ellipse.astype(np.float32), (slice(0, 270), slice(48, 453))


def relit_row(model, vae, photo: np.ndarray, mask: np.ndarray, view) -> list[np.ndarray]:
    masked = prepare_masked_image(torch.from_numpy(photo)[None], torch.from_numpy(mask)[None], 4, 8)
    row = [outlined(photo, mask)[view]]
    for azimuth in AZIMUTHS.values():
        light = make_light(direction_from_angles(azimuth, 30.0), 1.0, 0.15)
        result = relight_crops(
            model, vae, masked, light, "relight", ONE_STEP, 0.5, restore=restorer()
        )
        row.append(result.image[0].numpy()[view])
    return row


def outlined(photo: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The photo with the mask's outline drawn in, as the user painted it."""
    image = Image.fromarray(np.round(photo * 255).astype(np.uint8))
    edge = Image.fromarray((mask > 0.5).astype(np.uint8) * 255).filter(ImageFilter.FIND_EDGES)
    image.paste((255, 230, 60), mask=edge)
    return np.asarray(image).astype(np.float32) / 255


def sheet(rows: list[list[np.ndarray]]) -> Image.Image:
    tiles = []
    for row in rows:
        scaled = []
        for image in row:
            tile = Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8))
            width = round(tile.width * ROW_HEIGHT / tile.height)
            scaled.append(tile.resize((width, ROW_HEIGHT), Image.LANCZOS))
        tiles.append(scaled)
    width = max(sum(t.width for t in row) + 4 * (len(row) - 1) for row in tiles)
    canvas = Image.new("RGB", (width, len(tiles) * (ROW_HEIGHT + 4) - 4), "white")
    for r, row in enumerate(tiles):
        x = 0
        for tile in row:
            canvas.paste(tile, (x, r * (ROW_HEIGHT + 4)))
            x += tile.width + 4
    return canvas


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "images" / "four_lights.png")
    args = parser.parse_args()
    comfy.utils.PROGRESS_BAR_ENABLED = False
    model, vae = load_relight_model(REPO / "models" / "relight_default.safetensors")
    rows = [relit_row(model, vae, *case()) for case in (bundled_photo, portrait)]
    sheet(rows).save(args.out)
    print(f"wrote {args.out}: columns input (mask outlined) | " + " | ".join(AZIMUTHS))


if __name__ == "__main__":
    main()
