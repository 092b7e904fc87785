"""`relight`: run the Relight Inpaint workflow on photos through a real ComfyUI.

The CLI never imports ComfyUI or torch: it starts (or reaches) a ComfyUI server and talks to it
over HTTP. Run it as `./relight ...` (or `python -m host.cli` from the repo root).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import requests
from tqdm import tqdm

from . import comfy_server as comfy
from .batch import (
    JOB_RECORD_NAME,
    OUTSIDE_OK,
    REPORT_NAME,
    BatchRun,
    OneServer,
    Servers,
    manifest_lines,
    prepare_batch,
    run_batch,
)
from .rendering import (
    Inputs,
    check_out_path,
    check_output_folder,
    check_server,
    comfy_url,
    normalise_url,
    read_inputs,
    render,
    write_atomically,
)
from .workflow import (
    LIGHT_OPTION,
    LIGHT_PRESETS,
    MAP_KEYS,
    MODES,
    PRIORITY_KEY,
    SHADOW_CHOICES,
    OptionError,
    build_prompt,
    load_workflow,
    node_inputs,
    validate_options,
    workflow_defaults,
)

REPO = Path(__file__).resolve().parents[1]
DEMO_PHOTO = REPO / "assets" / "relight_demo_photo.png"
DEMO_MASK = REPO / "assets" / "relight_demo_mask.png"
DEMO_OUT = REPO / "out" / "relight_demo.png"
CALLER_CWD_ENV = "RELIGHT_CALLER_CWD"
POSITIONAL_ARGUMENTS = {"manifest"}
CLUSTER_REQUIREMENTS = "requirements-cluster.txt"
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


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
    serve.add_argument(
        "--threads",
        type=int,
        help="torch CPU threads (default: all cores); give each of several CPU servers on one "
        "machine its share, or they slow each other down many times over",
    )
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
        "mask, azimuth, light as [x, y, z], steps, ...), optional out and optional "
        f"{PRIORITY_KEY} (higher runs first). image and mask are relative to the manifest's "
        "folder, out to --out-dir (default <image stem>.png). Each output records what made it; "
        f"a rerun skips the outputs already done ({JOB_RECORD_NAME}) and writes a report of "
        f"every item ({REPORT_NAME}).",
    )
    batch.add_argument("manifest", help="manifest file (.jsonl)")
    batch.add_argument("--out-dir", required=True, help="folder for the outputs")
    batch.add_argument(
        f"--{OUTSIDE_OK}",
        action="store_true",
        help="let a manifest's out name files outside --out-dir (refused by default)",
    )
    batch.add_argument(
        "--server",
        action="append",
        metavar="URL",
        help="a running ComfyUI with the pack; repeat it to spread the items over several "
        "(through Ray). Default: start one for this batch",
    )
    batch.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="Ray cluster to run on: auto (the one this machine is part of), HOST:PORT of its "
        "head, or local (a Ray runtime here, for this batch). Without --server, each machine "
        "of the cluster starts its own ComfyUI for the batch",
    )
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
        help="cast shadow (on): relight paints the subject's shadow for the light where a "
        "--depth-map gives it a surface to fall on (none without one); fill removes its old "
        "shadow",
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
    servers = batch_servers(args.server or [], args.cluster)
    lines = manifest_lines("manifest", manifest)
    jobs, bad_lines = prepare_batch(lines, manifest.parent, out_dir, args.allow_outside_out_dir)
    for reason in bad_lines.values():
        tqdm.write(f"relight: {reason}", file=sys.stderr)
    run = BatchRun(out_dir, jobs, bad_lines)
    try:
        run_batch(servers, jobs, run)
    except KeyboardInterrupt:
        counts = run.close(interrupted=True)
        tqdm.write(
            f"batch interrupted: {counts.get('done', 0)} written, "
            f"{counts.get('cancelled', 0)} not done (run the same command again to finish "
            f"them; {JOB_RECORD_NAME} says what is done)",
            file=sys.stderr,
        )
        raise
    except BaseException:
        run.close()
        raise
    counts = run.close()
    summary = f"{counts.get('done', 0)} written, {counts.get('failed', 0)} failed"
    for status in ("skipped", "not run"):
        summary += f", {counts[status]} {status}" if counts.get(status) else ""
    tqdm.write(f"batch: {summary} (report: {out_dir / REPORT_NAME})", file=sys.stderr)
    return EXIT_FAILED if counts.get("failed") or counts.get("not run") else 0


def batch_servers(urls: list[str], cluster: str | None) -> Servers:
    """One server (given or started here) without Ray; several, or a cluster, through Ray."""
    urls = [normalise_url(url) for url in urls]
    if len(set(urls)) < len(urls):
        raise OptionError("server", "the same URL is given twice")
    for url in urls:
        check_server(url)
    if len(urls) <= 1 and cluster is None:
        return OneServer(urls[0] if urls else None)
    try:
        from .cluster import RayServers
    except ImportError:
        option = "cluster" if cluster else "server"
        raise OptionError(
            option,
            f"several servers are driven through Ray, which is not installed: "
            f"{comfy.VENV_PYTHON} -m pip install -r {REPO / CLUSTER_REQUIREMENTS}",
        ) from None
    return RayServers(urls, cluster)


def command_serve(args: argparse.Namespace) -> int:
    if comfy.port_in_use(args.port):
        raise OptionError("port", f"{args.port} is already in use on 127.0.0.1")
    if args.threads is not None and args.threads < 1:
        raise OptionError("threads", f"must be at least 1 (got {args.threads})")
    tqdm.write("relight: starting ComfyUI ...", file=sys.stderr)
    with comfy.start_server(port=args.port, preview=True, threads=args.threads) as server:
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
