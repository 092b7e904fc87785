"""The routes the command line's batches use: what made an output, and cleaning up after it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import folder_paths
import pytest

from relight_inpaint.nodes import cli_routes


def test_pack_version_is_the_pyproject_version(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "3.1.4"\n')
    assert cli_routes.pack_version(tmp_path) == "3.1.4"
    assert cli_routes.pack_version() == cli_routes.pack_version(cli_routes.PACK_ROOT) != "unknown"


def test_model_hash_is_the_files_sha256_and_follows_a_replaced_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = tmp_path / "mine.safetensors"
    model.write_bytes(b"first weights")
    monkeypatch.setattr(cli_routes, "model_file_names", lambda: ["mine.safetensors"])
    monkeypatch.setattr(cli_routes, "model_file_path", lambda name: str(tmp_path / name))
    assert (
        cli_routes.model_sha256("mine.safetensors") == hashlib.sha256(b"first weights").hexdigest()
    )
    model.write_bytes(b"other weights, same name")
    assert (
        cli_routes.model_sha256("mine.safetensors")
        == hashlib.sha256(b"other weights, same name").hexdigest()
    )


def test_only_names_the_loader_lists_are_hashed(tmp_path: Path) -> None:
    assert cli_routes.model_sha256("../../etc/passwd") is None
    assert cli_routes.model_sha256(str(tmp_path / "x.safetensors")) is None


def test_info_names_a_missing_model_with_no_hash() -> None:
    info = cli_routes.cli_info(["relight_default.safetensors", "no_such_model.safetensors"])
    assert info["pack_version"] == cli_routes.pack_version()
    assert len(info["models"]["relight_default.safetensors"]) == 64
    assert info["models"]["no_such_model.safetensors"] is None


def test_cleanup_removes_only_plain_names_in_the_cli_subfolders(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs, outputs = tmp_path / "input", tmp_path / "output"
    for folder in (inputs / "relight_cli", outputs / "relight_cli"):
        folder.mkdir(parents=True)
    (inputs / "relight_cli" / "a.png").write_bytes(b"a")
    (inputs / "relight_cli" / "keep.png").write_bytes(b"k")
    (inputs / "top.png").write_bytes(b"t")
    (outputs / "relight_cli" / "out_00001_.png").write_bytes(b"o")
    monkeypatch.setattr(folder_paths, "get_input_directory", lambda: str(inputs))
    monkeypatch.setattr(folder_paths, "get_output_directory", lambda: str(outputs))

    removed = cli_routes.cleanup(
        {
            "inputs": ["a.png", "../top.png", "/etc/passwd", 5, "missing.png"],
            "outputs": ["out_00001_.png"],
        }
    )

    assert removed == 2
    assert not (inputs / "relight_cli" / "a.png").exists()
    assert not (outputs / "relight_cli" / "out_00001_.png").exists()
    assert (inputs / "relight_cli" / "keep.png").exists() and (inputs / "top.png").exists()
    assert cli_routes.cleanup("not an object") == 0
    assert cli_routes.cleanup({"inputs": "a.png"}) == 0
