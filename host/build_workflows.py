"""Regenerate the UI workflows in workflows/ from their API twins in workflows/api/.

Run from the repo root: .venv/bin/python -m host.build_workflows
It starts the host once to read ComfyUI's live /object_info, so the widget order is ComfyUI's.
"""

from __future__ import annotations

import json
from pathlib import Path

from .comfy_server import object_info, start_server
from .ui_workflow import api_to_ui

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"


def build_all(info: dict) -> list[Path]:
    written = []
    for api_path in sorted((WORKFLOWS / "api").glob("*.json")):
        ui = api_to_ui(json.loads(api_path.read_text()), info)
        target = WORKFLOWS / api_path.name
        target.write_text(json.dumps(ui, indent=1) + "\n")
        written.append(target)
    return written


def main() -> None:
    with start_server() as server:
        info = object_info(server.url)
    for path in build_all(info):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
