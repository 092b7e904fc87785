"""The trainer is reproducible, and an interrupted run resumes to the same weights."""

import pytest
import safetensors.torch
import torch

from relight_inpaint.model_loader.relight_format import read_config, read_provenance
from relight_inpaint.training.train import model_config, parse_args, train

TINY_RUN = [
    "--scenes",
    "6",
    "--val-scenes",
    "4",
    "--size",
    "64",
    "--frame",
    "96",
    "--steps",
    "4",
    "--batch",
    "2",
    "--eval-every",
    "2",
    "--threads",
    "1",
]


def run(tmp_path, name, *extra):
    out = tmp_path / f"{name}.safetensors"
    train(parse_args([*TINY_RUN, "--out", str(out), "--cache-dir", str(tmp_path / name), *extra]))
    return out


def weights(path):
    return safetensors.torch.load_file(str(path))


def test_a_rerun_gives_the_same_weights_and_the_file_carries_config_and_provenance(tmp_path):
    first, second = run(tmp_path, "a"), run(tmp_path, "b")
    assert all(torch.equal(weights(first)[k], weights(second)[k]) for k in weights(first))
    assert read_config(first) == model_config()
    provenance = read_provenance(first)
    assert provenance["steps"] == 4 and "relight_psnr" in provenance["validation"]


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, capsys):
    """A fresh deterministic run equals a resumed one, so the second run must also say it
    resumed from the checkpoint at step 2 (mutation caught: the checkpoint ignored)."""
    straight = run(tmp_path, "straight")
    interrupted = tmp_path / "resumed.safetensors"
    run(tmp_path, "resumed", "--stop-after", "2")
    assert not interrupted.exists()  # nothing written until training is done
    assert "stopped at step 2 of 4" in capsys.readouterr().err
    run(tmp_path, "resumed")
    assert "checkpoint_seed" in (said := capsys.readouterr().err) and "at step 2" in said
    assert all(
        torch.equal(weights(straight)[k], weights(interrupted)[k]) for k in weights(straight)
    )


def test_window_and_render_sizes_must_fit_the_network(capsys):
    for option, value in (("--crop", "100"), ("--size", "0")):
        with pytest.raises(SystemExit):
            parse_args([option, value])
        multiple = model_config().downscale
        expected = f"{option}: expected a positive multiple of {multiple}, got {value}"
        assert expected in capsys.readouterr().err
