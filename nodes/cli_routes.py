"""HTTP routes the command line's batches use on a server: what made an output, and cleaning up.

`GET /relight/cli/info?model=NAME` answers the pack's version and the model files' SHA-256, so a
batch can record what made each output and skip it on a rerun (a model file replaced under the
same name is a different model). `POST /relight/cli/cleanup` removes an item's uploaded inputs
and saved outputs when the batch has them: ComfyUI itself has no way to delete an upload, and a
catalogue of 10,000 photos must not stay behind on every server. Only plain file names in the
`relight_cli` subfolders of the input and output folders can be removed, and nothing through a
link: the subfolder is opened without following one, each file is looked at (not followed) and
removed through that open folder. A body that is not `{"inputs": [names], "outputs": [names]}`
is a 400 that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import stat
from pathlib import Path

import folder_paths

from .common import json_body, model_file_names, model_file_path, running_server

CLI_SUBFOLDER = "relight_cli"  # host/cli.py uploads and saves there
PACK_ROOT = Path(__file__).resolve().parents[1]
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
BODY_KEYS = ("inputs", "outputs")
EXPECTED_BODY = 'a JSON object {"inputs": [file names], "outputs": [file names]}'
MAX_BODY_BYTES = 1 << 20
_hashes: dict[tuple[str, int, int], str] = {}


class BadBody(ValueError):
    """A cleanup body that is not what the route expects (the route answers 400)."""


def pack_version(root: Path = PACK_ROOT) -> str:
    """The version in the pack's pyproject.toml (read as text: tomllib needs Python 3.11)."""
    text = (root / "pyproject.toml").read_text()
    found = re.search(r'^version\s*=\s*"([^"]+)"', text, flags=re.MULTILINE)
    return found.group(1) if found else "unknown"


def model_sha256(name: str) -> str | None:
    """SHA-256 of the model file LoadRelightUNet would load under this name (None when it
    lists none such), remembered per path, size and modification time."""
    if name not in model_file_names():
        return None
    path = model_file_path(name)
    try:
        found = Path(path).stat()
    except (OSError, TypeError):  # a dangling link, or gone since it was listed
        return None
    key = (str(path), found.st_size, found.st_mtime_ns)
    if key not in _hashes:
        digest = hashlib.sha256()
        with open(path, "rb") as file:
            for block in iter(lambda: file.read(1 << 20), b""):
                digest.update(block)
        _hashes[key] = digest.hexdigest()
    return _hashes[key]


def cli_info(model_names: list[str]) -> dict:
    return {
        "pack_version": pack_version(),
        "models": {name: model_sha256(name) for name in model_names},
    }


def remove_cli_files(folder: Path, names: list[str]) -> int:
    """Remove the named regular files from `folder` (a relight_cli subfolder); returns how many
    went. A name that is not a plain file name, a link, or a `folder` that is a link is left."""
    try:
        descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:  # missing, or a link: nothing is removed through it
        return 0
    try:
        return sum(remove_regular_file(descriptor, name) for name in names)
    finally:
        os.close(descriptor)


def remove_regular_file(folder: int, name: str) -> bool:
    if not FILE_NAME.fullmatch(name):
        return False
    try:
        found = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except OSError:
        return False
    if not stat.S_ISREG(found.st_mode):
        return False
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=folder)
        return True
    return False


def parse_cleanup_body(raw: bytes) -> dict[str, list[str]]:
    """The body as UTF-8 JSON (RFC 8259; a charset in the header is not consulted), checked;
    raises BadBody saying what was expected."""
    try:
        body = json_body(raw, MAX_BODY_BYTES)
    except ValueError as error:
        raise BadBody(f"{error}; expected {EXPECTED_BODY}") from None
    if not isinstance(body, dict):
        raise BadBody(f"the body is a JSON {type(body).__name__}; expected {EXPECTED_BODY}")
    unknown = sorted(set(body) - set(BODY_KEYS))
    if unknown:
        raise BadBody(f"unknown key {unknown[0][:40]!r}; expected {EXPECTED_BODY}")
    for key in BODY_KEYS:
        names = body.get(key, [])
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise BadBody(f"{key}: expected a list of file names")
    return {key: body.get(key, []) for key in BODY_KEYS}


def cleanup(body: dict[str, list[str]]) -> int:
    input_folder = Path(folder_paths.get_input_directory()) / CLI_SUBFOLDER
    output_folder = Path(folder_paths.get_output_directory()) / CLI_SUBFOLDER
    return remove_cli_files(input_folder, body["inputs"]) + remove_cli_files(
        output_folder, body["outputs"]
    )


def register_cli_routes() -> bool:
    """Add the routes to the running server, where there is one (not in plain tests)."""
    running = running_server()
    if running is None:
        return False
    web, server = running

    @server.routes.get("/relight/cli/info")
    async def info_route(request: web.Request) -> web.Response:
        names = request.query.getall("model", [])
        # hashing a large model file must not hold up the server's event loop
        info = await asyncio.get_running_loop().run_in_executor(None, cli_info, names)
        return web.json_response(info)

    @server.routes.post("/relight/cli/cleanup")
    async def cleanup_route(request: web.Request) -> web.Response:
        try:
            body = parse_cleanup_body(await request.content.read(MAX_BODY_BYTES + 1))
        except BadBody as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response({"removed": cleanup(body)})

    return True
