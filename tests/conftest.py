"""Test set-up: a real ComfyUI on sys.path (CPU) and the repo imported as package `relight_inpaint`.

See host/bootstrap.py for why the repo root itself is never put on sys.path.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location(
    "relight_bootstrap", Path(__file__).resolve().parents[1] / "host" / "bootstrap.py"
)
bootstrap = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bootstrap)
bootstrap.use_comfyui(cpu=True)
bootstrap.import_pack()
sys.path.insert(0, str(Path(__file__).resolve().parent))  # for tests/relight_testing
