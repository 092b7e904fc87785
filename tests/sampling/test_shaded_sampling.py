"""A shading model (shading_map in its config): it gets the re-shaded subject and the shading
map of the subject's normals; files trained on the gradient light map run as before."""

from __future__ import annotations

import pytest
import torch
from relight_testing.tiny_models import REGRESSOR_OPTIONS, tiny_relight_model

import nodes as comfy_nodes  # ComfyUI's own nodes.py: the stock KSampler path
from relight_inpaint.conditioning.mask import prepare_masked_image
from relight_inpaint.lighting.light import direction_from_angles, make_light
from relight_inpaint.lighting.normals import encode_normal_map, estimate_normals
from relight_inpaint.lighting.reshade import reshade
from relight_inpaint.model_loader.relight_format import CONCAT_CHANNELS
from relight_inpaint.nodes.relight_conditioning import RelightConditioning
from relight_inpaint.sampling.relight_sampling import Geometry, finish, prepare, sample

SHADED = tuple(CONCAT_CHANNELS)


@pytest.fixture(scope="module")
def shaded():
    return tiny_relight_model(concat=SHADED, **REGRESSOR_OPTIONS)


def scene(height=32, width=48):
    image = torch.rand(1, height, width, 3, generator=torch.Generator().manual_seed(2)) * 0.5
    mask = torch.zeros(1, height, width)
    mask[:, 8:24, 12:36] = 1.0
    return prepare_masked_image(image, mask, 0, 0)


def light(azimuth=30.0):
    return make_light(direction_from_angles(azimuth, 40.0))


def test_model_info_says_shaded(shaded):
    assert shaded[0].model_options["relight_inpaint"]["shaded"] is True
    old, _ = tiny_relight_model()
    assert old.model_options["relight_inpaint"]["shaded"] is False


def test_relight_conditioning_is_the_reshaded_subject_and_its_shading(shaded):
    model, vae = shaded
    masked = scene()
    prepared = prepare(model, vae, masked, light(), "relight")
    concat = prepared.positive[0][1]["noise_concat"]
    assert concat.shape[1] == sum(CONCAT_CHANNELS.values())
    expected = reshade(masked.image, masked.mask, light())
    assert torch.allclose(concat[:, :3], expected.image.movedim(-1, 1) * 2 - 1, atol=1e-6)
    assert torch.allclose(concat[:, -3:], expected.shading.movedim(-1, 1), atol=1e-6)
    unlit = prepared.negative[0][1]["noise_concat"]
    assert unlit[:, -3:].abs().max() == 0 and unlit[:, 4:13].abs().max() == 0
    assert torch.allclose(prepared.shading, expected.shading.clamp(0, 1))


def test_a_users_normal_map_replaces_the_estimate(shaded):
    model, vae = shaded
    masked = scene()
    normals, _ = estimate_normals(masked.mask)
    tilted = torch.nn.functional.normalize(normals + torch.tensor([0.8, 0.0, 0.0]), dim=-1)
    own = prepare(model, vae, masked, light(), "relight")
    given = prepare(
        model, vae, masked, light(), "relight", geometry=Geometry(encode_normal_map(tilted))
    )
    assert not torch.allclose(own.shading, given.shading)
    with pytest.raises(ValueError, match="^normal_map: inside the mask"):
        grey = torch.full_like(masked.image, 0.5)
        prepare(model, vae, masked, light(), "relight", geometry=Geometry(grey))


def test_shaded_model_samples_and_keeps_the_outside_exact(shaded):
    model, vae = shaded
    masked = scene()
    for mode in ("relight", "fill"):
        prepared = prepare(model, vae, masked, light(), mode)
        out = finish(vae, sample(model, prepared, 0, 1, 1.0, "euler", "simple", 1.0), masked)
        outside = masked.mask == 0
        assert torch.equal(out[outside], masked.image[outside])
        assert torch.isfinite(out).all()


def rg(image):
    return image[..., :2] / image.sum(-1, keepdim=True).clamp_min(1e-6)


def raw_network(model):
    """The same model with the colour lock bypassed: what the refiner alone answers."""
    import comfy.model_base

    raw = model.clone()
    inner = raw.model

    def apply_model(*args, **kwargs):
        return comfy.model_base.BaseModel.apply_model(inner, *args, **kwargs)

    raw.set_model_unet_function_wrapper(
        lambda apply, options: apply_model(options["input"], options["timestep"], **options["c"])
    )
    return raw


def test_shaded_relight_keeps_the_reshaded_subjects_colours(shaded):
    """Whatever colours the refiner (here random weights) gives, the relight has the re-shaded
    subject's chromaticity, through ComfyUI's stock KSampler as through the pack's sampler."""
    model, vae = shaded
    masked = scene()
    conditioned = RelightConditioning.execute(model, vae, masked, light(), "relight").result
    positive, negative, latent = conditioned
    expected = reshade(masked.image, masked.mask, light()).image
    for path in (model, raw_network(model)):
        (stock,) = comfy_nodes.common_ksampler(
            path, 0, 1, 1.0, "euler", "simple", positive, negative, latent
        )
        out = finish(vae, stock["samples"], masked)
        inside = (masked.mask > 0.5) & (out.amax(-1) < 1.0) & (expected.amax(-1) > 0.05)
        assert inside.sum() > 50
        shift = (rg(out) - rg(expected))[inside].abs().max()
        if path is model:
            assert shift < 1e-3
            ours = sample(
                model,
                prepare(model, vae, masked, light(), "relight"),
                0,
                1,
                1.0,
                "euler",
                "simple",
                1.0,
            )
            assert torch.equal(ours, stock["samples"])
        else:
            assert shift > 0.05  # the lock is what keeps them


def test_fill_and_gradient_era_files_keep_their_own_colours(shaded):
    model, vae = shaded
    masked = scene()
    for mode, (path, own_vae) in (("fill", shaded), ("relight", tiny_relight_model())):
        prepared = prepare(path, own_vae, masked, light(), mode)
        locked = sample(path, prepared, 0, 1, 1.0, "euler", "simple", 1.0)
        free = sample(raw_network(path), prepared, 0, 1, 1.0, "euler", "simple", 1.0)
        assert torch.equal(locked, free)


def test_gradient_model_gets_the_same_conditioning_as_before(shaded):
    """Older files (trained on the gradient light map) see exactly the channels they did."""
    from relight_inpaint.sampling.spatial import model_image, relight_concat

    model, vae = tiny_relight_model()
    masked = scene()
    prepared = prepare(model, vae, masked, light(), "relight")
    concat = prepared.positive[0][1]["noise_concat"]
    expected = relight_concat(
        masked.image, masked.mask, light(), "relight", ["masked_image", "mask", "light_map", "mode"]
    )
    assert torch.equal(concat, expected)
    assert torch.equal(concat[:, :3], model_image(masked.image, masked.mask, "relight"))


def test_the_refiner_switch_gives_the_reshading_as_it_is_or_refined(shaded):
    """refiner off (auto for relight): the answer inside the mask is the re-shaded subject and
    the network is not called; on: the network's refinement; fill always samples."""
    from relight_inpaint.sampling.crops import ONE_STEP, relight_crops

    model, vae = shaded
    masked = scene()
    calls = []
    model.model.diffusion_model.register_forward_hook(lambda *_: calls.append(1))
    off = relight_crops(model, vae, masked, light(), "relight", ONE_STEP, 0.5, refiner="off")
    assert calls == []
    auto = relight_crops(model, vae, masked, light(), "relight", ONE_STEP, 0.5)
    assert torch.equal(auto.image, off.image) and calls == []
    on = relight_crops(model, vae, masked, light(), "relight", ONE_STEP, 0.5, refiner="on")
    assert calls and not torch.allclose(on.image, off.image, atol=1e-3)
    calls.clear()
    relight_crops(model, vae, masked, light(), "fill", ONE_STEP, 0.5)
    assert calls
    # the crop is worked at the model's scale, then stitched: not exact, least of all at the
    # subject's rim, where the shading turns fastest: compared 3 px inside it
    hard = (masked.mask[0] > 0.5).float()[None, None]
    inside = -torch.nn.functional.max_pool2d(-hard, 7, 1, 3)[0, 0] > 0.5
    expected = reshade(masked.image, masked.mask, light()).image

    def away(result):
        return float((result.image[0][inside] - expected[0][inside]).abs().mean())

    assert away(off) < 0.02 and away(off) < away(on) / 3
    with pytest.raises(ValueError, match="^refiner: expected one of"):
        relight_crops(model, vae, masked, light(), "relight", ONE_STEP, 0.5, refiner="maybe")
