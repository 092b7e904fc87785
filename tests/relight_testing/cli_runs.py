"""Running the `relight` command line from the tests, as a person would (a subprocess)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from relight_inpaint.host.comfy_server import REPO, VENV_PYTHON


def cli_command(*args: str) -> list[str]:
    return [str(VENV_PYTHON), "-m", "host.cli", *args]


def cli_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "RELIGHT_CALLER_CWD"}


def run_cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        cli_command(*args), cwd=REPO, env=cli_env(), capture_output=True, text=True, timeout=timeout
    )


def start_cli(*args: str) -> subprocess.Popen:
    """The command line in the background (stderr piped), to interrupt or watch."""
    return subprocess.Popen(
        cli_command(*args),
        cwd=REPO,
        env=cli_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli_files(base_dir: Path) -> set[Path]:
    """What the command line left in a server's input and output relight_cli folders."""
    return {*base_dir.glob("input/relight_cli/*"), *base_dir.glob("output/relight_cli/*")}
