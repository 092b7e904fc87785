"""Start and stop the real ComfyUI host, and talk to it over HTTP and its websocket.

Nothing here imports ComfyUI or torch: the server is a subprocess and everything else is HTTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import requests

from .bootstrap import BASE_DIR, COMFY, REPO, VENV

VENV_PYTHON = VENV / "bin" / "python"
COMFY_DIR = COMFY
DEFAULT_BASE_DIR = BASE_DIR
FORCE_CPU_ENV = "RELIGHT_FORCE_CPU"
START_TIMEOUT_S = 120.0
HTTP_TIMEOUT_S = 60.0
HISTORY_POLL_S = 1.0
KEPT_LOGS = 20
EXIT_WITH_PARENT = Path(__file__).with_name("exit_with_parent.py")
PACK_LINK = "relight_inpaint"

ProgressCallback = Callable[[int, int], None]


class ServerError(RuntimeError):
    """The ComfyUI process could not be started or died."""


class PromptError(RuntimeError):
    """ComfyUI rejected a prompt or a node failed while running it."""


class PromptInterrupted(PromptError):
    """The prompt was interrupted (POST /interrupt) before it finished."""


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    base_dir: Path
    log_path: Path
    url: str = field(init=False)

    def __post_init__(self) -> None:
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 15.0) -> None:
        if not self.is_running():
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def peak_rss_bytes(self) -> int:
        """Peak resident memory of the server process (VmHWM), in bytes."""
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
        raise ServerError("VmHWM not found in /proc status")

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)


def log_tail(log_path: Path, lines: int = 40) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def prune_logs(log_dir: Path, keep: int = KEPT_LOGS) -> None:
    """Delete all but the newest server logs (temporary servers each get a port of their own)."""
    logs = sorted(log_dir.glob("comfyui-*.log"), key=lambda path: path.stat().st_mtime)
    for old_log in logs[:-keep] if keep else logs:
        old_log.unlink(missing_ok=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def needs_cpu_flag(python: Path = VENV_PYTHON) -> bool:
    """True when torch in the host's venv sees no CUDA device; RELIGHT_FORCE_CPU=1/0 overrides."""
    forced = os.environ.get(FORCE_CPU_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    probe = "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"
    result = subprocess.run([str(python), "-c", probe], check=False, capture_output=True)
    return result.returncode != 0


def server_command(port: int, base_dir: Path, cpu: bool, preview: bool = False) -> list[str]:
    """ComfyUI's command line; `preview` turns on its live sampler preview (for a person
    watching the page; scripted runs need none)."""
    command = [
        str(VENV_PYTHON),
        "main.py",
        "--listen",
        "127.0.0.1",
        "--port",
        str(port),
        "--base-directory",
        str(base_dir),
        "--database-url",
        f"sqlite:///{base_dir / 'user' / 'comfyui.db'}",
    ]
    if _supports_flag("--disable-auto-launch"):
        command.append("--disable-auto-launch")
    if cpu:
        command.append("--cpu")
    if preview and _supports_flag("--preview-method"):
        command += ["--preview-method", "auto"]
    return command


def _supports_flag(flag: str) -> bool:
    cli_args = COMFY_DIR / "comfy" / "cli_args.py"
    return cli_args.is_file() and f'"{flag}"' in cli_args.read_text()


def start_server(
    port: int | None = None,
    base_dir: Path | str = DEFAULT_BASE_DIR,
    log_path: Path | str | None = None,
    cpu: bool | None = None,
    timeout: float = START_TIMEOUT_S,
    preview: bool = False,
    exit_with_parent: bool = False,
    threads: int | None = None,
) -> Server:
    """Start ComfyUI with the pack and wait until it answers; `cpu=None` asks torch.
    `exit_with_parent`: the server also stops when this process dies, however it dies (see
    exit_with_parent.py); `Server.process` is then the watching wrapper. `threads`: torch's
    CPU threads (servers sharing one machine's cores each need their share)."""
    if not (COMFY_DIR / "main.py").is_file():
        raise ServerError(f"ComfyUI not found at {COMFY_DIR}: run `bash host/setup.sh`")
    port = port or free_port()
    base_dir = Path(base_dir).resolve()
    if log_path is None:
        log_path = base_dir / "logs" / f"comfyui-{port}.log"
        prune_logs(log_path.parent)
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    (base_dir / "user").mkdir(parents=True, exist_ok=True)
    use_cpu = needs_cpu_flag() if cpu is None else cpu
    command = server_command(port, base_dir, use_cpu, preview)
    if exit_with_parent:
        command = [str(VENV_PYTHON), str(EXIT_WITH_PARENT), str(os.getpid()), "--", *command]
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=COMFY_DIR,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **thread_env(threads)},
        )
    server = Server(process=process, port=port, base_dir=base_dir, log_path=log_path)
    try:
        _wait_until_ready(server, timeout)
    except BaseException:
        server.stop()
        raise
    return server


def thread_env(threads: int | None) -> dict[str, str]:
    if threads is None:
        return {}
    return {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}


def make_base_dir(base_dir: Path) -> Path:
    """A ComfyUI base directory whose custom_nodes/ links this pack (the rest starts empty: the
    pack's own models come with it), for a server beside the developer host's .host/."""
    for folder in ("custom_nodes", "models/relight", "input", "output", "temp", "user"):
        (base_dir / folder).mkdir(parents=True, exist_ok=True)
    link = base_dir / "custom_nodes" / PACK_LINK
    if not link.is_symlink():
        link.symlink_to(REPO, target_is_directory=True)
    return base_dir


def _wait_until_ready(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not server.is_running():
            raise ServerError(
                f"ComfyUI exited with status {server.process.returncode} while starting; "
                f"log {server.log_path}:\n{server.log_tail()}"
            )
        if answers(server.url):
            return
        time.sleep(0.25)
    raise ServerError(
        f"ComfyUI did not answer within {timeout:.0f} s; log {server.log_path}:\n"
        f"{server.log_tail()}"
    )


def answers(url: str) -> bool:
    try:
        return _session().get(f"{url}/system_stats", timeout=2).ok
    except requests.RequestException:
        return False


def _session() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # a proxy from the environment must never see loopback traffic
    return session


# --- client ---------------------------------------------------------------------------------


def object_info(url: str) -> dict:
    response = _session().get(f"{url}/object_info", timeout=HTTP_TIMEOUT_S)
    response.raise_for_status()
    return response.json()


def upload_image(url: str, path: Path | str, name: str | None = None, subfolder: str = "") -> str:
    """Upload a file to ComfyUI's input folder; returns the name to give LoadImage."""
    path = Path(path)
    return upload_image_bytes(url, path.read_bytes(), name or path.name, subfolder)


def upload_image_bytes(url: str, data: bytes, name: str, subfolder: str = "") -> str:
    """Upload into the host's input folder (or a subfolder of it: LoadImage's list shows only
    the top level, so scripted inputs there do not pile up in a person's list)."""
    response = _session().post(
        f"{url}/upload/image",
        files={"image": (name, data, "application/octet-stream")},
        data={"type": "input", "overwrite": "true", "subfolder": subfolder},
        timeout=HTTP_TIMEOUT_S,
    )
    response.raise_for_status()
    stored = response.json()
    subfolder = stored.get("subfolder") or ""
    return f"{subfolder}/{stored['name']}" if subfolder else stored["name"]


def new_id() -> str:
    """A prompt or client id in the canonical hyphenated UUID form: newer ComfyUI (0.33)
    refuses a prompt_id in any other form, e.g. uuid4().hex."""
    return str(uuid.uuid4())


def queue_prompt(
    url: str, prompt: dict, client_id: str | None = None, prompt_id: str | None = None
) -> str:
    """Queue an API-format workflow; raises PromptError naming node, input and reason."""
    payload = {"prompt": prompt, "client_id": client_id or new_id()}
    if prompt_id:
        payload["prompt_id"] = prompt_id
    response = _session().post(f"{url}/prompt", json=payload, timeout=HTTP_TIMEOUT_S)
    try:
        body = response.json()
    except ValueError:
        response.raise_for_status()
        raise PromptError(f"unexpected answer from {url}/prompt: {response.text[:200]}") from None
    if response.status_code >= 400 or body.get("error") or body.get("node_errors"):
        if body.get("prompt_id"):
            _delete_from_queue(url, body["prompt_id"])
        raise PromptError(describe_prompt_errors(body, prompt))
    return body["prompt_id"]


def _delete_from_queue(url: str, prompt_id: str) -> None:
    _session().post(f"{url}/queue", json={"delete": [prompt_id]}, timeout=HTTP_TIMEOUT_S)


def describe_prompt_errors(body: dict, prompt: dict | None = None) -> str:
    """A readable message from /prompt's `error` and `node_errors`."""
    lines = []
    for node_id, node_error in (body.get("node_errors") or {}).items():
        class_type = node_error.get("class_type") or (prompt or {}).get(node_id, {}).get(
            "class_type", "?"
        )
        for error in node_error.get("errors", []):
            own = _own_message(error)
            line = f"{_input_part(error)}: {_reason(error)}" if own is None else f": {own}"
            lines.append(f"node {node_id} ({class_type}){line}")
    lines = list(dict.fromkeys(lines))
    if not lines:
        error = body.get("error") or {}
        if isinstance(error, str):
            return error
        return _reason(error) or "ComfyUI rejected the prompt"
    return "\n".join(lines)


def _own_message(error: dict) -> str | None:
    """A pack node's validate_inputs message ("input: reason"), without the prefix ComfyUI
    adds once per input the check was given (the same message for each)."""
    if error.get("type") != "custom_validation_failed":
        return None
    details = str(error.get("details", ""))
    input_name = (error.get("extra_info") or {}).get("input_name")
    prefix = f"{input_name} - "
    if not input_name or not details.startswith(prefix):
        return None
    message = details[len(prefix) :]
    return message if re.match(r"^\w+: ", message) else None


def _input_part(error: dict) -> str:
    input_name = (error.get("extra_info") or {}).get("input_name")
    return f", input '{input_name}'" if input_name else ""


def _reason(error: dict) -> str:
    message = error.get("message", "")
    details = error.get("details", "")
    input_name = (error.get("extra_info") or {}).get("input_name")
    if not details or details in message or details == input_name:
        return message
    return f"{message} ({details})" if message else details


def interrupt(url: str, prompt_id: str | None = None) -> None:
    """Interrupt the running prompt (only `prompt_id` when given)."""
    payload = {"prompt_id": prompt_id} if prompt_id else {}
    response = _session().post(f"{url}/interrupt", json=payload, timeout=HTTP_TIMEOUT_S)
    response.raise_for_status()


def cancel_prompt(url: str, prompt_id: str) -> None:
    """Drop the prompt from the queue if it waits there, interrupt it if it runs."""
    _delete_from_queue(url, prompt_id)
    interrupt(url, prompt_id)


def get_history(url: str, prompt_id: str) -> dict | None:
    response = _session().get(f"{url}/history/{prompt_id}", timeout=HTTP_TIMEOUT_S)
    response.raise_for_status()
    return response.json().get(prompt_id)


def wait_for_prompt(
    url: str,
    prompt_id: str,
    client_id: str,
    on_progress: ProgressCallback | None = None,
    timeout: float = 3600.0,
) -> dict:
    """Wait for a queued prompt; returns its history entry.

    Progress comes from the websocket; completion and errors are read from /history, which is
    also polled, so a lost or refused websocket only costs the progress reports.
    Raises PromptError (a node's exception message) or PromptInterrupted.
    """
    return _watch_until_done(url, prompt_id, client_id, on_progress, timeout)


def run_prompt(
    url: str,
    prompt: dict,
    on_progress: ProgressCallback | None = None,
    timeout: float = 3600.0,
    prompt_id: str | None = None,
) -> dict:
    """Queue a prompt and wait for it; returns its history entry.

    The websocket is opened before the prompt is queued, so even the first steps of a short
    prompt are reported. Choosing `prompt_id` lets a caller interrupt it from another thread.
    """
    client_id = new_id()
    prompt_id = prompt_id or new_id()

    def submit() -> None:
        queue_prompt(url, prompt, client_id, prompt_id)

    return _watch_until_done(url, prompt_id, client_id, on_progress, timeout, submit)


def _watch_until_done(
    url: str,
    prompt_id: str,
    client_id: str,
    on_progress: ProgressCallback | None,
    timeout: float,
    submit: Callable[[], None] | None = None,
) -> dict:
    try:
        entry = asyncio.run(_watch(url, prompt_id, client_id, on_progress, timeout, submit))
    except aiohttp.ClientError as error:
        raise ServerError(f"lost the connection to ComfyUI at {url}: {error}") from None
    raise_for_history_status(entry)
    return entry


async def _watch(
    url: str,
    prompt_id: str,
    client_id: str,
    on_progress: ProgressCallback | None,
    timeout: float,
    submit: Callable[[], None] | None = None,
) -> dict:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        websocket = await _connect_websocket(session, url, client_id)
        try:
            if submit is not None:
                submit()
            while time.monotonic() < deadline:
                entry = await _history_entry(session, url, prompt_id)
                if entry is not None:
                    return entry
                await _read_messages(websocket, prompt_id, on_progress, HISTORY_POLL_S)
        finally:
            if websocket is not None:
                await websocket.close()
    raise PromptError(f"prompt {prompt_id} did not finish within {timeout:.0f} s")


async def _connect_websocket(
    session: aiohttp.ClientSession, url: str, client_id: str
) -> aiohttp.ClientWebSocketResponse | None:
    ws_url = url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
    try:
        return await session.ws_connect(
            f"{ws_url}/ws?clientId={client_id}", max_msg_size=0, heartbeat=30
        )
    except (TimeoutError, aiohttp.ClientError):
        return None


async def _history_entry(session: aiohttp.ClientSession, url: str, prompt_id: str) -> dict | None:
    async with session.get(f"{url}/history/{prompt_id}") as response:
        response.raise_for_status()
        return (await response.json()).get(prompt_id)


async def _read_messages(
    websocket: aiohttp.ClientWebSocketResponse | None,
    prompt_id: str,
    on_progress: ProgressCallback | None,
    wait_s: float,
) -> None:
    """Handle websocket messages for up to `wait_s`; return early when the prompt may be done."""
    if websocket is None or websocket.closed:
        await asyncio.sleep(wait_s)
        return
    until = time.monotonic() + wait_s
    while (left := until - time.monotonic()) > 0:
        try:
            message = await websocket.receive(timeout=left)
        except TimeoutError:
            return
        if message.type in (aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR):
            await asyncio.sleep(max(0.0, until - time.monotonic()))
            return
        if message.type == aiohttp.WSMsgType.TEXT and _handle_text(
            message.data, prompt_id, on_progress
        ):
            return


def _handle_text(text: str, prompt_id: str, on_progress: ProgressCallback | None) -> bool:
    """Report progress; True when the message says the prompt has ended."""
    try:
        message = json.loads(text)
    except ValueError:
        return False
    kind, data = message.get("type"), message.get("data") or {}
    if data.get("prompt_id") != prompt_id:
        return False
    if kind == "progress" and on_progress is not None:
        on_progress(int(data.get("value", 0)), int(data.get("max", 0)))
    if kind == "executing" and data.get("node") is None:
        return True
    return kind in ("execution_error", "execution_interrupted", "execution_success")


def raise_for_history_status(entry: dict) -> None:
    status = entry.get("status") or {}
    if status.get("status_str", "success") == "success":
        return
    messages = {event: data for event, data in status.get("messages", [])}
    if "execution_interrupted" in messages:
        data = messages["execution_interrupted"]
        raise PromptInterrupted(
            f"interrupted at node {data.get('node_id')} ({data.get('node_type')})"
        )
    if "execution_error" in messages:
        data = messages["execution_error"]
        reason = str(data.get("exception_message", "")).strip() or data.get("exception_type")
        raise PromptError(f"node {data.get('node_id')} ({data.get('node_type')}): {reason}")
    raise PromptError(f"the prompt ended with status {status.get('status_str')!r}")


def fetch_output_images(url: str, history_entry: dict) -> list[bytes]:
    """The bytes of every image the prompt saved to ComfyUI's output folder."""
    session = _session()
    images = []
    for output in history_entry.get("outputs", {}).values():
        for image in output.get("images", []):
            if image.get("type", "output") != "output":
                continue
            params = {
                "filename": image["filename"],
                "subfolder": image.get("subfolder", ""),
                "type": "output",
            }
            response = session.get(f"{url}/view", params=params, timeout=HTTP_TIMEOUT_S)
            response.raise_for_status()
            images.append(response.content)
    return images


def remove_cli_files(url: str, inputs: list[str], outputs: list[str]) -> None:
    """Ask the pack (its /relight/cli/cleanup route) to remove these files from the server's
    input and output relight_cli subfolders; best effort: a server that is gone has nothing
    left to clean."""
    if not inputs and not outputs:
        return
    with contextlib.suppress(requests.RequestException):
        _session().post(
            f"{url}/relight/cli/cleanup",
            json={"inputs": inputs, "outputs": outputs},
            timeout=10,
        )


def cli_info(url: str, model_names: list[str]) -> dict:
    """The pack's version and the named models' SHA-256 on this server (/relight/cli/info)."""
    response = _session().get(
        f"{url}/relight/cli/info", params={"model": model_names}, timeout=HTTP_TIMEOUT_S
    )
    if response.status_code == 404:
        raise ServerError(f"{url} has no /relight/cli/info: is its Relight Inpaint pack older?")
    response.raise_for_status()
    return response.json()
