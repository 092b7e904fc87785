import json

from relight_inpaint.benchmarks.quality import default_steps, make_cases, write_manifest


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
