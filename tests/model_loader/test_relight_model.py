"""The pack's model inside ComfyUI: model management, prediction types."""

import comfy.model_management
import pytest
import torch
from relight_testing.tiny_models import (
    REGRESSOR_OPTIONS,
    tiny_config,
    tiny_relight_model,
    tiny_state_dict,
)

from relight_inpaint.model_loader.errors import WeightFormatError
from relight_inpaint.model_loader.relight_format import build_network, save_relight_model
from relight_inpaint.model_loader.relight_model import load_relight_model
from relight_inpaint.model_loader.relight_net import RelightRegressor, RelightUNet


@pytest.mark.parametrize("prediction", ["eps", "v", "flow", "x0"])
def test_every_prediction_type_builds_and_denoises(prediction):
    model, _ = tiny_relight_model(prediction=prediction)
    x = torch.randn(1, 3, 8, 8)
    concat = torch.randn(1, 14, 8, 8)
    sigma = torch.tensor([0.5])
    denoised = model.model.apply_model(x, sigma, c_concat=concat)
    assert denoised.shape == x.shape and torch.isfinite(denoised).all()


def test_an_x0_model_hands_comfyui_exactly_its_x0_prediction():
    model, _ = tiny_relight_model(prediction="x0")
    x = torch.randn(2, 3, 8, 8)
    concat = torch.randn(2, 14, 8, 8)
    sigma = torch.tensor([0.7, 0.05])
    denoised = model.model.apply_model(x, sigma, c_concat=concat)
    network = model.model.diffusion_model
    direct = network.denoise(torch.cat([x, concat], dim=1), sigma * 1000)
    assert torch.allclose(denoised, direct, atol=1e-5)


def test_comfyui_model_management_loads_and_frees_it():
    model, _ = tiny_relight_model()
    comfy.model_management.load_models_gpu([model])
    assert any(loaded.model is model for loaded in comfy.model_management.current_loaded_models)
    comfy.model_management.unload_all_models()
    assert not any(loaded.model is model for loaded in comfy.model_management.current_loaded_models)


@pytest.mark.parametrize("residual", ["add", "affine"])
def test_a_residual_head_starts_from_the_conditioning_image(residual):
    network = build_network(tiny_config(prediction="x0", residual=residual))
    torch.nn.init.zeros_(network.conv_out.weight)
    torch.nn.init.zeros_(network.conv_out.bias)
    x = torch.randn(1, 17, 8, 8)
    assert torch.allclose(network.denoise(x, torch.tensor([500.0])), x[:, 3:6], atol=1e-6)


def test_the_affine_head_scales_the_conditioning_image_in_0_1_units():
    network = build_network(tiny_config(prediction="x0", residual="affine"))
    torch.nn.init.zeros_(network.conv_out.weight)
    with torch.no_grad():
        network.conv_out.bias.zero_()
        network.conv_out.bias[:12] = 1.0  # gain channels come first: gain = 1 + 1 = 2
    x = torch.randn(1, 17, 8, 8)
    expected = ((x[:, 3:6] + 1) / 2 * 2) * 2 - 1
    assert torch.allclose(network.denoise(x, torch.tensor([500.0])), expected, atol=1e-5)


def tiny_regressor(**overrides):
    return tiny_relight_model(**{**REGRESSOR_OPTIONS, **overrides})


def test_comfyui_builds_the_regressor_architecture_the_config_names():
    model, _ = tiny_regressor()
    assert isinstance(model.model.diffusion_model, RelightRegressor)
    assert isinstance(tiny_relight_model()[0].model.diffusion_model, RelightUNet)


def test_the_regressor_answers_the_same_x0_whatever_the_noisy_image_and_noise_level():
    model, _ = tiny_regressor()
    concat = torch.randn(1, 14, 8, 8)
    answers = [
        model.model.apply_model(
            torch.randn(1, 3, 8, 8) * scale, torch.tensor([sigma]), c_concat=concat
        )
        for scale, sigma in [(1.0, 1.0), (5.0, 0.5), (0.1, 0.02)]
    ]
    assert all(torch.allclose(answers[0], a, atol=1e-4) for a in answers[1:])
    other = model.model.apply_model(torch.randn(1, 3, 8, 8), torch.tensor([1.0]), c_concat=-concat)
    assert not torch.allclose(answers[0], other, atol=1e-3)  # but it does read the conditioning


@pytest.mark.parametrize("stem", [1, 2])
def test_the_regressor_starts_from_the_conditioning_image(stem):
    network = build_network(tiny_config(**{**REGRESSOR_OPTIONS, "stem": stem}))
    torch.nn.init.zeros_(network.conv_out.weight)
    torch.nn.init.zeros_(network.conv_out.bias)
    x = torch.randn(2, 17, 8, 8)
    assert torch.allclose(network.denoise(x, torch.tensor([1000.0, 3.0])), x[:, 3:6], atol=1e-6)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_file_with_non_finite_weights_is_refused_naming_the_model(tmp_path, bad):
    config = tiny_config()
    state_dict = tiny_state_dict(config)
    first = next(iter(state_dict))
    state_dict[first].view(-1)[0] = bad
    path = tmp_path / "nan.safetensors"
    save_relight_model(path, state_dict, config)
    with pytest.raises(WeightFormatError, match=f"^model_name: 1 weight tensors .*{first}"):
        load_relight_model(path)
