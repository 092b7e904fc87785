"""One item through a ComfyUI server: read and check its inputs, upload them, run the
workflow, fetch the output, remove what it left on the server, write the file.

Used by `relight run` / `demo` and by every batch runner (one server, or a Ray actor per server).
Like the rest of the command line it never imports ComfyUI or torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import stat
import struct
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from . import comfy_server as comfy
from .workflow import OptionError, build_prompt

IMAGE_FORMATS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp"}
# The largest photo the pack works on: conditioning/checks.py's limit (that module needs torch,
# which the command line never imports; tests/host/test_batch_hostile.py holds the two equal).
MAX_SIDE = 16384
MAX_MEGAPIXELS = 268.0
UPLOADS = "relight_cli"  # the CLI's inputs and outputs: a subfolder, out of LoadImage's list


@dataclass
class Inputs:
    """A photo and its mask, read and checked, ready to upload."""

    image_bytes: bytes
    image_name: str
    mask_bytes: bytes
    mask_name: str
    maps: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # normal / depth maps
    sources: dict[str, str] = field(default_factory=dict)  # SHA-256 of each file as read


# --- inputs and outputs ---------------------------------------------------------------------


def read_inputs(
    image_path: Path, mask_path: Path, map_paths: dict[str, Path] | None = None
) -> Inputs:
    """Read and check the photo, mask and maps; raises OptionError naming the input."""
    image_bytes, image_format = read_image_file("image", image_path)
    mask_bytes = mask_png("mask", mask_path)
    image_name = f"relight-{digest(image_bytes)}{IMAGE_FORMATS[image_format]}"
    sources = {"image": sha256(image_bytes), "mask": sha256(read_file("mask", mask_path))}
    maps = {}
    for key, path in (map_paths or {}).items():
        data, kind = read_image_file(key.replace("_", "-"), path)
        maps[key] = (data, f"relight-{key}-{digest(data)}{IMAGE_FORMATS[kind]}")
        sources[key] = sha256(data)
    mask_name = f"relight-mask-{digest(mask_bytes)}.png"
    return Inputs(image_bytes, image_name, mask_bytes, mask_name, maps, sources)


def read_image_file(option: str, path: Path) -> tuple[bytes, str]:
    data = read_file(option, path)
    with open_image(option, path, data) as image:
        image_format = image.format
    if image_format not in IMAGE_FORMATS:
        raise OptionError(option, f"{path}: {image_format} is not supported (JPEG, PNG or WebP)")
    return data, image_format


class NotRegularFile(OSError):
    """A device, FIFO, socket or folder where a file's bytes were expected."""


def regular_file_bytes(path: Path, follow_links: bool = True) -> bytes:
    """A regular file's bytes. A device, FIFO or socket is refused without reading it (a FIFO
    is opened non-blocking, so one with no writer does not hang a batch): NotRegularFile naming
    its kind. follow_links False: a link is refused too (OSError). A NUL in the name:
    ValueError."""
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (0 if follow_links else os.O_NOFOLLOW)
    descriptor = os.open(path, flags)
    with open(descriptor, "rb") as file:
        kind = file_kind(os.fstat(descriptor).st_mode)
        if kind != "regular file":
            raise NotRegularFile(f"{path} is a {kind}; expected a regular file")
        return file.read()


def read_file(option: str, path: Path) -> bytes:
    """regular_file_bytes, what goes wrong as an error naming the option."""
    try:
        return regular_file_bytes(path)
    except FileNotFoundError:
        raise OptionError(option, f"no such file: {path}") from None
    except ValueError:  # a NUL character in the name
        raise OptionError(option, f"{path!r}: a NUL character in the name") from None
    except NotRegularFile as error:
        raise OptionError(option, str(error)) from None
    except OSError as error:
        raise OptionError(option, f"cannot read {path}: {error.strerror}") from None


def file_kind(mode: int) -> str:
    kinds = {
        stat.S_ISREG: "regular file",
        stat.S_ISDIR: "folder",
        stat.S_ISFIFO: "FIFO (named pipe)",
        stat.S_ISSOCK: "socket",
        stat.S_ISCHR: "character device",
        stat.S_ISBLK: "block device",
    }
    return next((name for test, name in kinds.items() if test(mode)), "special file")


def open_image(option: str, path: Path, data: bytes) -> Image.Image:
    """Decode an image, refusing one larger than the pack's limit from its header alone."""
    with unreadable_as_option_error(option, path), pillow_size_check_off():
        image = Image.open(io.BytesIO(data))
    require_workable_size(option, path, *image.size)
    with unreadable_as_option_error(option, path):
        image.load()
    return image


@contextlib.contextmanager
def unreadable_as_option_error(option: str, path: Path) -> Iterator[None]:
    """What Pillow raises for a damaged or hostile file, as an error naming the input."""
    try:
        yield
    except UnidentifiedImageError:
        raise OptionError(option, f"{path}: not an image file Pillow can read") from None
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error) as error:
        raise OptionError(option, f"{path}: not a readable image ({error})") from None


@contextlib.contextmanager
def pillow_size_check_off() -> Iterator[None]:
    """Pillow's own bomb check (a warning, or an error at twice its limit) gives way to the
    pack's limit, checked from the header: the CLI reads its inputs on one thread."""
    previous = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


def require_workable_size(option: str, path: Path, width: int, height: int) -> None:
    megapixels = width * height / 1e6
    if max(width, height) > MAX_SIDE or megapixels > MAX_MEGAPIXELS:
        raise OptionError(
            option,
            f"{path}: the header says {width}x{height} px ({megapixels:.0f} MP); the limit is "
            f"{MAX_SIDE} px a side and {MAX_MEGAPIXELS:g} MP (not decoded): scale it down first",
        )


def mask_png(option: str, path: Path) -> bytes:
    """The mask as a greyscale PNG, white = repaint.

    A file with transparency marks the region to repaint by its transparent pixels (as ComfyUI's
    LoadImage reads it); the workflow's LoadImageMask reads the red channel, so convert.
    """
    with open_image(option, path, read_file(option, path)) as image:
        image = ImageOps.exif_transpose(image)  # as LoadImage turns the photo
        grey = transparent_region(image) or image.convert("RGB").getchannel("R")
    buffer = io.BytesIO()
    grey.save(buffer, format="PNG")
    return buffer.getvalue()


def transparent_region(image: Image.Image) -> Image.Image | None:
    """255 − alpha, or None when the image has no transparent pixel."""
    if "A" not in image.getbands() and "transparency" not in image.info:
        return None
    alpha = image.convert("RGBA").getchannel("A")
    if alpha.getextrema()[0] == 255:
        return None
    return ImageChops.invert(alpha)


def digest(data: bytes) -> str:
    return sha256(data)[:16]


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def check_out_path(option: str, path: Path) -> Path:
    if path.suffix.lower() != ".png":
        raise OptionError(option, f"must be a .png file (got {path})")
    if path.is_dir():
        raise OptionError(option, f"is a folder: {path}")
    check_output_folder(option, path.parent)
    return path


def check_output_folder(option: str, folder: Path) -> None:
    """Checked before anything is rendered, not found after: the folder, or where it does not
    exist yet the nearest folder above it (it is made there), must be a folder we can write."""
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise OptionError(option, f"cannot make a folder under {existing}: it is not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OptionError(option, f"cannot write into {existing}: permission denied")


def write_atomically(option: str, path: Path, data: bytes) -> None:
    """Write via a temporary file and a rename, so a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.part")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the name points at them
        os.replace(partial, path)
    except OSError as error:
        raise OptionError(option, f"cannot write {path}: {error.strerror or error}") from None
    finally:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


# --- talking to the server ------------------------------------------------------------------


@contextlib.contextmanager
def comfy_url(server: str | None) -> Iterator[str]:
    """The URL of the given server, or of one started for the duration of the block."""
    if server:
        url = normalise_url(server)
        check_server(url)
        yield url
        return
    tqdm.write("relight: starting ComfyUI ...", file=sys.stderr)
    with comfy.start_server() as started:
        yield started.url


def normalise_url(server: str) -> str:
    url = server.strip().rstrip("/")
    return url if "://" in url else f"http://{url}"


def check_server(url: str) -> None:
    try:
        comfy.object_info(url)
    except requests.RequestException:
        raise OptionError("server", f"no ComfyUI answering at {url}") from None


def render(
    url: str,
    prompt_options: dict,
    inputs: Inputs,
    on_progress: Callable | None = None,
    prompt_id: str | None = None,
) -> bytes:
    """Upload the inputs, run the workflow and return the output PNG's bytes.

    The uploads and the saved output carry the prompt id in their names, so two items (or two
    batches) on one server never share a file, and both are removed from the server when the
    item ends, however it ends. Choosing `prompt_id` lets a caller cancel the item elsewhere.
    """
    prompt_id = prompt_id or comfy.new_id()
    uploaded: list[str] = []
    saved: list[str] = []
    try:
        prompt = upload_and_build(url, prompt_options, inputs, prompt_id, uploaded)
        try:
            entry = comfy.run_prompt(url, prompt, on_progress, prompt_id=prompt_id)
        except KeyboardInterrupt:
            with contextlib.suppress(requests.RequestException):
                comfy.cancel_prompt(url, prompt_id)
            raise
        saved = saved_names(entry)
        images = comfy.fetch_output_images(url, entry)
    finally:
        comfy.remove_cli_files(url, uploaded, saved)
    if not images:
        raise comfy.PromptError("the workflow finished but saved no image")
    return images[0]


def upload_and_build(
    url: str, options: dict, inputs: Inputs, prompt_id: str, uploaded: list[str]
) -> dict:
    """Upload the item's files (named after the prompt; `uploaded` lists them as they go, so
    a failure half-way still removes what arrived) and build its prompt."""

    def upload(data: bytes, name: str) -> str:
        stored = comfy.upload_image_bytes(url, data, own_name(name, prompt_id), UPLOADS)
        uploaded.append(stored.rsplit("/", 1)[-1])
        return stored

    image_name = upload(inputs.image_bytes, inputs.image_name)
    mask_name = upload(inputs.mask_bytes, inputs.mask_name)
    maps = {key: upload(data, name) for key, (data, name) in inputs.maps.items()}
    prompt = build_prompt(options, image_name, mask_name, maps=maps)
    for node in prompt.values():
        if node.get("class_type") == "SaveImage":
            node["inputs"]["filename_prefix"] = f"{UPLOADS}/{prompt_id}"
    # previews are for a person at the page: here they would only fill the server's temp/
    return {key: node for key, node in prompt.items() if node.get("class_type") != "PreviewImage"}


def own_name(name: str, prompt_id: str) -> str:
    stem, dot, suffix = name.rpartition(".")
    return f"{stem}-{prompt_id[:8]}{dot}{suffix}"


def saved_names(entry: dict) -> list[str]:
    """The files the prompt saved in the output folder's relight_cli subfolder."""
    return [
        image["filename"]
        for output in entry.get("outputs", {}).values()
        for image in output.get("images", [])
        if image.get("type") == "output" and image.get("subfolder") == UPLOADS
    ]
