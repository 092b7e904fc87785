"""LoadRelightUNet and the IC-Light path through the sampler, on tiny models built here."""

from __future__ import annotations

import folder_paths
import pytest
import safetensors.torch
import torch
from relight_testing.iclight_fixtures import (
    build_tiny_sd15,
    build_tiny_sd_vae,
    fake_iclight_offsets,
)
from relight_testing.tiny_models import write_tiny_relight_file

from relight_inpaint.nodes.common import MODELS_FOLDER, model_file_names
from relight_inpaint.nodes.light_direction_encode import LightDirectionEncode
from relight_inpaint.nodes.load_relight_unet import LoadRelightUNet
from relight_inpaint.nodes.mask_conditioning import MaskConditioning
from relight_inpaint.nodes.relight_inpaint_sampler import RelightInpaintSampler

CONV_IN = "diffusion_model.input_blocks.0.0.weight"


@pytest.fixture
def models_dir(tmp_path):
    folder_paths.add_model_folder_path(MODELS_FOLDER, str(tmp_path))
    yield tmp_path
    folder_paths.folder_names_and_paths[MODELS_FOLDER][0].remove(str(tmp_path))


@pytest.fixture(scope="module")
def sd15():
    return build_tiny_sd15(seed=0), build_tiny_sd_vae(seed=0)


def write_iclight(models_dir, base, variant, layout="diffusers"):
    offsets = fake_iclight_offsets(base.model.model_config.unet_config, variant, layout)
    path = models_dir / f"iclight_{variant}_{layout}.safetensors"
    safetensors.torch.save_file(offsets, str(path))
    return path.name


def conditioning(base):
    dim = base.model.model_config.unet_config["context_dim"]
    return [[torch.zeros(1, 4, dim), {}]]


def sample(model, vae, mode="relight", positive=None, negative=None, background=None, size=64):
    image = torch.rand(1, size, size, 3, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros(1, size, size)
    mask[:, 16:40, 20:44] = 1
    masked, final, _ = MaskConditioning.execute(image, mask, 0, 4).result
    light, _ = LightDirectionEncode.execute(
        "left", 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.1, "#fff"
    ).result
    out, _, shading = RelightInpaintSampler.execute(
        model,
        vae,
        masked,
        light,
        mode,
        0,
        2,
        2.0,
        "euler",
        "normal",
        0.9,
        positive=positive,
        negative=negative,
        background=background,
    ).result
    assert shading.shape == image.shape  # the light image it started from, at the input's size
    return image, final, out


def test_the_packs_model_loads_as_a_managed_model_with_pixel_space_vae(models_dir):
    name = write_tiny_relight_file(models_dir / "tiny.safetensors").name
    assert name in model_file_names()
    model, vae = LoadRelightUNet.execute(name).result
    assert model.model_options["relight_inpaint"]["kind"] == "relight"
    assert vae.latent_channels == 3 and vae.downscale_ratio == 1
    assert model.model_size() > 0  # ComfyUI's model management can size and move it


def test_bundled_model_is_listed():
    assert "relight_tiny_untrained.safetensors" in model_file_names()


def test_a_file_that_is_neither_format_is_refused(models_dir):
    safetensors.torch.save_file({"some.weight": torch.zeros(3)}, str(models_dir / "x.safetensors"))
    with pytest.raises(ValueError, match="^model_name: .*neither IC-Light"):
        LoadRelightUNet.execute("x.safetensors")


def test_a_truncated_file_is_refused_clearly(models_dir):
    path = write_tiny_relight_file(models_dir / "cut.safetensors")
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="^model_name: .*(truncated|corrupt)"):
        LoadRelightUNet.execute("cut.safetensors")


def test_an_unknown_file_name_is_refused():
    with pytest.raises(ValueError, match="^model_name: 'nope.safetensors' is not in"):
        LoadRelightUNet.execute("nope.safetensors")


def test_iclight_without_its_base_model_names_model(models_dir, sd15):
    base, _ = sd15
    name = write_iclight(models_dir, base, "fc")
    with pytest.raises(ValueError, match="^model: IC-Light weights are offsets"):
        LoadRelightUNet.execute(name)


@pytest.mark.parametrize("layout", ["diffusers", "ldm"])
def test_iclight_fc_relights_inside_the_mask_only(models_dir, sd15, layout):
    base, vae = sd15
    name = write_iclight(models_dir, base, "fc", layout)
    model, vae_out = LoadRelightUNet.execute(name, model=base, vae=vae).result
    assert vae_out is vae
    assert model.model_options["relight_inpaint"]["variant"] == "fc"
    assert "relight_inpaint" not in base.model_options
    assert model.patches[CONV_IN][0][1][1][0].shape[1] == 8
    cond = conditioning(base)
    image, final, out = sample(model, vae, positive=cond, negative=cond)
    assert torch.equal(out[final == 0], image[final == 0])
    assert (out[final == 1] - image[final == 1]).abs().mean() > 0.01


def test_iclight_fbc_needs_a_background(models_dir, sd15):
    base, vae = sd15
    model, _ = LoadRelightUNet.execute(
        write_iclight(models_dir, base, "fbc"), model=base, vae=vae
    ).result
    cond = conditioning(base)
    with pytest.raises(ValueError, match="^background: IC-Light fbc"):
        sample(model, vae, positive=cond, negative=cond)
    image, final, out = sample(
        model, vae, positive=cond, negative=cond, background=torch.rand(1, 32, 32, 3)
    )
    assert torch.equal(out[final == 0], image[final == 0])


def test_iclight_needs_text_conditioning_and_supports_relight_only(models_dir, sd15):
    base, vae = sd15
    model, _ = LoadRelightUNet.execute(
        write_iclight(models_dir, base, "fc"), model=base, vae=vae
    ).result
    with pytest.raises(ValueError, match="^positive: IC-Light needs text conditioning"):
        sample(model, vae)
    cond = conditioning(base)
    with pytest.raises(
        ValueError, match="^mode: 'fill' is not available: IC-Light supports relight"
    ):
        sample(model, vae, mode="fill", positive=cond, negative=cond)


def test_iclight_small_image_is_worked_at_its_native_size_and_returned_at_its_own(models_dir, sd15):
    """A 48 px photo (below SD1.5's 64 px multiple) is upscaled to the crop's working size and
    comes back at 48 px, untouched outside the mask."""
    base, vae = sd15
    model, _ = LoadRelightUNet.execute(
        write_iclight(models_dir, base, "fc"), model=base, vae=vae
    ).result
    cond = conditioning(base)
    image, final, out = sample(model, vae, positive=cond, negative=cond, size=48)
    assert out.shape == image.shape
    assert torch.equal(out[final == 0], image[final == 0])
    assert not torch.equal(out[final == 1], image[final == 1])


def _iclight_start(models_dir, sd15, light_map: str):
    from relight_inpaint.sampling.relight_sampling import Geometry, prepare

    base, vae = sd15
    model, _ = LoadRelightUNet.execute(
        write_iclight(models_dir, base, "fc"), model=base, vae=vae
    ).result
    image = torch.rand(1, 64, 64, 3)
    mask = torch.zeros(1, 64, 64)
    mask[:, :, 32:] = 1  # right half: latent columns 4..7
    masked, _, _ = MaskConditioning.execute(image, mask, 0, 0).result
    light, _ = LightDirectionEncode.execute(
        "right", 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.1, "#fff"
    ).result
    cond = conditioning(base)
    geometry = Geometry(light_map=light_map)
    prepared = prepare(model, vae, masked, light, "relight", cond, cond, geometry=geometry)
    original = vae.encode(image)
    assert torch.allclose(prepared.latent_image[..., :3], original[..., :3])
    return prepared, light, mask, vae


def test_iclight_starts_from_the_official_ramp_inside_the_mask(models_dir, sd15):
    from relight_inpaint.lighting.shading import iclight_ramp

    prepared, light, _, vae = _iclight_start(models_dir, sd15, "iclight_gradient")
    lit = vae.encode(iclight_ramp(light, 64, 64))
    assert torch.allclose(prepared.latent_image[..., 5:], lit[..., 5:])


def test_iclight_starts_from_the_subjects_shading_inside_the_mask(models_dir, sd15):
    from relight_inpaint.lighting.normals import estimate_normals
    from relight_inpaint.lighting.shading import shading_map

    prepared, light, mask, vae = _iclight_start(models_dir, sd15, "shading")
    normals, _ = estimate_normals(mask)
    lit = vae.encode(shading_map(normals, light).clamp(0, 1))
    assert torch.allclose(prepared.latent_image[..., 5:], lit[..., 5:])
    assert torch.allclose(prepared.shading, shading_map(normals, light).clamp(0, 1))


def test_iclight_fbc_starts_from_the_photo_as_the_official_fbc(models_dir, sd15):
    """fbc's light comes from the background: no light image is blended into its start."""
    from relight_inpaint.sampling.relight_sampling import prepare

    base, vae = sd15
    model, _ = LoadRelightUNet.execute(
        write_iclight(models_dir, base, "fbc"), model=base, vae=vae
    ).result
    image = torch.rand(1, 64, 64, 3)
    mask = torch.zeros(1, 64, 64)
    mask[:, :, 32:] = 1
    masked, _, _ = MaskConditioning.execute(image, mask, 0, 0).result
    light, _ = LightDirectionEncode.execute(
        "right", 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.1, "#fff"
    ).result
    cond = conditioning(base)
    prepared = prepare(
        model, vae, masked, light, "relight", cond, cond, background=torch.rand(1, 64, 64, 3)
    )
    assert torch.allclose(prepared.latent_image, vae.encode(image))


def test_a_missing_or_broken_model_file_is_refused_when_the_prompt_is_queued(models_dir):
    """validate_inputs runs at queue time (ComfyUI's prompt validation): the error names the
    input, before anything else in the graph runs."""
    assert LoadRelightUNet.validate_inputs("relight_default.safetensors") is True
    missing = LoadRelightUNet.validate_inputs("no_such_model.safetensors")
    assert isinstance(missing, str) and missing.startswith("model_name:")
    (models_dir / "broken.safetensors").write_bytes(b"not a safetensors file")
    broken = LoadRelightUNet.validate_inputs("broken.safetensors")
    assert isinstance(broken, str) and broken.startswith("model_name:")
    assert LoadRelightUNet.validate_inputs(3).startswith("model_name: expected a model file")
