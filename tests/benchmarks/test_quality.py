import json

import numpy as np

from relight_inpaint.benchmarks.quality import (
    default_steps,
    make_cases,
    prefill,
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
