"""The sampling pipeline on a tiny random model of the pack's format, in-process."""

from __future__ import annotations

import comfy.model_management
import comfy.samplers
import comfy.utils
import latent_preview
import pytest
import torch
from comfy.cli_args import LatentPreviewMethod
from comfy_extras import nodes_custom_sampler as custom
from relight_testing.tiny_models import REGRESSOR_OPTIONS, tiny_relight_model

import nodes as comfy_nodes  # ComfyUI's own nodes.py: the stock KSampler path
from relight_inpaint.conditioning.exemplar_fill import exemplar_fill
from relight_inpaint.conditioning.mask import MaskedImage, prepare_masked_image
from relight_inpaint.lighting.light import direction_from_angles, light_map_channels, make_light
from relight_inpaint.sampling import spatial
from relight_inpaint.sampling.relight_sampling import finish, prepare, sample

STEPS = 3


@pytest.fixture(scope="module")
def tiny():
    return tiny_relight_model()


def photo(batch=1, height=24, width=40, seed=0):
    return torch.rand(batch, height, width, 3, generator=torch.Generator().manual_seed(seed))


def box_mask(height=24, width=40):
    mask = torch.zeros(1, height, width)
    mask[:, height // 4 : height // 2, width // 4 : width // 2] = 1.0
    return mask


def light(azimuth=0.0, elevation=30.0):
    return make_light(direction_from_angles(azimuth, elevation))


def run(
    model,
    vae,
    masked,
    lit,
    mode="relight",
    sampler="euler",
    scheduler="simple",
    denoise=1.0,
    steps=STEPS,
    cfg=1.0,
):
    prepared = prepare(model, vae, masked, lit, mode)
    samples = sample(model, prepared, 0, steps, cfg, sampler, scheduler, denoise)
    return finish(vae, samples, masked), samples, prepared


def test_outside_the_mask_is_bit_identical_and_inside_is_regenerated(tiny):
    model, vae = tiny
    image = photo(batch=2, height=37, width=53)  # not a multiple of the model's 4 px
    masked = prepare_masked_image(image, box_mask(37, 53), grow=2, feather=3)
    out, samples, _ = run(model, vae, masked, light())
    outside = masked.mask == 0
    assert out.shape == image.shape
    assert torch.equal(out[outside], image[outside])
    assert (out[~outside] - image[~outside]).abs().mean() > 0.01
    assert samples.shape == (2, 3, 36, 52)


def test_same_samples_as_the_stock_ksampler_given_the_packs_conditioning(tiny):
    model, vae = tiny
    masked = prepare_masked_image(photo(), box_mask(), 0, 0)
    _, samples, prepared = run(model, vae, masked, light(), cfg=2.0)
    latent = {"samples": prepared.latent_image, "noise_mask": prepared.noise_mask[:, None]}
    (stock,) = comfy_nodes.common_ksampler(
        model, 0, STEPS, 2.0, "euler", "simple", prepared.positive, prepared.negative, latent
    )
    assert torch.equal(samples, stock["samples"])


def test_the_packs_model_runs_under_sampler_custom_advanced(tiny):
    model, vae = tiny
    masked = prepare_masked_image(photo(), box_mask(), 0, 0)
    prepared = prepare(model, vae, masked, light(), "relight")
    latent = {"samples": prepared.latent_image, "noise_mask": prepared.noise_mask[:, None]}
    guider = custom.CFGGuider.execute(model, prepared.positive, prepared.negative, 1.5).result[0]
    sigmas = custom.BasicScheduler.execute(model, "simple", STEPS, 1.0).result[0]
    sampler = custom.KSamplerSelect.execute("euler").result[0]
    noise = custom.Noise_RandomNoise(0)
    out = custom.SamplerCustomAdvanced.execute(noise, guider, sampler, sigmas, latent).result[0]
    outside = prepared.noise_mask[:, None].expand_as(out["samples"]) == 0
    assert torch.isfinite(out["samples"]).all()
    assert torch.allclose(out["samples"][outside], prepared.latent_image[outside], atol=1e-5)


def test_each_image_of_a_batch_gets_its_own_light(tiny):
    model, vae = tiny
    lights = light(0.0).concat(light(180.0))
    masked = prepare_masked_image(photo(batch=2), box_mask(), 0, 0)
    prepared = prepare(model, vae, masked, lights, "relight")
    concat = prepared.positive[0][1]["noise_concat"]
    light_channels = concat[:, 4:13]
    for index in range(2):
        expected = light_map_channels(lights.select(index), 24, 40)[0]
        assert torch.allclose(light_channels[index], expected)
    assert not torch.allclose(light_channels[0], light_channels[1])


def test_light_guidance_compares_against_the_light_zeroed(tiny):
    model, vae = tiny
    masked = prepare_masked_image(photo(), box_mask(), 0, 0)
    prepared = prepare(model, vae, masked, light(), "relight")
    lit = prepared.positive[0][1]["noise_concat"]
    unlit = prepared.negative[0][1]["noise_concat"]
    assert unlit[:, 4:13].abs().max() == 0 and lit[:, 4:13].abs().max() > 0
    assert torch.equal(lit[:, :4], unlit[:, :4])


def test_fill_prefills_the_hole_from_the_images_patches_and_flags_the_mode(tiny):
    model, vae = tiny
    image = photo()
    masked = prepare_masked_image(image, box_mask(), 0, 0)
    relight = prepare(model, vae, masked, light(), "relight").positive[0][1]["noise_concat"]
    fill = prepare(model, vae, masked, light(), "fill").positive[0][1]["noise_concat"]
    pixels = image.movedim(-1, 1) * 2 - 1
    known = 1.0 - masked.mask[:, None]
    assert torch.allclose(relight[:, :3], pixels)
    assert torch.allclose(fill[:, :3], exemplar_fill(pixels, known), atol=1e-6)
    inside = masked.mask[:, None].expand(-1, 3, -1, -1) > 0.5
    assert not torch.allclose(fill[:, :3][inside], pixels[inside], atol=0.05)
    assert fill[:, -1].min() == 1 and relight[:, -1].max() == 0


def test_a_light_batch_that_does_not_match_the_images_names_light(tiny):
    model, vae = tiny
    masked = prepare_masked_image(photo(batch=2), box_mask(), 0, 0)
    three = light().concat(light(90.0)).concat(light(180.0))
    with pytest.raises(ValueError, match="^light: batch of 3 lights, expected 1 or 2"):
        prepare(model, vae, masked, three, "relight")


def test_a_mode_the_model_was_not_trained_for_names_mode():
    model, vae = tiny_relight_model(modes=("relight",))
    masked = prepare_masked_image(photo(), box_mask(), 0, 0)
    with pytest.raises(ValueError, match="^mode: 'fill' is not available.*relight"):
        prepare(model, vae, masked, light(), "fill")


def test_an_image_too_small_for_the_model_says_what_it_needs(tiny):
    model, vae = tiny
    masked = prepare_masked_image(photo(height=3, width=40), box_mask(3, 40), 0, 0)
    with pytest.raises(ValueError, match="^mask_cond: the image is 40x3 px.*at least 4 px"):
        prepare(model, vae, masked, light(), "relight")


def test_a_stock_model_is_refused_with_a_pointer_to_the_loader(tiny):
    model, vae = tiny
    plain = model.clone()
    plain.model_options.pop("relight_inpaint")
    masked = prepare_masked_image(photo(), box_mask(), 0, 0)
    with pytest.raises(ValueError, match="^model: .*LoadRelightUNet"):
        prepare(plain, vae, masked, light(), "relight")


def test_lower_denoise_keeps_more_of_the_original(tiny):
    model, vae = tiny
    image = photo()
    masked = prepare_masked_image(image, box_mask(), 0, 0)
    inside = masked.mask > 0
    changes = []
    for denoise in (0.2, 1.0):
        out, _, _ = run(model, vae, masked, light(), denoise=denoise)
        changes.append((out[inside] - image[inside]).abs().mean())
    assert changes[0] < changes[1]


@pytest.mark.parametrize("sampler_name", comfy.samplers.KSampler.SAMPLERS)
def test_every_comfyui_sampler_runs(tiny, sampler_name):
    model, vae = tiny
    image = photo(height=16, width=16)
    masked = prepare_masked_image(image, box_mask(16, 16), 0, 0)
    out, samples, _ = run(model, vae, masked, light(), sampler=sampler_name, steps=2)
    assert torch.isfinite(samples).all()
    assert torch.equal(out[masked.mask == 0], image[masked.mask == 0])


@pytest.mark.parametrize("scheduler", comfy.samplers.KSampler.SCHEDULERS)
def test_every_comfyui_scheduler_runs(tiny, scheduler):
    model, vae = tiny
    masked = prepare_masked_image(photo(height=16, width=16), box_mask(16, 16), 0, 0)
    _, samples, _ = run(model, vae, masked, light(), scheduler=scheduler, steps=2)
    assert torch.isfinite(samples).all()


@pytest.fixture
def progress_events():
    events = []
    comfy.utils.set_progress_bar_global_hook(
        lambda value, total, preview, node_id=None: events.append((value, total, preview))
    )
    yield events
    comfy.utils.set_progress_bar_global_hook(None)


def test_progress_advances_every_step_with_a_live_preview(tiny, progress_events, monkeypatch):
    monkeypatch.setattr(latent_preview.args, "preview_method", LatentPreviewMethod.Latent2RGB)
    model, vae = tiny
    masked = prepare_masked_image(photo(), box_mask(), 0, 0)
    run(model, vae, masked, light(), steps=4)
    assert [(v, t) for v, t, _ in progress_events] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    assert all(preview is not None for _, _, preview in progress_events)


def test_cancel_stops_an_in_process_run_at_the_next_step(tiny, progress_events):
    model, vae = tiny
    masked = prepare_masked_image(photo(), box_mask(), 0, 0)
    calls = []
    original_hook = comfy.utils.PROGRESS_BAR_HOOK

    def cancel_after_first(value, total, preview, node_id=None):
        original_hook(value, total, preview)
        calls.append(value)
        comfy.model_management.interrupt_current_processing(True)

    comfy.utils.set_progress_bar_global_hook(cancel_after_first)
    with pytest.raises(comfy.model_management.InterruptProcessingException):
        run(model, vae, masked, light(), steps=50)
    assert calls == [1]
    assert not comfy.model_management.processing_interrupted()  # flag consumed, next run is free


def test_a_light_outside_the_trained_range_runs_with_a_warning(caplog):
    model, vae = tiny_relight_model(light_range={"elevation": [5, 90], "ambient": [0.05, 0.4]})
    masked = prepare_masked_image(photo(), box_mask(), 0, 0)
    with caplog.at_level("WARNING"):
        run(model, vae, masked, make_light(direction_from_angles(0.0, -30.0), ambient=0.2))
    assert "elevation -30 is outside the range this model was trained on (5..90)" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        run(model, vae, masked, light(0.0, 30.0))
    assert "outside the range" not in caplog.text


def test_a_whole_image_latent_beyond_the_memory_limit_is_refused_pointing_at_crops(tiny):
    model, vae = tiny
    image = torch.zeros(1, 1, 1, 3).expand(1, 4200, 4200, 3)  # no memory behind it
    huge = MaskedImage(image=image, mask=torch.zeros(1, 1, 1).expand(1, 4200, 4200))
    with pytest.raises(
        ValueError, match=r"^mask_cond: .*17.6 MP\); the limit is 16.8 MP.*works masked regions"
    ):
        prepare(model, vae, huge, light(), "relight")


def test_fill_starts_from_the_prefilled_hole_so_partial_denoise_never_keeps_the_object(tiny):
    model, vae = tiny
    masked = prepare_masked_image(photo(), box_mask(), 0, 0)
    relight = prepare(model, vae, masked, light(), "relight")
    fill = prepare(model, vae, masked, light(), "fill")
    inside = masked.mask[:, None].expand(-1, 3, -1, -1) > 0.5
    assert torch.allclose(relight.latent_image, vae.encode(masked.image))
    assert torch.equal(fill.latent_image[~inside], relight.latent_image[~inside])
    prefilled = fill.positive[0][1]["noise_concat"][:, :3]  # -1..1, as the model sees it
    as_latent = vae.encode((prefilled.movedim(1, -1) + 1) / 2)
    assert torch.allclose(fill.latent_image, as_latent, atol=1e-5)
    assert not torch.allclose(fill.latent_image[inside], relight.latent_image[inside], atol=0.05)


def test_fill_computes_its_prefill_once_for_conditioning_and_start(tiny, monkeypatch):
    calls = []

    def counted(*args, **options):
        calls.append(1)
        return exemplar_fill(*args, **options)

    monkeypatch.setattr(spatial, "exemplar_fill", counted)
    model, vae = tiny
    prepare(model, vae, prepare_masked_image(photo(), box_mask(), 0, 0), light(), "fill")
    assert len(calls) == 1


def test_the_fill_moves_comfyuis_progress_bar_to_the_end_before_sampling(tiny):
    """The exemplar pre-fill takes seconds on a large hole: the node's bar moves while it
    works, and reaches its end."""
    seen = []

    def hook(value, total, preview, node_id=None):
        seen.append((value, total))

    model, vae = tiny
    comfy.utils.set_progress_bar_global_hook(hook)
    try:
        prepare(model, vae, prepare_masked_image(photo(), box_mask(), 0, 0), light(), "fill")
    finally:
        comfy.utils.set_progress_bar_global_hook(None)
    assert len(seen) >= 4 and seen[-1][0] == seen[-1][1]


def test_a_regressor_gives_one_answer_for_any_step_count_and_sampler():
    model, vae = tiny_relight_model(**REGRESSOR_OPTIONS)
    masked = prepare_masked_image(photo(), box_mask(), grow=2, feather=3)
    one_step, _, _ = run(model, vae, masked, light(), steps=1)
    many_steps, _, _ = run(model, vae, masked, light(), steps=5, sampler="dpmpp_2m")
    assert torch.allclose(one_step, many_steps, atol=2e-3)
    other_light, _, _ = run(model, vae, masked, light(azimuth=180.0), steps=1)
    assert (other_light - one_step).abs().max() > 1e-3  # the answer still follows the light


def test_denoise_moves_a_regressors_answer_that_far_from_the_start():
    model, vae = tiny_relight_model(**REGRESSOR_OPTIONS)
    masked = prepare_masked_image(photo(), box_mask(), grow=2, feather=3)
    _, full, prepared = run(model, vae, masked, light(), denoise=1.0)
    _, half, _ = run(model, vae, masked, light(), denoise=0.4)
    start = prepared.latent_image
    assert torch.allclose(half, start + 0.4 * (full - start), atol=2e-3)
    assert (full - start).abs().max() > 0.05  # the full answer did move
