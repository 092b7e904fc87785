"""Relight by re-shading: the photo times the ratio of the requested light's shading to the
subject's current shading, in linear light. Under a white light the ratio is grey, so the
subject keeps its colours and whites stay white; a tinted light tints them.

A relight does no harm first (what real portraits taught):
- exposure: the ratio is scaled so the subject keeps its mean brightness within
  EXPOSURE_RANGE (times the light's intensity, a relative change: 1 keeps it); moving the
  light changes which side is bright, and only a little how bright the subject is;
- fill: the shadow side keeps the photo's own fill light (the ambient share fitted to the
  subject), at least MIN_FILL: a room is never black on the far side;
- the region is not the subject: only the subject found in it (lighting/subject) changes, and
  the change fades out toward the region's edge, so no oval shows;
- the ratio is smoothed at SMOOTHING of the region's size: the shape is an estimate, and its
  facets must not print on the skin; the photo's own detail is kept as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..conditioning.filters import gaussian_blur, masked_average
from ..conditioning.prefill import push_pull_fill
from .exposure import exposure_gain, keep_hue_in_range, to_linear, to_srgb
from .light import Light
from .light_estimate import LightEstimate, estimate_light, light_trust, luminance
from .shading import cast_shadows, self_shadows, shading_map
from .subject import SubjectGeometry, estimated_geometry, given_geometry

SELF_SHADOW_NOTE = "shadows: the face mesh's own (nose, brows) under the new light"
UNREADABLE = (
    "no light could be read in the region (flat, dark or only background): it is taken as "
    "evenly lit, and the new light only shades it gently"
)
# How far the subject's brightness may follow the light's own change of it (new shading over
# old, the light's strength kept): a real face whose light moves from the front to 60 degrees
# keeps 0.8-1.2 of its brightness (Extended Yale B), while a sphere's falls to a third; held
# exactly at 1, a pasted object relit toward the scene's light kept the brightness of the light
# it was pasted from (rendered scenes: 1.4 dB and 12 degrees lost against this range). A little
# inside 0.8-1.25: the crop's seam matching and stitching move the measured exposure by a few
# per cent (look benchmark: 6 of 135 runs just outside 0.8-1.25 with the range at its edges).
EXPOSURE_RANGE = (0.82, 1.22)
MIN_FILL = 0.1  # the least share of the light that reaches the side turned away from it
MIN_SHADING = 0.05
MAX_GAIN = 6.0  # a pixel is brightened or darkened by at most this factor
WELL_LIT = 0.5  # an old shadow's albedo is read where the current shading is this of its peak
SKIN_SHADOW = (0.8, 1.0, 1.1)  # per-channel exponents of a darkening ratio on skin
# The subject's median saturation (linear RGB) from which its shadows warm in full: skin in a
# colour photo is 0.3-0.6; a grey photo has none, and a warmed shadow would tint it brown.
SKIN_SATURATION = 0.2
SMOOTHING = 0.02  # of the region's side: the scale below which the ratio has no detail
MIN_LUMA = 1e-3  # below this the reference has no colour to keep
DETAIL_RANGE = (0.5, 2.0)  # how far an old shadow's texture may move its brightened level
SHADOW_NOISE_SIGMA = 1.0  # px: an old shadow's pixel noise, smoothed out of its texture
SHADOW_DETAIL_SCALE = 0.1  # of the region's side: an old shadow's features finer than this kept
SHADOW_LEVEL_SCALE = 0.15  # of the region's side: the scale of an old shadow's filled level
LEVEL_WEIGHT = 0.05  # share of well-lit pixels around a point from which it has their level
# The refiner's brightness is kept at this scale (px at the model's size) and coarser, the
# re-shaded subject's detail below it: 1 px brings real skin texture back (0 turns a real face
# to plaster) at +1.5 deg light error on rendered scenes, where the finer shading the refiner
# adds is right (3 px: +5.6 deg; docs/training.md).
DETAIL_SIGMA = 1.0


@dataclass(frozen=True)
class Reshaded:
    image: Tensor  # [B,H,W,3] 0..1, changed only inside the mask
    shading: Tensor  # [B,H,W,3] the requested light's shading map (what the model is told)
    current: LightEstimate  # the subject's estimated current light
    subject: SubjectGeometry  # its normals, matte and reach
    self_shadowed: bool = False  # the face mesh cast its own shadows (nose, brows)

    @property
    def notes(self) -> tuple[str, ...]:
        """What the node says: the subject's sources, its own shadows, a region with no light to
        read."""
        notes = self.subject.notes + ((SELF_SHADOW_NOTE,) if self.self_shadowed else ())
        if bool((self.current.confidence > 0).all()):
            return notes
        return (*notes, UNREADABLE)


def ambient_share(light: Light) -> Tensor:
    """[B] ambient / (ambient + intensity): how much of the light reaches every side."""
    return light.ambient / (light.ambient + light.intensity).clamp_min(1e-6)


def fill_share(estimate: LightEstimate, requested: Light) -> Tensor:
    """[B] the ambient share of the new light: the photo's own fill (fitted), the requested
    light's ambient share, or MIN_FILL, whichever is largest."""
    fitted = ambient_share(estimate.light)
    fitted = torch.where(estimate.confidence > 0, fitted, torch.zeros_like(fitted))
    asked = ambient_share(requested)
    return torch.maximum(torch.maximum(fitted, asked), torch.full_like(fitted, MIN_FILL))


def wrapped(normals: Tensor, light: Light, wrap: Tensor | None) -> Tensor:
    """[B,H,W] Lambert, wrapped by `wrap` [B] (subject.SKIN_WRAP) where given."""
    direction = light.direction.to(normals)[:, None, None, :]
    cosine = (normals * direction).sum(-1)
    if wrap is None:
        return cosine.clamp_min(0.0)
    wrap = wrap.to(normals)[:, None, None]
    return ((cosine + wrap) / (1 + wrap)).clamp_min(0.0)


def current_shading(normals: Tensor, estimate: LightEstimate, wrap: Tensor | None = None) -> Tensor:
    """[B,H,W] the subject's shading under its fitted light, peak 1, as flat as the fit is
    unsure: a light that explains little of the photo (soft studio light on a face: R^2 0.15)
    divided out would print the shape's structure, inverted, on the skin (a dark band where
    the face mesh ends); nothing fitted, nothing divided out."""
    trust = light_trust(estimate)
    share = 1.0 - trust * (1.0 - ambient_share(estimate.light))
    level = share[:, None, None] + (1 - share[:, None, None]) * wrapped(
        normals, estimate.light, wrap
    )
    return level.clamp_min(MIN_SHADING)


def requested_shading(
    normals: Tensor,
    light: Light,
    fill: Tensor,
    visibility: Tensor | None,
    wrap: Tensor | None = None,
) -> Tensor:
    """[B,H,W] the requested light's shading, peak 1, with `fill` [B] on the far side."""
    direct = wrapped(normals, light, wrap)
    if visibility is not None:
        direct = direct * visibility
    return fill[:, None, None] + (1 - fill[:, None, None]) * direct


def reshade(
    image: Tensor,
    mask: Tensor,
    light: Light,
    normals: Tensor | None = None,
    heights: Tensor | None = None,
    shadows: bool = True,
    faces: bool = True,
) -> Reshaded:
    """image [B,H,W,3] 0..1 and mask [B,H,W]: the masked subject re-shaded for `light`.
    normals: the subject's (a user's map, decoded) or None for the pack's estimate (a face mesh
    where there is a face, else the silhouette); heights (pixels, from a depth map)
    give cast shadows on the subject when `shadows` is on, as an estimated face mesh's own depth
    does on the face (only the new light's: a fitted light's shadows, divided out, landed off
    the real ones and cost the Yale face 0.4 dB)."""
    light = light.repeat_to(image.shape[0])
    region = mask > 0.5
    rgb = image[..., :3]
    if normals is None:
        subject = estimated_geometry(rgb, region, faces)
    else:
        subject = given_geometry(rgb, region, normals, heights)
    linear = to_linear(rgb)
    estimate = estimate_light(linear, subject.normals, subject.core.float())
    visibility = cast_shadows(heights, light) if shadows and heights is not None else None
    self_shadowed = shadows and subject.relief is not None
    if self_shadowed:  # a face mesh is geometry: its nose shades its cheek, as in a real photo
        own = self_shadows(subject.relief, light)
        visibility = own if visibility is None else visibility * own
    fill = fill_share(estimate, light)
    wrap = subject.wrap
    current = current_shading(subject.normals, estimate, wrap)
    ratio = requested_shading(subject.normals, light, fill, visibility, wrap) / current
    linear = lit_old_shadows(linear, current, ratio, subject.core, subject.reach, region)
    ratio = smooth_ratio(ratio.clamp(1 / MAX_GAIN, MAX_GAIN), region)
    luma = luminance(linear)
    trust = light_trust(estimate)
    ratio = ratio * faded_exposure(luma, ratio, subject.reach, trust)[:, None, None]
    change = light.intensity.to(ratio)[:, None, None]
    tint = light.color.to(ratio) / luminance(light.color.to(ratio)).clamp_min(1e-6)[:, None]
    reach = subject.reach[..., None]
    warmth = colourfulness(linear, subject.core) if on_skin(wrap) else None
    gain = (skin_shadow(ratio * change, wrap, warmth) * tint[:, None, None]) ** reach
    relit = to_srgb(keep_hue_in_range(linear * gain))
    out = torch.where(region[..., None], relit, rgb)
    # what the refiner was trained to be told: the requested light's own shading map
    shading = shading_map(subject.normals, light, visibility)
    return Reshaded(out, shading, estimate, subject, self_shadowed)


def lit_old_shadows(
    linear: Tensor, current: Tensor, ratio: Tensor, core: Tensor, reach: Tensor, region: Tensor
) -> Tensor:
    """linear [B,H,W,3] where a relight brightens beyond MAX_GAIN (the old attached shadow of a
    point light), blended toward the albedo of the subject's well-lit part (its level spread
    smoothly: well_lit_level) at its current shading, times the gain beyond MAX_GAIN, times the
    photo's own detail there (shadow_detail): its pixels' level there is noise and compression,
    which a 10x gain would print, but their texture is the subject's (without it a half-face
    brought up from its shadow was flat grey plaster). The blend follows the ratio smoothed as
    the re-shading smooths it (the raw ratio's facets cut the fill into patches). As far as the
    change reaches (`reach` [B,H,W]: at the region's edge the photo is kept, or the blend drew
    the region's outline). current, ratio [B,H,W]; core, region bool."""
    beyond = ratio > MAX_GAIN
    if not bool((beyond & core).any()):
        return linear
    albedo = linear / current[..., None]
    peak = (current * core).flatten(1).amax(1).view(-1, 1, 1)
    well_lit = core & (current >= WELL_LIT * peak)
    if not bool(well_lit.flatten(1).any(1).all()):
        return linear
    level = well_lit_level(albedo, well_lit, region)
    smooth = smooth_ratio(ratio.clamp(1 / MAX_GAIN**2, MAX_GAIN**2), region)
    trust = ((2.0 * MAX_GAIN - smooth) / MAX_GAIN).clamp(0.0, 1.0)[..., None]
    extra = (ratio / MAX_GAIN).clamp_min(1.0)[..., None]
    lit = level * current[..., None] * extra * shadow_detail(linear, region)[..., None]
    taken = (1.0 - trust) * reach[..., None]
    return linear + taken * (lit - linear)


def well_lit_level(albedo: Tensor, well_lit: Tensor, region: Tensor) -> Tensor:
    """[B,H,W,3] the albedo [B,H,W,3] of the well-lit pixels, averaged over them at
    SHADOW_LEVEL_SCALE of the region's side: smooth where push-pull's patches had edges;
    giving way to push-pull where few well-lit pixels are near (LEVEL_WEIGHT), whose average
    there is a ratio of two vanishing sums."""
    spread = push_pull_fill(albedo.movedim(-1, 1), well_lit[:, None].to(albedo)).movedim(1, -1)
    levels = []
    for one, weight, inside, fallback in zip(
        albedo, well_lit.to(albedo), region, spread, strict=True
    ):
        sigma = region_sigma(inside, SHADOW_LEVEL_SCALE)
        level, density = masked_average(one.movedim(-1, 0)[None], weight[None], sigma)
        near = (density[0, ..., None] / LEVEL_WEIGHT).clamp(0.0, 1.0)
        levels.append(near * level[0].movedim(0, -1) + (1 - near) * fallback)
    return torch.stack(levels)


def shadow_detail(linear: Tensor, region: Tensor) -> Tensor:
    """[B,H,W] the photo's texture: its luminance over the luminance smoothed at
    SHADOW_DETAIL_SCALE of the region's side, the pixel noise smoothed away
    (SHADOW_NOISE_SIGMA), within DETAIL_RANGE. In an attached shadow only the ambient light
    falls, evenly: what varies there is the subject's own (brows, nostrils, skin), whose level
    the spread albedo gives and whose features this keeps."""
    luma = luminance(linear)
    fine = gaussian_blur(luma[:, None], SHADOW_NOISE_SIGMA)[:, 0]
    inside = region.to(luma)  # the level is the region's own: the background is not its
    levels = []
    for one, weight in zip(luma, inside, strict=True):
        sigma = region_sigma(weight, SHADOW_DETAIL_SCALE)
        levels.append(masked_average(one[None, None], weight[None], sigma)[0][0, 0])
    return (fine / torch.stack(levels).clamp_min(MIN_LUMA)).clamp(*DETAIL_RANGE)


def colourfulness(linear: Tensor, core: Tensor) -> Tensor:
    """[B] 0..1: how far each subject's colours are from grey (median saturation over its core,
    over SKIN_SATURATION): 0 for a grey photo."""
    peak = linear.amax(-1)
    saturation = (peak - linear.amin(-1)) / peak.clamp_min(MIN_LUMA)
    values = []
    for one, bright, inside in zip(saturation, peak, core, strict=True):
        picked = one[inside & (bright > MIN_LUMA)]
        values.append(picked.median() if picked.numel() else one.new_zeros(()))
    return (torch.stack(values) / SKIN_SATURATION).clamp(0.0, 1.0)


def on_skin(wrap: Tensor | None) -> bool:
    """Whether any subject of the batch is skin (a wrapped shading: subject.SKIN_WRAP)."""
    return wrap is not None and bool((wrap > 0).any())


def skin_shadow(ratio: Tensor, wrap: Tensor | None, warmth: Tensor | None = None) -> Tensor:
    """[B,H,W,3] the grey ratio [B,H,W] per channel: on skin (wrap > 0) a darkened pixel keeps
    more red and less blue (ratio ** SKIN_SHADOW), as light scattered under the skin does in a
    real shadow; a grey darkening turned pale skin's shadow side grey, like plaster. warmth [B]
    0..1 (colourfulness): as far as the photo has colour (a grey photo's shadows stay grey)."""
    grey = ratio[..., None].expand(*ratio.shape, 3)
    if not on_skin(wrap):
        return grey
    warmth = ratio.new_ones(len(ratio)) if warmth is None else warmth.to(ratio)
    exponents = 1.0 + warmth[:, None, None, None] * (ratio.new_tensor(SKIN_SHADOW) - 1.0)
    warm = torch.where(grey < 1.0, grey**exponents, grey)
    return torch.where((wrap.to(ratio) > 0)[:, None, None, None], warm, grey)


def faded_exposure(
    luma: Tensor, ratio: Tensor, reach: Tensor, trust: Tensor, rounds: int = 6
) -> Tensor:
    """[B] k with the subject's mean luminance under the faded gain (ratio k)^reach the photo's
    times the light's own change of it, held to EXPOSURE_RANGE and taken only as far as the
    current light is known (`trust` [B] 0..1: with no light read, the ratio's level says
    nothing). Each pixel counts as far as the change reaches it: counted in full, the fade's
    ring (kept near the photo) let the subject inside it go past the range (a dog's face
    darkened to 0.78 of its brightness, the region as a whole to the range's 0.82).
    Exposure_gain for the fade: a few fixed-point rounds, each exact for a uniform reach."""
    luma = luma * reach
    before = luma.flatten(1).sum(1)
    own = (luma * ratio**reach).flatten(1).sum(1) / before.clamp_min(1e-8)
    change = own.clamp_min(1e-8) ** trust.to(own)
    change = torch.where(before > 1e-8, change.clamp(*EXPOSURE_RANGE), torch.ones_like(own))
    k = exposure_gain(luma, ratio, reach, change)
    weight = (luma * reach).flatten(1).sum(1) / before.clamp_min(1e-8)
    for _ in range(rounds):
        after = (luma * (ratio * k[:, None, None]) ** reach).flatten(1).sum(1)
        k = k * (change * before / after.clamp_min(1e-8)) ** (1.0 / weight.clamp_min(1e-3))
    return k


def region_sigma(region: Tensor, share: float) -> float:
    """A blur's sigma in px: `share` of the region's side (the square root of its area, [H,W]
    bool or 0..1), at least 1."""
    return max(1.0, share * float(region.sum()) ** 0.5)


def smooth_ratio(ratio: Tensor, region: Tensor) -> Tensor:
    """The shading ratio [B,H,W] low-passed in log space at SMOOTHING of each region's side."""
    smoothed = []
    for one, inside in zip(ratio, region, strict=True):
        sigma = region_sigma(inside, SMOOTHING)
        smoothed.append(gaussian_blur(one.log()[None, None], sigma)[0, 0].exp())
    return torch.stack(smoothed)


def keep_colours(answer: Tensor, reference: Tensor, detail_sigma: float = 0.0) -> Tensor:
    """answer [B,H,W,3] 0..1 with the chromaticity of `reference` (the re-shaded subject: its
    albedo times the light's colour) and the answer's luminance. Why: the refiner, a small
    network trained on rendered scenes, learns shadows, highlights and edges, but on real photos
    it also moves colours (grey-blue casts on a white cup) and smooths fine detail (skin turns to
    plaster); the re-shaded subject already has the colours and the detail a relight should have.
    detail_sigma > 0: only the answer's brightness at that scale (px) is kept, the finer detail is
    the reference's: the answer is the reference times the ratio of their blurred luminances."""
    answer_luma = luminance(answer)
    reference_luma = luminance(reference)
    if detail_sigma > 0:
        answer_luma, reference_luma = (
            gaussian_blur(luma[:, None], detail_sigma)[:, 0]
            for luma in (answer_luma, reference_luma)
        )
    usable = reference_luma > MIN_LUMA
    ratio = answer_luma / reference_luma.clamp_min(MIN_LUMA)
    kept = reference[..., :3] * ratio[..., None]
    return keep_hue_in_range(torch.where(usable[..., None], kept, answer[..., :3]))
