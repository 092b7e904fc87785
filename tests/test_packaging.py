"""pyproject.toml carries what the ComfyUI registry (and so ComfyUI-Manager) asks for, and agrees
with requirements.txt."""

from __future__ import annotations

import re
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def requirement_names(lines: list[str]) -> set[str]:
    names = set()
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            names.add(re.split(r"[<>=!~\[ ]", line, maxsplit=1)[0].lower())
    return names


def test_registry_fields_are_there():
    project, comfy = PROJECT["project"], PROJECT["tool"]["comfy"]
    for key in ("name", "version", "description", "license", "dependencies"):
        assert project.get(key), key
    assert project["urls"]["Repository"].startswith("https://github.com/")
    assert comfy["PublisherId"] and comfy["DisplayName"]
    assert comfy["Icon"].startswith("https://") and comfy["Icon"].endswith("/assets/icon.png")
    assert (REPO / "assets" / "icon.png").is_file()
    assert set(comfy["includes"]) >= {"models", "workflows", "web"}


def test_dependencies_match_requirements_txt():
    listed = (REPO / "requirements.txt").read_text().splitlines()
    assert requirement_names(PROJECT["project"]["dependencies"]) == requirement_names(listed)
