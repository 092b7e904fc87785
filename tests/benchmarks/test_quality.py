import json

import numpy as np

from relight_inpaint.benchmarks.quality import (
    colour_shift,
    default_steps,
    make_cases,
    prefill,
    reshaded,
    summarize,
    write_manifest,
)


def test_the_benchmark_runs_the_workflows_steps_unless_told(tmp_path):
    cases, lights = make_cases(20_000_000)
    lights = [lights[case.name] for case in cases]
    default = write_manifest(cases, lights, tmp_path, "m.safetensors")
    assert all("steps" not in json.loads(line) for line in default.read_text().splitlines())
    chosen = write_manifest(cases, lights, tmp_path, "m.safetensors", steps=20)
    assert all(json.loads(line)["steps"] == 20 for line in chosen.read_text().splitlines())


def test_the_packs_workflow_samples_its_model_in_one_step():
    # the README's benchmark figures and the model's tooltip are for this default
    assert default_steps() == 1


def test_the_prefill_baseline_fills_the_hole_and_keeps_the_rest():
    cases, _ = make_cases(20_000_001)
    fill = next(case for case in cases if case.name == "fill")
    filled = prefill(fill)
    outside = fill.mask < 0.5
    assert np.allclose(filled[outside], fill.input[outside], atol=1e-6)
    assert np.abs(filled[~outside] - fill.input[~outside]).mean() > 0.01


def test_an_exact_answer_counts_as_the_best_value_in_the_median():
    assert summarize([10.0, 20.0, float("inf")]).strip() == "20.00"
    assert summarize([10.0, float("nan"), 30.0]).strip() == "20.00"


def test_the_baseline_model_runs_every_case_beside_the_model(tmp_path):
    cases, lights = make_cases(20_000_000)
    lights = [lights[case.name] for case in cases]
    manifest = write_manifest(cases, lights, tmp_path, "m.safetensors", baseline="old.safetensors")
    lines = [json.loads(line) for line in manifest.read_text().splitlines()]
    previous = [line for line in lines if line["model"] == "old.safetensors"]
    assert len(previous) == len(cases)
    assert all(line["out"].endswith("_previous.png") for line in previous)


def test_colour_shift_sees_a_tint_but_not_a_change_of_brightness():
    rng = np.random.default_rng(0)
    image = rng.uniform(0.2, 0.8, (16, 16, 3)).astype(np.float32)
    mask = np.ones((16, 16), np.float32)
    assert colour_shift(image * 0.7, image, mask) < 1e-6
    warm = image * np.array([1.0, 0.8, 0.6], np.float32)
    assert colour_shift(warm, image, mask) > 0.02


def test_refiner_off_baseline_changes_only_the_masked_object():
    cases, lights = make_cases(20_000_003)
    case = next(c for c in cases if c.name == "relight")
    out = reshaded(case, lights["relight"])
    outside = case.mask < 0.5
    assert np.array_equal(out[outside], case.input[outside])
    assert np.abs(out[~outside] - case.input[~outside]).mean() > 0.005
