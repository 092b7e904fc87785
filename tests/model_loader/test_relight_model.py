"""The pack's model inside ComfyUI: model management, prediction types."""

import comfy.model_management
import pytest
import torch
from relight_testing.tiny_models import tiny_relight_model


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
