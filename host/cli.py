"""`relight`: run the Relight Inpaint workflow on photos through a real ComfyUI.

The CLI never imports ComfyUI or torch: it starts (or reaches) a ComfyUI server and talks to it
over HTTP. Run it as `./relight ...` (or `python -m host.cli` from the repo root).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import requests
from PIL import Image, ImageChops, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from . import comfy_server as comfy
from .workflow import (
    LIGHT_OPTION,
    LIGHT_PRESETS,
    MAP_KEYS,
    MODES,
    SHADOW_CHOICES,
    BatchItem,
    ManifestError,
    OptionError,
    build_prompt,
    load_workflow,
    node_inputs,
    parse_manifest_line,
    validate_options,
    workflow_defaults,
)

REPO = Path(__file__).resolve().parents[1]
DEMO_PHOTO = REPO / "assets" / "relight_demo_photo.png"
DEMO_MASK = REPO / "assets" / "relight_demo_mask.png"
DEMO_OUT = REPO / "out" / "relight_demo.png"
OUTSIDE_OK = "allow-outside-out-dir"  # the batch option that lets a manifest write elsewhere
CALLER_CWD_ENV = "RELIGHT_CALLER_CWD"
IMAGE_FORMATS = {"JPEG": ".jpg", "MPO": ".jpg", "PNG": ".png", "WEBP": ".webp"}
POSITIONAL_ARGUMENTS = {"manifest"}
UPLOADS = "relight_cli"  # the CLI's inputs: a subfolder, out of LoadImage's list
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


@dataclass
class Inputs:
    """A photo and its mask, read and checked, ready to upload."""

    image_bytes: bytes
    image_name: str
    mask_bytes: bytes
    mask_name: str
    maps: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # normal / depth maps


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["test"]:
        return command_test(argv[1:])
    args = build_parser().parse_args(argv)
    stop_on_signals()
    try:
        return args.handler(args)
    except OptionError as error:
        dashes = "" if error.option in POSITIONAL_ARGUMENTS else "--"
        return fail(f"{dashes}{error}", EXIT_USAGE)
    except comfy.PromptError as error:
        return fail(str(error), EXIT_FAILED)
    except comfy.ServerError as error:
        return fail(str(error), EXIT_FAILED)
    except requests.RequestException as error:
        return fail(f"ComfyUI: {error}", EXIT_FAILED)
    except OSError as error:
        return fail(str(error), EXIT_FAILED)
    except KeyboardInterrupt:
        return fail("interrupted", EXIT_INTERRUPTED)


def stop_on_signals() -> None:
    """SIGTERM and SIGHUP end the CLI like Ctrl-C does, so a server it started is stopped too."""

    def interrupt_main(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, interrupt_main)


def fail(message: str, status: int) -> int:
    tqdm.write(f"relight: {message}", file=sys.stderr)
    return status


# --- arguments ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="relight", description="Relight or fill a masked region of a photo with ComfyUI."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_command(commands)
    add_run_command(commands)
    add_batch_command(commands)
    add_demo_command(commands)
    commands.add_parser(
        "test", help="run the test suite (.venv/bin/pytest) with the given pytest arguments"
    )
    return parser


def add_serve_command(commands: argparse._SubParsersAction) -> None:
    serve = commands.add_parser("serve", help="run ComfyUI with the pack until Ctrl-C")
    serve.add_argument("--port", type=int, default=8188, help="port on 127.0.0.1 (8188)")
    serve.set_defaults(handler=command_serve)


def add_run_command(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser("run", help="relight one photo")
    run.add_argument("--image", required=True, help="photo: JPEG, PNG or WebP")
    run.add_argument(
        "--mask", required=True, help="greyscale PNG, white = repaint (or transparent = repaint)"
    )
    run.add_argument("--out", required=True, help="output PNG")
    run.add_argument(
        "--normal-map",
        dest="normal_map",
        help="normal map of the whole image (RGB = (n + 1) / 2, y up), from any estimator",
    )
    run.add_argument(
        "--depth-map", dest="depth_map", help="depth map of the whole image (white = near)"
    )
    add_workflow_options(run)
    add_server_option(run)
    run.set_defaults(handler=command_run)


def add_batch_command(commands: argparse._SubParsersAction) -> None:
    batch = commands.add_parser(
        "batch",
        help="relight every line of a JSONL manifest",
        description="Each line: a JSON object with the keys of `run` without dashes (image, "
        "mask, azimuth, light as [x, y, z], steps, ...) and optional out. image and mask are "
        "relative to the manifest's folder, out to --out-dir (default <image stem>.png).",
    )
    batch.add_argument("manifest", help="manifest file (.jsonl)")
    batch.add_argument("--out-dir", required=True, help="folder for the outputs")
    batch.add_argument(
        f"--{OUTSIDE_OK}",
        action="store_true",
        help="let a manifest's out name files outside --out-dir (refused by default)",
    )
    add_server_option(batch)
    batch.set_defaults(handler=command_batch)


def add_demo_command(commands: argparse._SubParsersAction) -> None:
    demo = commands.add_parser("demo", help="relight the bundled demo photo")
    demo.add_argument("--out", help="output PNG (out/relight_demo.png in the repo)")
    add_server_option(demo)
    demo.set_defaults(handler=command_demo)


def add_server_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server", help="URL of a running ComfyUI with the pack (default: start one for this run)"
    )


def add_workflow_options(parser: argparse.ArgumentParser) -> None:
    defaults = workflow_defaults(load_workflow())
    group = parser.add_argument_group("workflow options (default: the workflow file's value)")

    def add(name: str, kind: type, help_text: str, **extra: object) -> None:
        group.add_argument(
            f"--{name}",
            type=kind,
            default=None,
            metavar=name.upper(),
            help=f"{help_text} ({defaults[name]})",
            **extra,
        )

    add("azimuth", float, "light azimuth in degrees")
    add("elevation", float, "light elevation in degrees, -90..90")
    group.add_argument(
        "--light",
        metavar="X,Y,Z",
        help=f"light direction vector, one of {', '.join(LIGHT_PRESETS)}, or auto: the "
        "scene's own light, fitted outside the mask (needs --normal-map or --depth-map)",
    )
    add("intensity", float, "light intensity")
    add("ambient", float, "ambient light")
    add("color", str, "light colour, hex")
    add("mode", str, "relight or fill", choices=MODES)
    add("steps", int, "sampling steps")
    add("cfg", float, "classifier-free guidance")
    add("sampler", str, "ComfyUI sampler name")
    add("scheduler", str, "ComfyUI scheduler name")
    add("seed", int, "noise seed")
    add("denoise", float, "denoise strength, 0..1")
    add("grow", int, "grow the mask by this many pixels")
    add("feather", int, "feather the mask edge by this many pixels")
    add("model", str, "model file in models/relight")
    add("context", float, "context around each masked region, a share of its size")
    add("resolution", int, "long side each crop is worked at, 0 = the model's own")
    group.add_argument(
        "--cast-shadow",
        dest="cast_shadow",
        choices=SHADOW_CHOICES,
        help="cast shadow: relight paints the subject's shadow for the light, fill removes "
        "its old shadow (on; best with --depth-map)",
    )


def options_from_args(args: argparse.Namespace) -> dict[str, object]:
    names = ("azimuth", "elevation", "light", "intensity", "ambient", "color", "mode", "steps")
    names += ("cfg", "sampler", "scheduler", "seed", "denoise", "grow", "feather", "model")
    names += ("context", "resolution", "cast_shadow")
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}


def user_path(text: str) -> Path:
    """A path as the user meant it: relative to the folder `relight` was called from."""
    path = Path(text).expanduser()
    return path if path.is_absolute() else Path(os.environ.get(CALLER_CWD_ENV, ".")) / path


# --- inputs and outputs ---------------------------------------------------------------------


def read_inputs(
    image_path: Path, mask_path: Path, map_paths: dict[str, Path] | None = None
) -> Inputs:
    """Read and check the photo, mask and maps; raises OptionError naming the input."""
    image_bytes, image_format = read_image_file("image", image_path)
    mask_bytes = mask_png("mask", mask_path)
    image_name = f"relight-{digest(image_bytes)}{IMAGE_FORMATS[image_format]}"
    maps = {}
    for key, path in (map_paths or {}).items():
        data, kind = read_image_file(key.replace("_", "-"), path)
        maps[key] = (data, f"relight-{key}-{digest(data)}{IMAGE_FORMATS[kind]}")
    mask_name = f"relight-mask-{digest(mask_bytes)}.png"
    return Inputs(image_bytes, image_name, mask_bytes, mask_name, maps)


def read_image_file(option: str, path: Path) -> tuple[bytes, str]:
    data = read_file(option, path)
    with open_image(option, path, data) as image:
        image_format = image.format
    if image_format not in IMAGE_FORMATS:
        raise OptionError(option, f"{path}: {image_format} is not supported (JPEG, PNG or WebP)")
    return data, image_format


def read_file(option: str, path: Path) -> bytes:
    if not path.exists():
        raise OptionError(option, f"no such file: {path}")
    try:
        return path.read_bytes()
    except OSError as error:
        raise OptionError(option, f"cannot read {path}: {error.strerror}") from None


def open_image(option: str, path: Path, data: bytes) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except UnidentifiedImageError:
        raise OptionError(option, f"{path}: not an image file Pillow can read") from None
    except (OSError, ValueError) as error:
        raise OptionError(option, f"{path}: not a readable image ({error})") from None
    return image


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
    return hashlib.sha256(data).hexdigest()[:16]


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
        partial.write_bytes(data)
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


def render(url: str, prompt_options: dict, inputs: Inputs, on_progress: Callable) -> bytes:
    """Upload the inputs, run the workflow and return the output PNG's bytes."""
    image_name = comfy.upload_image_bytes(url, inputs.image_bytes, inputs.image_name, UPLOADS)
    mask_name = comfy.upload_image_bytes(url, inputs.mask_bytes, inputs.mask_name, UPLOADS)
    maps = {
        key: comfy.upload_image_bytes(url, data, name, UPLOADS)
        for key, (data, name) in inputs.maps.items()
    }
    prompt = build_prompt(prompt_options, image_name, mask_name, maps=maps)
    prompt_id = comfy.new_id()
    try:
        entry = comfy.run_prompt(url, prompt, on_progress, prompt_id=prompt_id)
    except KeyboardInterrupt:
        with contextlib.suppress(requests.RequestException):
            comfy.cancel_prompt(url, prompt_id)
        raise
    images = comfy.fetch_output_images(url, entry)
    if not images:
        raise comfy.PromptError("the workflow finished but saved no image")
    return images[0]


def sampler_steps(options: dict) -> int:
    """The workflow's steps under these options (the light, which may need maps, is moot)."""
    prompt = build_prompt(
        {key: value for key, value in options.items() if key != LIGHT_OPTION}, "p.png", "m.png"
    )
    return int(node_inputs(prompt, "RelightInpaintSampler")["steps"])


def step_progress(bar: tqdm) -> Callable[[int, int], None]:
    def update(value: int, total: int) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.n = value
        bar.refresh()

    return update


# --- commands -------------------------------------------------------------------------------


def command_run(args: argparse.Namespace) -> int:
    options = validate_options(options_from_args(args))
    maps = {key: user_path(getattr(args, key)) for key in MAP_KEYS if getattr(args, key)}
    build_prompt(options, "photo.png", "mask.png", maps={k: "map.png" for k in maps})
    inputs = read_inputs(user_path(args.image), user_path(args.mask), maps)
    out = check_out_path("out", user_path(args.out))
    return run_one(args.server, options, inputs, out)


def command_demo(args: argparse.Namespace) -> int:
    for path in (DEMO_PHOTO, DEMO_MASK):
        if not path.is_file():
            return fail(f"demo asset missing: {path}", EXIT_FAILED)
    out = check_out_path("out", user_path(args.out) if args.out else DEMO_OUT)
    return run_one(args.server, {}, read_inputs(DEMO_PHOTO, DEMO_MASK), out)


def run_one(server: str | None, options: dict, inputs: Inputs, out: Path) -> int:
    steps = sampler_steps(options)  # also raises option errors before a server is started
    with comfy_url(server) as url:
        with tqdm(total=steps, unit="step", file=sys.stderr, disable=None) as bar:
            png = render(url, options, inputs, step_progress(bar))
    write_atomically("out", out, png)
    print(out)
    return 0


def command_batch(args: argparse.Namespace) -> int:
    manifest = user_path(args.manifest)
    out_dir = user_path(args.out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OptionError("out-dir", f"not a folder: {out_dir}")
    check_output_folder("out-dir", out_dir)
    lines = read_file("manifest", manifest).decode("utf-8", errors="replace").splitlines()
    jobs, failures = prepare_batch(lines, manifest.parent, out_dir, args.allow_outside_out_dir)
    run_failures = run_batch(args.server, jobs) if jobs else 0
    failures += run_failures
    tqdm.write(f"batch: {len(jobs) - run_failures} written, {failures} failed", file=sys.stderr)
    return EXIT_FAILED if failures else 0


@dataclass
class BatchJob:
    item: BatchItem
    inputs: Inputs
    out: Path


def prepare_batch(
    lines: list[str], manifest_dir: Path, out_dir: Path, allow_outside: bool = False
) -> tuple[list[BatchJob], int]:
    """Parse and check every line; bad ones are reported and counted, the rest returned."""
    jobs: list[BatchJob] = []
    failures = 0
    taken: set[Path] = set()
    for line_number, line in enumerate(lines, start=1):
        try:
            item = parse_manifest_line(line, line_number, manifest_dir)
            if item is None:
                continue
            job = batch_job(item, out_dir, taken, allow_outside)
        except ManifestError as error:
            failures += report_failure(str(error))
            continue
        taken.add(job.out)
        jobs.append(job)
    return jobs, failures


def batch_job(
    item: BatchItem, out_dir: Path, taken: set[Path], allow_outside: bool = False
) -> BatchJob:
    try:
        out = check_out_path("out", batch_out_path(item, out_dir, taken, allow_outside))
        inputs = read_inputs(item.image, item.mask, item.maps)
        maps = {key: name for key, (_, name) in inputs.maps.items()}
        build_prompt(item.options, inputs.image_name, inputs.mask_name, maps=maps)
    except OptionError as error:
        raise ManifestError(item.line_number, str(error)) from None
    return BatchJob(item, inputs, out)


def batch_out_path(
    item: BatchItem, out_dir: Path, taken: set[Path], allow_outside: bool = False
) -> Path:
    """`out` under the output folder, or <image stem>.png (<stem>_<line>.png if taken). A
    manifest is data, often from someone else: its `out` stays inside --out-dir ("../x.png",
    absolute paths and links out are refused) unless the user opted in (allow_outside)."""
    if item.out is not None:
        out = out_dir / item.out
        if not allow_outside and not out.resolve().is_relative_to(out_dir.resolve()):
            raise OptionError(
                "out",
                f"{item.out} is outside --out-dir {out_dir}; keep outputs inside it, or pass "
                f"--{OUTSIDE_OK} to allow this",
            )
        return out
    default = out_dir / f"{item.image.stem}.png"
    return (
        default if default not in taken else out_dir / f"{item.image.stem}_{item.line_number}.png"
    )


def report_failure(message: str) -> int:
    tqdm.write(f"relight: {message}", file=sys.stderr)
    return 1


def run_batch(server: str | None, jobs: list[BatchJob]) -> int:
    failures = 0
    with (
        comfy_url(server) as url,
        tqdm(total=len(jobs), unit="image", file=sys.stderr, disable=None) as bar,
    ):
        for job in jobs:
            failures += run_batch_job(url, job, bar)
            bar.update(1)
    return failures


def run_batch_job(url: str, job: BatchJob, bar: tqdm) -> int:
    def on_progress(value: int, total: int) -> None:
        bar.set_postfix_str(f"line {job.item.line_number}: step {value}/{total}")

    try:
        png = render(url, job.item.options, job.inputs, on_progress)
        write_atomically("out", job.out, png)
    except requests.RequestException:
        raise  # the server is gone: no later item can succeed either
    except (comfy.PromptError, OptionError, OSError) as error:
        return report_failure(f"line {job.item.line_number}: {error}")
    return 0


def command_serve(args: argparse.Namespace) -> int:
    if comfy.port_in_use(args.port):
        raise OptionError("port", f"{args.port} is already in use on 127.0.0.1")
    tqdm.write("relight: starting ComfyUI ...", file=sys.stderr)
    with comfy.start_server(port=args.port, preview=True) as server:
        print(f"ComfyUI with Relight Inpaint: {server.url}  (log: {server.log_path})")
        print("Ctrl-C stops it.", flush=True)
        try:
            status = server.process.wait()
        except KeyboardInterrupt:
            return 0
    return fail(f"ComfyUI exited with status {status}:\n{server.log_tail()}", EXIT_FAILED)


def command_test(pytest_args: list[str]) -> int:
    pytest = comfy.VENV_PYTHON.parent / "pytest"
    if not pytest.is_file():
        return fail(f"{pytest} not found: run `bash host/setup.sh`", EXIT_FAILED)
    return subprocess.call([str(pytest), *pytest_args], cwd=REPO)


if __name__ == "__main__":
    sys.exit(main())
