"""Options → API workflow, validation, manifest lines, CLI checks, ComfyUI answers (no server)."""

from __future__ import annotations

import io
import json
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from relight_inpaint.host import batch, cli, comfy_server, rendering
from relight_inpaint.host.workflow import (
    OPTIONS,
    BatchItem,
    ManifestError,
    OptionError,
    apply_options,
    build_prompt,
    find_node,
    load_workflow,
    node_inputs,
    parse_light,
    parse_manifest_line,
    validate_options,
    workflow_defaults,
)

SAMPLE_VALUES = {
    "azimuth": 30.0,
    "elevation": -10.0,
    "intensity": 2.5,
    "ambient": 0.3,
    "color": "#ffcc88",
    "mode": "fill",
    "steps": 7,
    "cfg": 2.0,
    "sampler": "dpmpp_2m",
    "scheduler": "karras",
    "seed": 123,
    "denoise": 0.6,
    "grow": 2,
    "feather": 3,
    "model": "other.safetensors",
    "context": 1.5,
    "resolution": 768,
}


@pytest.fixture(scope="module")
def workflow() -> dict:
    return load_workflow()


# --- the workflow file and option mapping ---------------------------------------------------


def test_find_node_by_class_type(workflow: dict) -> None:
    node_id, node = find_node(workflow, "RelightInpaintSampler")
    assert workflow[node_id] is node
    with pytest.raises(KeyError, match="0 NoSuchNode nodes"):
        find_node(workflow, "NoSuchNode")


def test_defaults_are_the_workflow_values(workflow: dict) -> None:
    defaults = workflow_defaults(workflow)
    assert defaults["steps"] == node_inputs(workflow, "RelightInpaintSampler")["steps"]
    assert defaults["sampler"] == node_inputs(workflow, "RelightInpaintSampler")["sampler_name"]
    assert defaults["model"] == node_inputs(workflow, "LoadRelightUNet")["model_name"]
    assert set(defaults) == set(OPTIONS)


def test_no_options_leave_the_workflow_unchanged(workflow: dict) -> None:
    assert apply_options(workflow, {}) == workflow


@pytest.mark.parametrize("name", sorted(SAMPLE_VALUES))
def test_each_option_sets_its_node_input(workflow: dict, name: str) -> None:
    option = OPTIONS[name]
    filled = apply_options(workflow, {name: SAMPLE_VALUES[name]})
    assert node_inputs(filled, option.class_type)[option.input_name] == SAMPLE_VALUES[name]


def test_apply_options_does_not_touch_the_original(workflow: dict) -> None:
    before = json.dumps(workflow, sort_keys=True)
    apply_options(workflow, {"steps": 3, "light": "left"})
    assert json.dumps(workflow, sort_keys=True) == before


def test_angles_select_angle_mode(workflow: dict) -> None:
    light = node_inputs(workflow, "LightDirectionEncode")
    vector_workflow = apply_options(workflow, {"light": "1,0,0"})
    filled = apply_options(vector_workflow, {"azimuth": 90.0})
    assert node_inputs(filled, "LightDirectionEncode")["direction_from"] == "angles"
    assert node_inputs(filled, "LightDirectionEncode")["elevation"] == light["elevation"]


def test_light_vector_sets_vector_mode(workflow: dict) -> None:
    light = node_inputs(apply_options(workflow, {"light": "0.5, -1, 2"}), "LightDirectionEncode")
    assert (light["direction_from"], light["x"], light["y"], light["z"]) == ("vector", 0.5, -1, 2)


def test_light_preset_sets_direction_from(workflow: dict) -> None:
    light = node_inputs(apply_options(workflow, {"light": "Left"}), "LightDirectionEncode")
    assert light["direction_from"] == "left"


def test_build_prompt_sets_the_uploaded_files(workflow: dict) -> None:
    prompt = build_prompt({"steps": 2}, "photo.png", "mask.png", workflow)
    assert node_inputs(prompt, "LoadImage")["image"] == "photo.png"
    assert node_inputs(prompt, "LoadImageMask")["image"] == "mask.png"
    assert node_inputs(prompt, "RelightInpaintSampler")["steps"] == 2


def test_a_separate_mask_file_replaces_the_painted_mask(workflow: dict) -> None:
    """The shipped workflow takes the mask LoadImage carries (the MaskEditor's) through Select
    by Clicks; the command line's mask file is wired straight into Mask Conditioning."""
    conditioning = node_inputs(workflow, "MaskConditioning")
    assert workflow[conditioning["mask"][0]]["class_type"] == "SelectByClicks"
    prompt = build_prompt({}, "photo.png", "mask.png", workflow)
    mask_id, _ = find_node(prompt, "LoadImageMask")
    assert node_inputs(prompt, "MaskConditioning")["mask"] == [mask_id, 0]
    assert "LoadImageMask" not in {n["class_type"] for n in workflow.values()}  # not changed


def test_the_templates_clicks_are_not_carried_to_another_photo(workflow: dict) -> None:
    """Template 1 starts from clicks on the bundled cup; on a user's photo (another size)
    they would select the wrong place, or be refused: the command line clears them."""
    assert node_inputs(workflow, "SelectByClicks")["points"]  # the template's clicks
    prompt = build_prompt({}, "photo.png", "mask.png", workflow)
    assert node_inputs(prompt, "SelectByClicks")["points"] == ""
    assert node_inputs(workflow, "SelectByClicks")["points"]  # the loaded workflow unchanged


# --- validation -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "option", "words"),
    [
        ({"elevation": 90.5}, "elevation", "between -90 and 90"),
        ({"elevation": -91.0}, "elevation", "between -90 and 90"),
        ({"light": "0,0,0"}, "light", "all zero"),
        ({"light": [0, 0, 0]}, "light", "all zero"),
        ({"light": "1,0"}, "light", "X,Y,Z"),
        ({"light": "up"}, "light", "X,Y,Z"),
        ({"light": "1,0,0", "azimuth": 10.0}, "light", "not both"),
        ({"steps": 0}, "steps", "at least 1"),
        ({"denoise": 1.5}, "denoise", "between 0 and 1"),
        ({"denoise": -0.1}, "denoise", "between 0 and 1"),
        ({"seed": -1}, "seed", "between 0"),
        ({"feather": -2}, "feather", "at least 0"),
        ({"mode": "paint"}, "mode", "relight, fill"),
        ({"color": "white"}, "color", "hex colour"),
        ({"azimuth": math.nan}, "azimuth", "finite"),
    ],
)
def test_bad_values_name_the_option(options: dict, option: str, words: str) -> None:
    with pytest.raises(OptionError) as raised:
        validate_options(options)
    assert raised.value.option == option
    assert words in str(raised.value)
    assert str(raised.value).startswith(f"{option}: ")


def test_limits_themselves_are_accepted() -> None:
    options = {"elevation": -90.0, "denoise": 0.0, "steps": 1}
    assert validate_options(options) == options
    assert validate_options({"elevation": 90.0, "denoise": 1.0})["denoise"] == 1.0


def test_color_is_normalised() -> None:
    assert validate_options({"color": "FFAA00"})["color"] == "#ffaa00"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("1,2,3", (1.0, 2.0, 3.0)), ([0, 0, 1], (0.0, 0.0, 1.0)), (" TOP ", "top")],
)
def test_parse_light(value: object, expected: object) -> None:
    assert parse_light(value) == expected


def test_parse_light_rejects_text_components() -> None:
    with pytest.raises(OptionError, match="expected a number"):
        parse_light("a,b,c")


# --- manifest lines -------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["", "   ", "# a comment", "  # indented comment"])
def test_blank_and_comment_lines_are_skipped(line: str) -> None:
    assert parse_manifest_line(line, 1, Path("/data")) is None


def test_manifest_line_resolves_paths_and_converts_values() -> None:
    line = json.dumps(
        {
            "image": "photos/a.jpg",
            "mask": "/abs/mask.png",
            "steps": 3.0,
            "light": [1, 0, 0],
            "mode": "fill",
            "out": "a_left.png",
        }
    )
    item = parse_manifest_line(line, 5, Path("/data"))
    assert item == BatchItem(
        line_number=5,
        image=Path("/data/photos/a.jpg"),
        mask=Path("/abs/mask.png"),
        out=Path("a_left.png"),
        options={"steps": 3, "light": (1.0, 0.0, 0.0), "mode": "fill"},
    )
    assert isinstance(item.options["steps"], int)


@pytest.mark.parametrize(
    ("line", "words"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "expected a JSON object"),
        ('{"image": "a.png"}', "mask: required"),
        ('{"mask": "m.png"}', "image: required"),
        ('{"image": "a.png", "mask": "m.png", "stepz": 3}', "stepz: unknown key"),
        ('{"image": "a.png", "mask": "m.png", "steps": "many"}', "steps: expected a number"),
        ('{"image": "a.png", "mask": "m.png", "steps": true}', "steps: expected a number"),
        ('{"image": "a.png", "mask": "m.png", "steps": 2.5}', "steps: expected a whole number"),
        ('{"image": "a.png", "mask": "m.png", "sampler": 3}', "sampler: expected text"),
        ('{"image": "a.png", "mask": "m.png", "elevation": 100}', "elevation: must be between"),
        ('{"image": "a.png", "mask": "m.png", "light": [0, 0, 0]}', "light: the direction"),
        ('{"image": "a.png", "mask": "m.png", "out": 7}', "out: expected a file path"),
    ],
)
def test_bad_manifest_lines_say_line_and_reason(line: str, words: str) -> None:
    with pytest.raises(ManifestError) as raised:
        parse_manifest_line(line, 9, Path("/data"))
    assert raised.value.line_number == 9
    assert str(raised.value).startswith("line 9: ")
    assert words in str(raised.value)


# --- the CLI's own checks (no server) -------------------------------------------------------


@pytest.fixture
def no_server(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI must fail before it would start or reach a server."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the CLI tried to start a server")

    monkeypatch.setattr(cli.comfy, "start_server", refuse)
    monkeypatch.setattr(cli, "stop_on_signals", lambda: None)
    monkeypatch.delenv(cli.CALLER_CWD_ENV, raising=False)


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    path = tmp_path / "photo.jpg"
    Image.new("RGB", (16, 16), (90, 120, 150)).save(path)
    return path


@pytest.fixture
def mask(tmp_path: Path) -> Path:
    path = tmp_path / "mask.png"
    Image.new("L", (16, 16), 255).save(path)
    return path


def png_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def test_rgba_mask_transparent_pixels_become_white(tmp_path: Path) -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 3] = 255
    rgba[1, 2, 3] = 0
    rgba[3, 3, 3] = 100
    Image.fromarray(rgba, "RGBA").save(tmp_path / "mask.png")

    grey = png_pixels(rendering.mask_png("mask", tmp_path / "mask.png"))
    assert grey.ndim == 2
    assert grey[1, 2] == 255 and grey[3, 3] == 155 and grey[0, 0] == 0


def test_opaque_rgba_mask_uses_its_red_channel(tmp_path: Path) -> None:
    rgba = np.full((4, 4, 4), 255, dtype=np.uint8)
    rgba[0, 0, :3] = 0
    Image.fromarray(rgba, "RGBA").save(tmp_path / "mask.png")
    grey = png_pixels(rendering.mask_png("mask", tmp_path / "mask.png"))
    assert grey[0, 0] == 0 and grey[1, 1] == 255


def test_mask_exif_orientation_is_honoured_as_loadimage_turns_the_photo(tmp_path: Path) -> None:
    pixels = np.zeros((4, 6), dtype=np.uint8)
    pixels[0, 5] = 255  # top-right as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # stored turned: display it rotated 90 degrees clockwise
    Image.fromarray(pixels, "L").save(tmp_path / "mask.png", exif=exif)
    grey = png_pixels(rendering.mask_png("mask", tmp_path / "mask.png"))
    assert grey.shape == (6, 4)
    assert grey[5, 3] == 255  # where the viewer sees it


def test_shadow_follows_the_mode_and_the_maps_and_can_be_turned_off(workflow: dict) -> None:
    filled = build_prompt(
        {"mode": "fill", "light": "auto"}, "photo.png", "mask.png", maps={"depth_map": "d.png"}
    )
    shadow_id, shadow = find_node(filled, "ShadowMask")
    sampler = node_inputs(filled, "RelightInpaintSampler")
    estimate_id, _ = find_node(filled, "EstimateLight")
    assert sampler["cast_shadow"] == [shadow_id, 0]
    assert shadow["inputs"]["mode"] == "fill"
    assert shadow["inputs"]["depth_map"] == sampler["depth_map"]
    assert shadow["inputs"]["light"] == shadow["inputs"]["scene_light"] == [estimate_id, 0]
    off = apply_options(workflow, {"cast_shadow": "off"})
    assert "cast_shadow" not in node_inputs(off, "RelightInpaintSampler")
    classes = [node["class_type"] for node in off.values()]
    assert "ShadowMask" not in classes
    assert len(off) == len(workflow) - 2  # the node and its preview
    with pytest.raises(OptionError, match="^cast_shadow: must be on or off"):
        validate_options({"cast_shadow": "maybe"})


def test_greyscale_mask_is_kept(mask: Path) -> None:
    np.testing.assert_array_equal(
        png_pixels(rendering.mask_png("mask", mask)), np.asarray(Image.open(mask))
    )


def test_inputs_are_named_by_content(photo: Path, mask: Path) -> None:
    first, second = rendering.read_inputs(photo, mask), rendering.read_inputs(photo, mask)
    assert first.image_name == second.image_name
    assert first.image_name.endswith(".jpg") and first.mask_name.endswith(".png")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--image", "{missing}", "--mask", "{mask}"], "--image: no such file: "),
        (["--image", "{photo}", "--mask", "{missing}"], "--mask: no such file: "),
        (["--image", "{text}", "--mask", "{mask}"], "--image: "),
        (["--image", "{gif}", "--mask", "{mask}"], "GIF is not supported"),
        (["--image", "{photo}", "--mask", "{mask}", "--elevation", "95"], "--elevation: "),
        (["--image", "{photo}", "--mask", "{mask}", "--light", "0,0,0"], "--light: "),
        (["--image", "{photo}", "--mask", "{mask}", "--steps", "0"], "--steps: "),
        (["--image", "{photo}", "--mask", "{mask}", "--denoise", "3"], "--denoise: "),
    ],
)
def test_run_input_errors_exit_2_with_one_line(
    no_server: None,
    photo: Path,
    mask: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture,
    args: list[str],
    message: str,
) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    Image.new("RGB", (4, 4)).save(tmp_path / "anim.gif")
    paths = {
        "missing": tmp_path / "missing.png",
        "photo": photo,
        "mask": mask,
        "text": tmp_path / "notes.txt",
        "gif": tmp_path / "anim.gif",
    }
    filled = [arg.format(**paths) for arg in args]

    status = cli.main(["run", *filled, "--out", str(tmp_path / "out.png")])

    error = capsys.readouterr().err
    assert status == 2
    assert message in error
    assert len(error.strip().splitlines()) == 1 and "Traceback" not in error
    assert not (tmp_path / "out.png").exists()


def test_out_must_be_png(no_server: None, photo: Path, mask: Path, capsys) -> None:
    args = ["run", "--image", str(photo), "--mask", str(mask), "--out", "x.jpg"]
    assert cli.main(args) == 2
    assert "--out: must be a .png file" in capsys.readouterr().err


def test_relative_paths_follow_the_callers_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(cli.CALLER_CWD_ENV, str(tmp_path))
    assert cli.user_path("a/b.png") == tmp_path / "a" / "b.png"
    assert cli.user_path("/abs/b.png") == Path("/abs/b.png")


def test_batch_with_only_bad_lines_fails_without_a_server(
    no_server: None, photo: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    manifest = tmp_path / "m.jsonl"
    lines = [
        "# header",
        json.dumps({"image": photo.name, "mask": "missing.png"}),
        "{oops",
        json.dumps({"image": photo.name, "mask": photo.name, "steps": 0}),
    ]
    manifest.write_text("\n".join(lines) + "\n")

    status = cli.main(["batch", str(manifest), "--out-dir", str(tmp_path / "out")])

    error = capsys.readouterr().err
    assert status == 1
    assert "line 2: mask: no such file" in error
    assert "line 3: not valid JSON" in error
    assert "line 4: steps: must be at least 1" in error
    assert "0 written, 3 failed" in error


def test_batch_default_outputs_do_not_collide(tmp_path: Path) -> None:
    def line(out: str | None = None) -> str:
        entry = {"image": "/p/cat.jpg", "mask": "/p/m.png"}
        return json.dumps(entry if out is None else {**entry, "out": out})

    jobs, bad = batch.prepare_batch([line(), line(), line("sub/x.png")], tmp_path, tmp_path)
    assert not bad
    assert [job.out for job in jobs] == [
        tmp_path / "cat.png",
        tmp_path / "cat_2.png",
        tmp_path / "sub/x.png",
    ]


def test_write_atomically_creates_folders_and_leaves_no_partial_file(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "result.png"
    rendering.write_atomically("out", out, b"png bytes")
    assert out.read_bytes() == b"png bytes"
    assert [path.name for path in out.parent.iterdir()] == ["result.png"]


def test_test_command_runs_the_venv_pytest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(cli.subprocess, "call", lambda args, cwd: calls.append((args, cwd)) or 3)
    assert cli.main(["test", "-k", "light"]) == 3
    [(args, cwd)] = calls
    assert args[0].endswith("/bin/pytest") and args[1:] == ["-k", "light"]
    assert cwd == cli.REPO


def test_missing_manifest_is_named_without_dashes(no_server: None, tmp_path: Path, capsys) -> None:
    status = cli.main(["batch", str(tmp_path / "none.jsonl"), "--out-dir", str(tmp_path)])
    assert status == 2
    assert capsys.readouterr().err.startswith("relight: manifest: no such file: ")


# --- reading ComfyUI's answers (no server) --------------------------------------------------


def test_prompt_errors_name_node_input_and_reason() -> None:
    body = {
        "error": {"type": "prompt_outputs_failed_validation", "message": "failed"},
        "node_errors": {
            "4": {
                "class_type": "LightDirectionEncode",
                "errors": [
                    {
                        "message": "Value 120.0 bigger than max of 90.0",
                        "details": "elevation",
                        "extra_info": {"input_name": "elevation"},
                    }
                ],
            }
        },
    }
    assert comfy_server.describe_prompt_errors(body) == (
        "node 4 (LightDirectionEncode), input 'elevation': Value 120.0 bigger than max of 90.0"
    )


def test_prompt_error_without_node_errors_uses_the_message() -> None:
    body = {"error": {"message": "Cannot execute because node Nope does not exist."}}
    assert "node Nope does not exist" in comfy_server.describe_prompt_errors(body)


def history_entry(status_str: str, *messages: tuple[str, dict]) -> dict:
    return {"status": {"status_str": status_str, "messages": [list(m) for m in messages]}}


def test_history_execution_error_raises_the_node_message() -> None:
    error = {"node_id": "3", "node_type": "MaskConditioning", "exception_message": "mask is 8×8\n"}
    entry = history_entry("error", ("execution_start", {}), ("execution_error", error))
    with pytest.raises(comfy_server.PromptError) as raised:
        comfy_server.raise_for_history_status(entry)
    assert str(raised.value) == "node 3 (MaskConditioning): mask is 8×8"
    assert not isinstance(raised.value, comfy_server.PromptInterrupted)


def test_history_interrupted_raises_prompt_interrupted() -> None:
    entry = history_entry("error", ("execution_interrupted", {"node_id": "6"}))
    with pytest.raises(comfy_server.PromptInterrupted):
        comfy_server.raise_for_history_status(entry)


def test_history_success_passes() -> None:
    comfy_server.raise_for_history_status(history_entry("success", ("execution_success", {})))


def test_websocket_messages_report_progress_for_this_prompt_only() -> None:
    seen = []

    def handle(kind: str, **data: object) -> bool:
        text = json.dumps({"type": kind, "data": data})
        return comfy_server._handle_text(text, "p1", lambda v, m: seen.append((v, m)))

    assert not handle("progress", prompt_id="p1", value=3, max=20)
    assert not handle("progress", prompt_id="other", value=9, max=9)
    assert handle("executing", prompt_id="p1", node=None)
    assert not handle("executing", prompt_id="p1", node="6")
    assert handle("execution_interrupted", prompt_id="p1")
    assert seen == [(3, 20)]


def test_prune_logs_keeps_the_newest(tmp_path: Path) -> None:
    for index in range(5):
        log = tmp_path / f"comfyui-{index}.log"
        log.write_text("x")
        os.utime(log, (index, index))
    comfy_server.prune_logs(tmp_path, keep=2)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["comfyui-3.log", "comfyui-4.log"]


# --- geometry maps and the scene's light ------------------------------------------------------


def test_maps_are_loaded_into_the_sampler(workflow: dict) -> None:
    prompt = build_prompt({}, "p.png", "m.png", maps={"depth_map": "d.png"})
    sampler = node_inputs(prompt, "RelightInpaintSampler")
    loader = prompt[sampler["depth_map"][0]]
    assert loader["class_type"] == "LoadImage" and loader["inputs"]["image"] == "d.png"
    assert "normal_map" not in sampler
    assert sampler["light"] == workflow["6"]["inputs"]["light"]  # the requested light stays


def test_light_auto_fits_the_scene_outside_the_mask(workflow: dict) -> None:
    prompt = build_prompt({"light": "auto"}, "p.png", "m.png", maps={"normal_map": "n.png"})
    sampler = node_inputs(prompt, "RelightInpaintSampler")
    estimate = prompt[sampler["light"][0]]
    assert estimate["class_type"] == "EstimateLight"
    assert estimate["inputs"]["region"] == "outside_mask"
    assert estimate["inputs"]["normal_map"] == sampler["normal_map"]
    assert prompt[estimate["inputs"]["image"][0]]["inputs"]["image"] == "p.png"
    assert prompt[estimate["inputs"]["mask"][0]]["class_type"] == "MaskConditioning"


def test_light_auto_without_a_scene_map_is_refused_naming_light() -> None:
    with pytest.raises(OptionError, match="^light: auto fits the scene's light"):
        build_prompt({"light": "auto"}, "p.png", "m.png")


def test_manifest_maps_are_paths_relative_to_the_manifest(tmp_path: Path) -> None:
    line = json.dumps({"image": "a.png", "mask": "b.png", "light": "auto", "depth_map": "d.png"})
    item = parse_manifest_line(line, 3, tmp_path)
    assert item.maps == {"depth_map": tmp_path / "d.png"}
    assert item.options["light"] == "auto"
    with pytest.raises(ManifestError, match="^line 4: normal_map: expected a file path"):
        parse_manifest_line(json.dumps({"image": "a", "mask": "b", "normal_map": 3}), 4, tmp_path)


def test_the_progress_bar_knows_the_steps_of_an_auto_light_run():
    # `relight run --light auto --depth-map d.png` sized its progress bar from a prompt built
    # without the maps, which auto refuses
    assert cli.sampler_steps({"light": "auto", "steps": 3}) == 3


def test_serve_turns_on_the_live_preview_and_scripted_servers_do_not(tmp_path: Path) -> None:
    served = comfy_server.server_command(8188, tmp_path, cpu=True, preview=True)
    assert served[served.index("--preview-method") + 1] == "auto"
    assert "--preview-method" not in comfy_server.server_command(8188, tmp_path, cpu=True)


@pytest.mark.parametrize("out", ["../escaped.png", "sub/../../escaped.png", "/tmp/escaped.png"])
def test_a_manifest_out_outside_out_dir_is_refused_unless_allowed(
    no_server: None, photo: Path, mask: Path, tmp_path: Path, capsys, out: str
) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"image": str(photo), "mask": str(mask), "out": out}) + "\n")
    status = cli.main(["batch", str(manifest), "--out-dir", str(tmp_path / "outputs")])
    error = capsys.readouterr().err
    assert status == 1
    assert f"line 1: out: {out} is outside --out-dir" in error
    assert "--allow-outside-out-dir" in error
    assert not (tmp_path / "escaped.png").exists()

    lines = manifest.read_text().splitlines()
    [allowed], bad = batch.prepare_batch(lines, tmp_path, tmp_path / "outputs", allow_outside=True)
    assert not bad and allowed.out == Path(os.path.realpath(tmp_path / "outputs" / out))


def test_a_link_inside_out_dir_that_leads_out_of_it_is_refused(tmp_path: Path) -> None:
    out_dir = tmp_path / "outputs"
    out_dir.mkdir()
    (out_dir / "elsewhere").symlink_to(tmp_path)
    line = json.dumps({"image": "/p/cat.jpg", "mask": "/p/m.png", "out": "elsewhere/x.png"})
    jobs, bad = batch.prepare_batch([line], tmp_path, out_dir)
    assert jobs == [] and "is outside --out-dir" in bad[1]


@pytest.mark.parametrize("command", ["run", "batch"])
def test_an_output_folder_that_cannot_be_made_is_named_before_any_rendering(
    no_server: None, photo: Path, mask: Path, tmp_path: Path, capsys, command: str
) -> None:
    """The no_server fixture fails the test if a server is started: the check comes first."""
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    if command == "run":
        args = ["run", "--image", str(photo), "--mask", str(mask)]
        args += ["--out", str(blocker / "sub" / "x.png")]
        option = "--out"
    else:
        manifest = tmp_path / "m.jsonl"
        manifest.write_text(json.dumps({"image": str(photo), "mask": str(mask)}) + "\n")
        args = ["batch", str(manifest), "--out-dir", str(blocker / "sub")]
        option = "--out-dir"
    assert cli.main(args) == 2
    error = capsys.readouterr().err
    assert f"{option}: cannot make a folder under {blocker}: it is not a folder" in error


def test_a_write_that_fails_names_the_option_and_leaves_nothing(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    with pytest.raises(cli.OptionError, match=r"^out: cannot write .*x\.png"):
        rendering.write_atomically("out", blocker / "x.png", b"png")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file"]


def test_a_pack_check_repeated_for_each_input_is_reported_once() -> None:
    """ComfyUI files a validate_inputs message once per input the check was given."""
    message = "sampler_name: 'bogus' is not one of euler, heun"
    errors = [
        {
            "type": "custom_validation_failed",
            "message": "Custom validation failed for node",
            "details": f"{name} - {message}",
            "extra_info": {"input_name": name},
        }
        for name in ("mode", "cfg", "sampler_name")
    ]
    body = {"node_errors": {"6": {"errors": errors, "class_type": "RelightInpaintSampler"}}}
    assert comfy_server.describe_prompt_errors(body) == f"node 6 (RelightInpaintSampler): {message}"
