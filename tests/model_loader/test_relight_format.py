import json

import pytest
import safetensors.torch
import torch
from relight_testing.tiny_models import REGRESSOR_OPTIONS

from relight_inpaint.model_loader.errors import WeightFormatError
from relight_inpaint.model_loader.relight_format import (
    CONFIG_KEY,
    build_network,
    config_from_json,
    make_config,
    read_config,
    read_provenance,
    save_relight_model,
)


@pytest.fixture
def config():
    return make_config(base_channels=8, channel_mult=(1, 2), stem=2, time_dim=16)


def state_dict_for(config):
    torch.manual_seed(0)
    return build_network(config).state_dict()


def test_round_trip_keeps_config_provenance_and_weights(tmp_path, config):
    path = tmp_path / "m.safetensors"
    sd = state_dict_for(config)
    save_relight_model(path, sd, config, provenance={"data_seed": 7})
    assert read_config(path) == config
    assert read_provenance(path) == {"data_seed": 7}
    loaded = safetensors.torch.load_file(str(path))
    assert all(torch.equal(loaded[k], sd[k]) for k in sd)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_fp16_storage_halves_the_file(tmp_path, config):
    sd = state_dict_for(config)
    save_relight_model(tmp_path / "a.safetensors", sd, config)
    save_relight_model(tmp_path / "b.safetensors", sd, config, dtype=torch.float16)
    loaded = safetensors.torch.load_file(str(tmp_path / "b.safetensors"))
    assert all(t.dtype == torch.float16 for t in loaded.values())
    assert (tmp_path / "b.safetensors").stat().st_size < 0.6 * (
        tmp_path / "a.safetensors"
    ).stat().st_size


def test_downscale_and_channels_follow_the_config(config):
    assert config.downscale == 4  # stem 2 x one downsampling
    assert config.concat_channels == 3 + 1 + 9 + 1
    assert config.unet["in_channels"] == 3 + config.concat_channels


def test_plain_safetensors_is_not_the_pack_format(tmp_path):
    path = tmp_path / "plain.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(path))
    assert read_config(path) is None


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.pop("unet"), "lacks the 'unet' section"),
        (lambda c: c["unet"].pop("stem"), "unet lacks stem"),
        (lambda c: c["unet"].update(in_channels=5), "in_channels is 5"),
        (lambda c: c.update(architecture="gpt"), "unknown architecture"),
        (lambda c: c.update(prediction="x"), "prediction 'x'"),
        (lambda c: c.update(modes=["paint"]), "modes"),
        (lambda c: c.update(concat=["mask", "masked_image", "light_map", "mode"]), "out of order"),
        (lambda c: c.update(surprise=1), "unknown config keys"),
        (lambda c: c["unet"].update(channel_mult=[]), "channel_mult"),
    ],
)
def test_inconsistent_config_is_refused_with_the_reason(config, change, message):
    raw = json.loads(config.to_json())
    change(raw)
    with pytest.raises(WeightFormatError, match=f"^model_name: .*{message}"):
        config_from_json(json.dumps(raw))


def test_config_that_is_not_json(tmp_path, config):
    path = tmp_path / "m.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, str(path), metadata={CONFIG_KEY: "{oops"})
    with pytest.raises(WeightFormatError, match="not JSON"):
        read_config(path)


def test_weights_that_do_not_match_the_config_are_refused(tmp_path, config):
    sd = state_dict_for(config)
    sd["conv_in.weight"] = torch.zeros(1, 1, 3, 3)
    del sd["conv_out.bias"]
    with pytest.raises(WeightFormatError, match="1 missing.*wrong shape"):
        save_relight_model(tmp_path / "m.safetensors", sd, config)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_corrupt_file_gives_a_clear_error(tmp_path, config, damage):
    path = tmp_path / "m.safetensors"
    save_relight_model(path, state_dict_for(config), config)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00garbage" * 50)
    with pytest.raises(WeightFormatError, match="^model_name: .*(corrupt|truncated)"):
        from relight_inpaint.model_loader.relight_format import load_tensors

        read_config(path)
        load_tensors(path)


def regressor_config(**overrides):
    options = {"base_channels": 8, "channel_mult": (1, 2), **REGRESSOR_OPTIONS}
    return make_config(**{**options, **overrides})


def test_a_regressor_config_round_trips_without_a_timestep_size(tmp_path):
    config = regressor_config()
    assert "time_dim" not in config.unet
    path = tmp_path / "r.safetensors"
    save_relight_model(path, state_dict_for(config), config)
    assert read_config(path) == config
    assert config.downscale == 2


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(prediction="flow"), "relight_regressor_v1 answers x0 only"),
        (lambda c: c["unet"].pop("num_blocks"), "unet lacks num_blocks"),
        (lambda c: c["unet"].update(stem=0), "unet.stem must be an integer in 1..16"),
    ],
)
def test_an_inconsistent_regressor_config_is_refused(change, message):
    raw = json.loads(regressor_config().to_json())
    change(raw)
    with pytest.raises(WeightFormatError, match=f"^model_name: .*{message}"):
        config_from_json(json.dumps(raw))


def test_the_denoiser_still_needs_its_timestep_size(config):
    raw = json.loads(config.to_json())
    raw["unet"].pop("time_dim")
    with pytest.raises(WeightFormatError, match="unet lacks time_dim"):
        config_from_json(json.dumps(raw))


def test_shipped_files_record_the_conditioning_they_were_trained_for():
    """The default refines a re-shaded subject (shading map); the previous default, trained on
    the gradient light map, is still read as such and runs as before."""
    from pathlib import Path

    from relight_inpaint.model_loader.relight_format import read_config

    models = Path(__file__).resolve().parents[2] / "models"
    default = read_config(models / "relight_default.safetensors")
    previous = read_config(models / "relight_gradient_v1.safetensors")
    assert default.shaded and "shading_map" in default.concat
    assert not previous.shaded
    assert previous.concat == ("masked_image", "mask", "light_map", "mode")


def write_with_config(path, raw_config: dict, tensors: dict | None = None):
    """A file whose metadata says `raw_config`, whatever its tensors (as a hostile file would)."""
    tensors = tensors or {"x": torch.zeros(1)}
    safetensors.torch.save_file(tensors, str(path), metadata={CONFIG_KEY: json.dumps(raw_config)})
    return path


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("num_blocks", 20000),
        ("base_channels", 1_000_000),
        ("stem", 4096),
        ("time_dim", 10**9),
        ("num_blocks", True),
        ("channel_mult", [1] * 50),
        ("channel_mult", [1, 1000]),
        ("channel_mult", "12"),
    ],
)
def test_an_architecture_out_of_bounds_is_refused_from_the_header(tmp_path, config, key, value):
    """Refused from the metadata alone: nothing is built or allocated (num_blocks 20000 took
    108 s and 7.5 GB before this check existed)."""
    raw = json.loads(config.to_json())
    raw["unet"][key] = value
    path = write_with_config(tmp_path / "m.safetensors", raw)
    with pytest.raises(WeightFormatError, match=f"^model_name: .*unet.{key} must "):
        read_config(path)


def test_a_config_within_bounds_but_too_large_is_refused_by_its_estimated_size(tmp_path, config):
    raw = json.loads(config.to_json())
    raw["unet"].update(base_channels=1024, num_blocks=16, channel_mult=[16] * 6)
    path = write_with_config(tmp_path / "m.safetensors", raw)
    with pytest.raises(WeightFormatError, match="parameters; the limit is"):
        read_config(path)


def test_tensors_that_do_not_fit_the_config_are_refused_from_the_header(tmp_path, config):
    raw = json.loads(config.to_json())
    path = write_with_config(tmp_path / "m.safetensors", raw, {"conv_in.weight": torch.zeros(2)})
    with pytest.raises(WeightFormatError, match="^model_name: weights do not match the config"):
        read_config(path)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("modes", 5),
        ("concat", [1, 2]),
        ("architecture", ["relight_unet_v1"]),
        ("prediction", {"x": 1}),
        ("sampling", {"shift": float("nan")}),
        ("light_range", {"intensity": ["a", "b"]}),
        ("light_range", {"intensity": [float("nan"), 1.0]}),
        ("unet", [1, 2]),
    ],
)
def test_a_config_of_the_wrong_types_gets_a_format_error_naming_the_key(config, key, value):
    raw = json.loads(config.to_json())
    raw[key] = value
    with pytest.raises(WeightFormatError, match=f"^model_name: .*{key}"):
        config_from_json(json.dumps(raw))
