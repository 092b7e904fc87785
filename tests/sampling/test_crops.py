"""The sampler's crop-and-stitch path on a tiny model of the pack's format, in-process."""

from __future__ import annotations

import pytest
import torch
from relight_testing.tiny_models import tiny_relight_model

from relight_inpaint.conditioning.mask import MaskedImage, prepare_masked_image
from relight_inpaint.lighting.light import direction_from_angles, make_light
from relight_inpaint.sampling import crops
from relight_inpaint.sampling.crops import ONE_STEP, plan_jobs, relight_crops
from relight_inpaint.sampling.relight_sampling import require_info

SETTINGS = ONE_STEP


@pytest.fixture(scope="module")
def tiny():
    return tiny_relight_model()


def light():
    return make_light(direction_from_angles(30.0, 40.0))


def photo(height, width, batch=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, height, width, 3, generator=g)


def two_regions(height, width):
    mask = torch.zeros(1, height, width)
    mask[:, 100:160, 120:200] = 1.0
    mask[:, height - 150 : height - 90, width - 220 : width - 130] = 1.0
    return mask


def test_disjoint_regions_are_separate_crops_and_outside_is_bit_identical(tiny):
    model, vae = tiny
    image = photo(900, 1200)
    masked = prepare_masked_image(image, two_regions(900, 1200), 0, 6)
    jobs, _ = plan_jobs(require_info(model), masked, 0.5, 0)
    assert len(jobs) == 2
    assert all(j.box.area < 0.1 * 900 * 1200 for j in jobs)
    out = relight_crops(model, vae, masked, light(), "relight", SETTINGS, 0.5).image
    outside = masked.mask == 0
    assert torch.equal(out[outside], image[outside])
    for region in (masked.mask[0] == 1.0,):
        assert not torch.equal(out[0][region], image[0][region])


def test_a_photo_above_the_old_16_mp_limit_works_with_a_small_mask(tiny):
    model, vae = tiny
    image = torch.full((1, 3600, 5000, 3), 0.5)
    mask = torch.zeros(1, 3600, 5000)
    mask[:, 2000:2100, 3000:3150] = 1.0
    masked = MaskedImage(image, mask)
    out = relight_crops(model, vae, masked, light(), "fill", SETTINGS, 0.5).image
    assert out.shape == image.shape
    assert torch.equal(out[:, :1990], image[:, :1990])


def test_each_image_of_a_batch_goes_through_its_own_crops(tiny):
    model, vae = tiny
    image = photo(300, 400, batch=2)
    mask = torch.zeros(2, 300, 400)
    mask[0, 20:80, 30:90] = 1.0
    mask[1, 200:260, 300:380] = 1.0
    masked = prepare_masked_image(image, mask, 0, 4)
    out = relight_crops(model, vae, masked, light(), "relight", SETTINGS, 0.5).image
    for i in range(2):
        alone = MaskedImage(masked.image[i : i + 1], masked.mask[i : i + 1])
        single = relight_crops(model, vae, alone, light(), "relight", SETTINGS, 0.5).image
        assert torch.allclose(out[i], single[0], atol=1e-5)
        assert torch.equal(out[i][masked.mask[i] == 0], image[i][masked.mask[i] == 0])


def test_an_image_too_large_even_for_crops_is_refused_before_anything_is_made(tiny):
    model, vae = tiny
    image = torch.zeros(1, 1, 1, 3).expand(1, 20000, 20000, 3)  # no memory behind it
    mask = torch.zeros(1, 1, 1).expand(1, 20000, 20000)
    with pytest.raises(ValueError, match=r"^mask_cond: the image is 20000x20000 px .* limit"):
        relight_crops(model, vae, MaskedImage(image, mask), light(), "relight", SETTINGS, 0.5)


def test_an_empty_mask_returns_the_photo_itself(tiny):
    model, vae = tiny
    masked = MaskedImage(photo(64, 64), torch.zeros(1, 64, 64))
    result = relight_crops(model, vae, masked, light(), "relight", SETTINGS, 0.5)
    assert result.image is masked.image
    assert any(w.startswith("mask: empty") for w in result.warnings)  # said on the node


def test_crops_of_one_size_are_sampled_as_one_batch(tiny, monkeypatch):
    model, vae = tiny
    image = photo(400, 1600)
    mask = torch.zeros(1, 400, 1600)
    for left in (100, 600, 1100):
        mask[:, 150:200, left : left + 50] = 1.0
    calls = []
    real = crops.sample
    monkeypatch.setattr(crops, "sample", lambda m, p, *a: calls.append(p) or real(m, p, *a))
    relight_crops(model, vae, MaskedImage(image, mask), light(), "relight", SETTINGS, 0.5)
    assert [p.latent_image.shape[0] for p in calls] == [3]


def shadow_scene():
    image = photo(200, 300)
    subject = torch.zeros(1, 200, 300)
    subject[:, 80:120, 100:140] = 1.0
    shadow = torch.zeros(1, 200, 300)
    shadow[:, 90:125, 140:190] = 0.7  # relight: takes 70 % of the light away
    return image, subject, shadow


def test_relight_paints_the_cast_shadow_and_leaves_the_rest(tiny):
    model, vae = tiny
    image, subject, shadow = shadow_scene()
    masked = MaskedImage(image, subject)
    lit = light()
    plain = relight_crops(model, vae, masked, lit, "relight", SETTINGS, 0.5).image
    shaded = relight_crops(model, vae, masked, lit, "relight", SETTINGS, 0.5, shadow=shadow).image
    falls = (shadow > 0) & (subject == 0)
    assert torch.equal(shaded[~falls], plain[~falls])
    ratio = (shaded[falls] / plain[falls].clamp_min(1e-6)).median()
    assert abs(float(ratio) - 0.3) < 1e-4


def test_fill_removes_the_shadow_with_the_object(tiny):
    model, vae = tiny
    image, subject, shadow = shadow_scene()
    masked = MaskedImage(image, subject)
    out = relight_crops(model, vae, masked, light(), "fill", SETTINGS, 0.5, shadow=shadow).image
    union = torch.maximum(subject, shadow)
    assert torch.equal(out[union == 0], image[union == 0])
    assert not torch.equal(out[shadow > 0], image[shadow > 0])


def test_a_shadow_of_another_size_is_refused_by_name(tiny):
    model, vae = tiny
    image, subject, _ = shadow_scene()
    with pytest.raises(ValueError, match=r"^shadow: expected a mask of the photo's size"):
        relight_crops(
            model,
            vae,
            MaskedImage(image, subject),
            light(),
            "relight",
            SETTINGS,
            0.5,
            shadow=torch.zeros(1, 20, 30),
        )
