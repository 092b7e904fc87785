"""HTTP routes the command line's batches use on a server: what made an output, and cleaning up.

`GET /relight/cli/info?model=NAME` answers the pack's version and the model files' SHA-256, so a
batch can record what made each output and skip it on a rerun (a model file replaced under the
same name is a different model). `POST /relight/cli/cleanup` removes an item's uploaded inputs
and saved outputs when the batch has them: ComfyUI itself has no way to delete an upload, and a
catalogue of 10,000 photos must not stay behind on every server. Only plain file names in the
`relight_cli` subfolders of the input and output folders can be removed.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from pathlib import Path

import folder_paths

from .common import model_file_names, model_file_path

CLI_SUBFOLDER = "relight_cli"  # host/cli.py uploads and saves there
PACK_ROOT = Path(__file__).resolve().parents[1]
FILE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,200}")
_hashes: dict[tuple[str, int, int], str] = {}


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
    stat = Path(path).stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns)
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


def remove_cli_files(folder: Path, names: object) -> int:
    """Remove the named files from `folder` (a relight_cli subfolder); returns how many went.
    Anything but a plain file name there is ignored."""
    if not isinstance(names, list):
        return 0
    removed = 0
    for name in names:
        if not isinstance(name, str) or not FILE_NAME.fullmatch(name):
            continue
        path = folder / name
        if path.is_file() and not path.is_symlink():
            path.unlink()
            removed += 1
    return removed


def cleanup(body: object) -> int:
    body = body if isinstance(body, dict) else {}
    input_folder = Path(folder_paths.get_input_directory()) / CLI_SUBFOLDER
    output_folder = Path(folder_paths.get_output_directory()) / CLI_SUBFOLDER
    return remove_cli_files(input_folder, body.get("inputs")) + remove_cli_files(
        output_folder, body.get("outputs")
    )


def register_cli_routes() -> bool:
    """Add the routes to the running server, where there is one (not in plain tests)."""
    try:
        from aiohttp import web
        from server import PromptServer
    except ImportError:
        return False
    server = getattr(PromptServer, "instance", None)
    if server is None:
        return False

    @server.routes.get("/relight/cli/info")
    async def info_route(request: web.Request) -> web.Response:
        names = request.query.getall("model", [])
        # hashing a large model file must not hold up the server's event loop
        info = await asyncio.get_running_loop().run_in_executor(None, cli_info, names)
        return web.json_response(info)

    @server.routes.post("/relight/cli/cleanup")
    async def cleanup_route(request: web.Request) -> web.Response:
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"error": "expected a JSON object"}, status=400)
        return web.json_response({"removed": cleanup(body)})

    return True
