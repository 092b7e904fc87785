"""The routes the command line's batches use: what made an output, and cleaning up after it."""

from __future__ import annotations

import hashlib
import re
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
            "inputs": ["a.png", "../top.png", "/etc/passwd", "missing.png"],
            "outputs": ["out_00001_.png"],
        }
    )

    assert removed == 2
    assert not (inputs / "relight_cli" / "a.png").exists()
    assert not (outputs / "relight_cli" / "out_00001_.png").exists()
    assert (inputs / "relight_cli" / "keep.png").exists() and (inputs / "top.png").exists()


@pytest.mark.parametrize(
    "body, expected",
    [
        (b"[]", "the body is a JSON list; expected a JSON object"),
        (b'"s"', "the body is a JSON str"),
        (b"123", "the body is a JSON int"),
        (b'{"inputs": "x.png"}', "inputs: expected a list of file names"),
        (b'{"outputs": [5]}', "outputs: expected a list of file names"),
        (b'{"other": []}', "unknown key 'other'"),
        (b"[" * 100_000 + b"]" * 100_000, "the body is not JSON"),
        (b"\xff\xfe", "the body is not JSON (UTF-8)"),
        (b"{", "the body is not JSON"),
    ],
)
def test_a_malformed_cleanup_body_is_refused_saying_what_was_expected(
    body: bytes, expected: str
) -> None:
    """Mutation caught: a body that is no object (or a list of non-names) read as 'nothing to
    remove' (200 {"removed": 0}), or a RecursionError (500)."""
    with pytest.raises(cli_routes.BadBody, match=re.escape(expected)):
        cli_routes.parse_cleanup_body(body)
    assert cli_routes.parse_cleanup_body(b"{}") == {"inputs": [], "outputs": []}


def test_cleanup_removes_nothing_through_a_linked_subfolder_or_a_linked_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mutation caught: the subfolder opened following links (issue 25: input/relight_cli ->
    /elsewhere removed /elsewhere/victim.png)."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "victim.png").write_bytes(b"v")
    (tmp_path / "input").mkdir()
    (tmp_path / "input" / "relight_cli").symlink_to(elsewhere)
    (tmp_path / "output" / "relight_cli").mkdir(parents=True)
    (tmp_path / "output" / "relight_cli" / "link.png").symlink_to(elsewhere / "victim.png")
    monkeypatch.setattr(folder_paths, "get_input_directory", lambda: str(tmp_path / "input"))
    monkeypatch.setattr(folder_paths, "get_output_directory", lambda: str(tmp_path / "output"))

    assert cli_routes.cleanup({"inputs": ["victim.png"], "outputs": ["link.png"]}) == 0
    assert (elsewhere / "victim.png").read_bytes() == b"v"


def test_a_dangling_model_file_has_no_hash_rather_than_a_500(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Mutation caught: stat() of a dangling link (FileNotFoundError: the info route's 500)."""
    (tmp_path / "gone.safetensors").symlink_to(tmp_path / "nowhere")
    monkeypatch.setattr(cli_routes, "model_file_names", lambda: ["gone.safetensors"])
    monkeypatch.setattr(cli_routes, "model_file_path", lambda name: str(tmp_path / name))
    assert cli_routes.cli_info(["gone.safetensors"])["models"] == {"gone.safetensors": None}
