"""SelectByClicks: a few clicks (inside / outside), a box or a rough painted mask, turned into a
MASK snapped to the image's edges (OpenCV GrabCut, no weights)."""

from __future__ import annotations

import asyncio
import functools
import io as bytes_io
import os

import numpy as np
import torch
from comfy_api.v0_0_2 import io, ui

from ..conditioning.composite import preview_image
from ..conditioning.mask import as_mask_batch, resize_mask
from ..conditioning.select import Clicks, SelectionError, parse_clicks, select
from .common import CATEGORY, json_body, running_server

PAINTED = ["add", "refine", "ignore"]
PREVIEW_SIDE = 2048
SELECTION_KEY = "relight_selection"  # the page widget reads the last selection from here
ROUTE = "/relight/select"  # the page asks here for the selection after every click
ROUTE_SIDE = 1024  # the route reads the photo at most this long side (a 24 MP photo too)
MAX_BODY_BYTES = 1 << 20
ASPECT_TOLERANCE = 0.02  # clicks made on a picture of another shape than this are refused
IMAGE_TYPES = ("input", "output", "temp")


class BadRequest(ValueError):
    """A preview request the route answers with 400, naming the input that is wrong."""


def person_matte(image: torch.Tensor) -> np.ndarray | None:
    """The person segmenter's matte [H,W] (mediapipe's, as lighting uses it) when the photo
    shows a face, else None (also where the face models are not installed): the selection then
    starts from colour alone. The segmenter alone also covers a cup or a sphere."""
    try:
        from ..lighting.faces import face_geometry, faces_unavailable
        from ..lighting.faces import person_matte as matte_of
    except ImportError:
        return None
    if faces_unavailable() is not None or face_geometry(image).count == 0:
        return None
    matte = matte_of(image)
    return None if matte is None else matte.float().cpu().numpy()


def combine(selected: torch.Tensor, painted: torch.Tensor | None, how: str) -> torch.Tensor:
    if painted is None or how != "add":
        return selected
    return torch.maximum(selected, painted)


def selection_overlay(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The image with the selection tinted red, at most PREVIEW_SIDE px."""
    image = preview_image(image, PREVIEW_SIDE)
    share = preview_image(mask[..., None], PREVIEW_SIDE) * 0.55
    return image * (1 - share) + torch.tensor([1.0, 0.15, 0.15]) * share


def painted_batch(mask: torch.Tensor | None, image: torch.Tensor) -> torch.Tensor | None:
    """The painted mask per image. A mask of another size is resized, as Mask Conditioning
    does: Load Image gives a 64 x 64 empty mask for a photo nobody painted."""
    if mask is None:
        return None
    mask = as_mask_batch(mask)
    if mask.shape[1:3] != image.shape[1:3]:
        mask = resize_mask(mask, *image.shape[1:3])
    if mask.shape[0] not in (1, image.shape[0]):
        raise ValueError(f"mask: batch of {mask.shape[0]}, expected 1 or {image.shape[0]}")
    return mask.expand(image.shape[0], -1, -1).float()


def check_click_size(clicks: Clicks, image: torch.Tensor) -> None:
    """Clicks made on a picture of another shape (the photo was replaced after clicking) do
    not fit this one: a clear error rather than a selection in the wrong place."""
    if clicks.size is None:
        return
    height, width = image.shape[1:3]
    made = clicks.size[0] / clicks.size[1]
    if abs(made / (width / height) - 1) > ASPECT_TOLERANCE:
        raise ValueError(
            f"points: made on a {clicks.size[0]:g} x {clicks.size[1]:g} picture, but the image is "
            f"{width} x {height} (another photo?): clear the clicks (Clear) and click again"
        )


class SelectByClicks(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="SelectByClicks",
            display_name="Select by Clicks",
            category=CATEGORY,
            description=(
                "Makes a mask from a few clicks on the image shown in the node: left-click on "
                "the object to select it, right-click (or shift-click) on what should stay out, "
                "drag with the left button for a box. The mask follows the image's edges "
                "(OpenCV GrabCut: colour models and a graph cut, nothing to download). "
                "Usually 1-5 clicks; each click corrects the selection before it. Feed the mask "
                "to Mask Conditioning; a mask painted in the MaskEditor can be added to it, or "
                "used as a rough region that is snapped to the edges."
            ),
            inputs=[
                io.Image.Input("image", tooltip="The photo to select in."),
                io.String.Input(
                    "points",
                    default="",
                    tooltip='Written by clicking on the image in this node: {"points": [[x, y, '
                    '1 = inside / 0 = outside], ...], "box": [x0, y0, x1, y1], "size": [width, '
                    "height] the clicks were made on}. A plain [[x, y], ...] list (other point "
                    "editors) counts as inside clicks. Empty: no clicks.",
                ),
                io.Mask.Input(
                    "mask",
                    optional=True,
                    tooltip="A painted mask (e.g. LoadImage's MASK from the MaskEditor): added to "
                    "the selection, or used as the rough region to snap (see 'painted').",
                ),
                io.Combo.Input(
                    "painted",
                    options=PAINTED,
                    default="add",
                    optional=True,
                    tooltip="What to do with the painted mask. add: the result is the click "
                    "selection plus the painted region (with no clicks: the painted mask as it "
                    "is). refine: the painted region is a rough outline, snapped to the edges "
                    "together with the clicks. ignore: clicks only.",
                ),
            ],
            outputs=[
                io.Mask.Output(display_name="mask", tooltip="For Mask Conditioning's mask."),
                io.Image.Output(
                    display_name="preview",
                    tooltip=f"The selection in red (at most {PREVIEW_SIDE} px a side).",
                ),
            ],
        )

    @classmethod
    def validate_inputs(cls, points: str = "", painted: str = "add", **_) -> bool | str:
        if isinstance(points, str):
            try:
                parse_clicks(points)
            except SelectionError as error:
                return f"points: {error}"
        if painted not in PAINTED:
            return f"painted: expected one of {PAINTED}, got {painted!r}"
        return True

    @classmethod
    def execute(
        cls, image: torch.Tensor, points: str, mask=None, painted: str = "add"
    ) -> io.NodeOutput:
        try:
            clicks = parse_clicks(points)
        except SelectionError as error:
            raise ValueError(f"points: {error}") from None
        if painted not in PAINTED:
            raise ValueError(f"painted: expected one of {PAINTED}, got {painted!r}")
        check_click_size(clicks, image)
        rough_masks = painted_batch(mask, image)
        selected = []
        for index, frame in enumerate(image):
            rough = rough_masks[index] if rough_masks is not None else None
            hint = rough.numpy() if rough is not None and painted == "refine" else None
            pixels = frame[..., :3].float()
            person = person_matte(pixels) if clicks.inside else None
            region = select(pixels.numpy(), clicks, hint, person)
            selected.append(torch.from_numpy(np.ascontiguousarray(region)))
        result = combine(torch.stack(selected), rough_masks, painted)
        preview = selection_overlay(image[..., :3], result)
        # Under its own key, so the page shows it in the click canvas and not a second time
        # below it (the frontend draws `images` under any node).
        saved = ui.PreviewImage(preview, cls=cls).as_dict()["images"]
        return io.NodeOutput(result, preview, ui={SELECTION_KEY: saved})


def image_path(ref: object) -> str:
    """The file of an image the page shows (`/view`'s filename, subfolder, type), inside its
    folder; BadRequest naming what is wrong."""
    import folder_paths

    if not isinstance(ref, dict) or not isinstance(ref.get("filename"), str):
        raise BadRequest('image: expected {"filename": ..., "subfolder": ..., "type": ...}')
    kind = ref.get("type") or "input"
    if kind not in IMAGE_TYPES:
        raise BadRequest(f"image: type must be one of {list(IMAGE_TYPES)}, got {kind!r}")
    base = os.path.abspath(folder_paths.get_directory_by_type(kind))
    subfolder = ref.get("subfolder") or ""
    if not isinstance(subfolder, str):
        raise BadRequest("image: subfolder must be text")
    name, _ = folder_paths.annotated_filepath(ref["filename"])
    path = os.path.abspath(os.path.join(base, subfolder, name))
    if os.path.commonpath((path, base)) != base or not os.path.isfile(path):
        raise BadRequest(f"image: no such {kind} image {ref['filename']!r}")
    return path


@functools.lru_cache(maxsize=4)
def read_photo(path: str, stamp: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The photo at most ROUTE_SIDE px a side as LoadImage turns it ([H,W,3] 0..1) and its
    painted mask (1 - alpha) when it has an alpha channel. `stamp` (size, mtime) renews it."""
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        opened.draft("RGB", (ROUTE_SIDE, ROUTE_SIDE))  # a large JPEG decodes smaller
        picture = ImageOps.exif_transpose(opened)
        picture.thumbnail((ROUTE_SIDE, ROUTE_SIDE))
        rgb = torch.from_numpy(np.asarray(picture.convert("RGB"), np.float32) / 255.0)
        painted = None
        if "A" in picture.getbands():
            alpha = np.asarray(picture.getchannel("A"), np.float32) / 255.0
            painted = torch.from_numpy(1.0 - alpha)
    return rgb, painted


@functools.lru_cache(maxsize=4)
def photo_person(path: str, stamp: tuple[int, int]) -> np.ndarray | None:
    return person_matte(read_photo(path, stamp)[0])


def preview_mask(body: dict) -> tuple[bytes, tuple[int, int]]:
    """The selection the node would make, as a PNG mask at the preview's size, and that size:
    what the route answers after each click."""
    from PIL import Image

    if not isinstance(body, dict):
        raise BadRequest('expected {"image": {...}, "points": "...", "painted": ...}')
    points = body.get("points", "")
    if not isinstance(points, str):
        raise BadRequest("points: expected the points widget's text")
    painted_how = body.get("painted")
    if painted_how is not None and painted_how not in PAINTED:
        raise BadRequest(f"painted: expected one of {PAINTED}, got {painted_how!r}")
    try:
        clicks = parse_clicks(points)
    except SelectionError as error:
        raise BadRequest(f"points: {error}") from None
    path = image_path(body.get("image"))
    found = os.stat(path)
    stamp = (found.st_size, found.st_mtime_ns)
    try:
        rgb, painted = read_photo(path, stamp)
    except OSError as error:
        raise BadRequest(f"image: cannot be read ({error})") from None
    painted = painted if painted_how in ("add", "refine") else None
    hint = painted.numpy() if painted is not None and painted_how == "refine" else None
    person = photo_person(path, stamp) if clicks.inside else None
    selected = combine(
        torch.from_numpy(select(rgb.numpy(), clicks, hint, person)), painted, painted_how
    )
    picture = Image.fromarray((selected.numpy() * 255).astype(np.uint8), "L")
    buffer = bytes_io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue(), (rgb.shape[1], rgb.shape[0])


def register_select_route() -> bool:
    """`POST /relight/select`: the selection for the page's clicks, so the node redraws after
    every click without Run. Added where a server runs (not in plain tests)."""
    running = running_server()
    if running is None:
        return False
    web, server = running

    @server.routes.post(ROUTE)
    async def select_route(request: web.Request) -> web.Response:
        try:
            try:
                body = json_body(await request.content.read(MAX_BODY_BYTES + 1), MAX_BODY_BYTES)
            except ValueError as error:
                raise BadRequest(str(error)) from None
            loop = asyncio.get_running_loop()
            png, size = await loop.run_in_executor(None, preview_mask, body)
        except BadRequest as error:
            return web.json_response({"error": str(error)}, status=400)
        headers = {"X-Relight-Size": f"{size[0]}x{size[1]}", "Cache-Control": "no-store"}
        return web.Response(body=png, content_type="image/png", headers=headers)

    return True
