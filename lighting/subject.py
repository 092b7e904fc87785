"""The subject inside a painted region: where it is, its shape and how far the relight may
change it, in one object (SubjectGeometry) that the re-shading and the nodes share.

Shape, from the best source there is: the user's normal or depth map; a face mesh where a face
is found (mediapipe's landmarker, lighting/faces); elsewhere the silhouette inflated into a
dome (part by part along its inner contours where it is not convex, lighting/parts) and
flattened toward the viewer; either corrected by the photo's own shading
(lighting/shape_from_shading). Why flattened: on faces the full dome was measured worse
than no shape at all (37-42 degrees from photometric stereo, a flat map 30-34), and a hard
half-dome paints a dark crescent; where the shape is a guess the change stays gentle.

Where: a painted region is rarely the subject. A loose ellipse over a face also covers hair and
wall; with a face in it, the person matte (mediapipe's selfie segmenter) says which part is the
person, and the rest of the region keeps the scene's light. Without one, the region is the
subject (a click selection, an object's silhouette).

How far: the change fades to nothing toward the region's edge, so its edge is never a step the
eye sees, however loose the painting (see LOOSE_FADE).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..conditioning.filters import gaussian_blur
from .exposure import to_linear
from .light_estimate import luminance
from .normals import FLAT, estimate_normals, flat_normals, normals_from_heights
from .parts import is_convex, parts_heights
from .progress import Tick, advance
from .shape_from_shading import corrected_by_shading
from .shape_prior import learned_normals, shape_net

# How far the silhouette dome's normals are moved toward the viewer (0.5: the rim at 45 deg).
# Measured against photometric stereo (median degrees, factor 0 / 0.2 / 0.5): figurines
# cat 29.6 / 29.9 / 36.5, owl 37.6 / 36.0 / 35.9, horse 31.0 / 29.5 / 32.1; the Yale face
# 36.4 / 32.4 / 26.0. Around a face (hair, neck, shoulders) the flatter guess is the better;
# on objects the figurines do not tell 0 from 0.2, but rendered scenes do (camera-encoded, 15
# scenes, re-shading alone: 0.2 gave 17.1 dB and a light 41 degrees off the request, 0 gave
# 17.7 dB and 28 degrees): a flattened rim cannot show a light from the side. On the real
# figurines (40 pairs each, with the exposure range) 0 costs 0.01-0.28 dB (cat 14.8 -> 13.4
# degrees, horse 13.9 -> 14.6, owl 15.8 -> 16.4).
OBJECT_FLATTENING = 0.0
# The estimate (dome or face mesh) corrected by the photo's own shading under its fitted light
# (lighting/shape_from_shading). Real photos (re-shading alone, 40 pairs per subject, off / on):
# cat 13.5 / 11.9 deg light error, horse 14.8 / 13.4, owl 16.5 / 12.7, the Yale face
# +0.72 dB, 47.8 deg / +1.32 dB, 41.6 deg.
SHADING_CORRECTION = True
SHADING_NOTE = "shape: corrected by the photo's own shading"
SILHOUETTE_NOTE = "normals: the silhouette"
LEARNED_NOTE = "normals: the learned shape prior (silhouette and picture)"
# An object's normals start from the learned shape prior (lighting/shape_prior) where its file
# is there, blended with the silhouette's dome and parts at LEARNED_WEIGHT. Real figurines,
# re-shading alone, 40 pairs each (docs/relighting.md, eleventh session), the dome and parts /
# the prior at 0.5 / at 1: cat +2.02 / +2.37 / +2.48 dB, light 10.0 / 9.7 / 9.2 deg; horse
# +0.96 / +0.91 / +0.96, 11.7 / 11.6 / 12.4; owl +0.92 / +1.31 / +1.28, 12.8 / 12.7 / 12.5.
# At 1 the horse's light went past 12 degrees; the network saw 32 CPU minutes of training.
LEARNED_PRIOR = True
LEARNED_WEIGHT = 0.5
PERSON_FLATTENING = 0.5
# Where the change fades out, as a share of the region's radius (sqrt(area / pi)): over a wide
# band for a loose region (its edge crosses skin, hair and wall: a step there is an oval), over
# a narrow one where the region's edge follows the photo's own edges (a click selection, an
# object's outline: a step there is the object's edge, and a wide fade would take the light
# off its rim, where the light's direction shows most).
LOOSE_FADE = 0.4
TIGHT_FADE = 0.04
# With a face found the person's matte keeps the wall out of the change, and the region's edge
# crosses the person's skin, hair and clothes, whose shading the mesh knows better than a dome's
# rim: a narrower fade hides it (edge step 0.1-0.5 dE on the look benchmark's portraits at 0.4).
PERSON_FADE = 0.2
OUTLINE_CONTRAST = 8.0  # L* between the two sides of an edge point that counts as an outline
MIN_PERSON_SHARE = 0.15  # a person matte covering less of the region than this is not used
MATTE_THRESHOLD = 0.5
# Wrapped Lambert for people, max(0, (n.l + w) / (1 + w)): light scatters under skin and a
# real light has an extent, so a face's terminator is soft; plain Lambert on the face mesh
# drew a hard line down the nose beside a grey half-face. Objects keep plain Lambert (on a lit
# sphere a wrap of 0.4 put the light fitted to the result 31 degrees off the request, under 15
# without). A real face under a known light (Extended Yale B, 40 pairs, the global light fit)
# wants little: wrap 0.4 / 0.1 / 0 gave light error 54.9 / 46.7 / 41.9 deg; 0.1 keeps the soft
# terminator (look benchmark: follows 0.83 -> 1.13, colour 1.13 -> 1.48, edge 0.33 -> 0.43).
SKIN_WRAP = 0.1
HEAD_SCALE = 1.25  # the head's radii against the face mesh's (forehead, temples, ears)
HEAD_REACH = 1.6  # head radii: between 1 and this the head gives way to the silhouette
# The face mesh's depth as its shadows take it: mediapipe's is 1.4-1.7 times the depth that
# photometric stereo's normals integrate to across a Yale face's cheeks (its normals are
# corrected by the photo's shading; its depth is not), and full-depth noses drew long shadows.
FACE_RELIEF = 0.67
FACE_BLEND = 0.12  # of the face's size: how gradually the face mesh gives way to the silhouette


@dataclass(frozen=True)
class SubjectGeometry:
    """What the relight knows of the subject in each image of a batch."""

    normals: Tensor  # [B,H,W,3] unit, camera frame; flat outside the subject
    heights: Tensor | None  # [B,H,W] px from a depth map (cast shadows), else None
    matte: Tensor  # [B,H,W] 0..1: the subject inside the region (0 outside the region)
    reach: Tensor  # [B,H,W] 0..1: how much of the change each pixel takes (matte x edge fade)
    notes: tuple[str, ...]  # what was used, for the node
    wrap: Tensor | None = None  # [B] the shading's wrap (SKIN_WRAP): skin's soft terminator
    relief: Tensor | None = None  # [B,H,W] px toward the viewer: the face meshes (NaN off them)

    @property
    def core(self) -> Tensor:
        """[B,H,W] bool: the subject, where its current light is read (its rim included: the
        normals that turn away tell the light's direction best)."""
        return self.matte > MATTE_THRESHOLD


def outline_share(image: Tensor, region: Tensor) -> Tensor:
    """[B] the share of each region's edge that lies on an edge of the photo: the lightness 2 px
    inside against 2 px outside differs by OUTLINE_CONTRAST or more. image [B,H,W,3] sRGB."""
    lightness = srgb_lightness(image)[:, None]
    inside = region.float()[:, None]
    means = []
    for side in (inside, 1.0 - inside):
        weight = gaussian_blur(side, 2.0)
        means.append(gaussian_blur(lightness * side, 2.0) / weight.clamp_min(1e-6))
    eroded = -F.max_pool2d(-inside, 3, 1, 1)
    edge = (inside - eroded)[:, 0] > 0.5
    contrast = (means[0] - means[1]).abs()[:, 0] > OUTLINE_CONTRAST
    count = edge.flatten(1).sum(1).clamp_min(1)
    return (edge & contrast).flatten(1).sum(1) / count


def srgb_lightness(image: Tensor) -> Tensor:
    """CIELAB L* [B,H,W] of an sRGB image [B,H,W,3] in 0..1."""
    y = luminance(to_linear(image[..., :3]))
    small = y <= (6 / 29) ** 3
    f = torch.where(small, y / (3 * (6 / 29) ** 2) + 4 / 29, y.clamp_min(1e-9) ** (1 / 3))
    return 116.0 * f - 16.0


def fade_share(image: Tensor, region: Tensor) -> list[float]:
    """How wide each region's fade is (see LOOSE_FADE)."""
    fitted = outline_share(image, region).tolist()
    return [LOOSE_FADE + (TIGHT_FADE - LOOSE_FADE) * share for share in fitted]


def edge_fade(region: Tensor, shares: list[float]) -> Tensor:
    """[B,H,W] 0..1: 0 on and outside each region's edge, rising smoothly to 1 at its share of
    the region's radius inside it."""
    fades = []
    for one, share in zip(region, shares, strict=True):
        inside = one.cpu().numpy().astype(np.uint8)
        area = float(inside.sum())
        if area == 0:
            fades.append(torch.zeros_like(one, dtype=torch.float32))
            continue
        width = max(1.0, share * (area / np.pi) ** 0.5)
        distance = cv2.distanceTransform(inside, cv2.DIST_L2, 5)
        t = np.clip(distance / width, 0.0, 1.0)
        fades.append(torch.from_numpy(t * t * (3.0 - 2.0 * t)).to(one.device))
    return torch.stack(fades).float()


def flattened(normals: Tensor, factor: float) -> Tensor:
    """Normals [B,H,W,3] moved `factor` of the way toward the viewer: a gentler guess of a
    shape, whose rim turns 45 degrees away rather than 90 (a hard half-dome's dark crescent)."""
    return F.normalize(normals + factor * (normals.new_tensor(FLAT) - normals), dim=-1)


def silhouette_prior(
    matte: Tensor, factor: float = OBJECT_FLATTENING, image: Tensor | None = None
) -> Tensor:
    """Normals [B,H,W,3] of the matte's inflated silhouette, flattened by `factor`; flat
    outside. With the image [B,H,W,3], each part of a silhouette that is not convex is rounded
    too (lighting/parts)."""
    subject = matte > MATTE_THRESHOLD
    if image is None:
        normals, _ = estimate_normals(subject.float())
    else:
        normals = normals_from_heights(parts_heights(image, subject))
    return torch.where(subject[..., None], flattened(normals, factor), flat_normals(matte))


def object_prior(matte: Tensor, image: Tensor) -> tuple[Tensor, str]:
    """(normals [H,W,3], note) an object's shading correction starts from (matte [H,W], image
    [H,W,3]): the learned shape prior's where it applies (uses_learned_prior), else the
    silhouette's dome and parts."""
    subject = matte > MATTE_THRESHOLD
    silhouette = silhouette_prior(matte[None], OBJECT_FLATTENING, image[None])[0]
    if uses_learned_prior(subject[None])[0]:
        learned = learned_normals(image, subject)
        if learned is not None:
            blend = LEARNED_WEIGHT * flattened(learned, OBJECT_FLATTENING)
            return F.normalize(blend + (1 - LEARNED_WEIGHT) * silhouette, dim=-1), LEARNED_NOTE
    return silhouette, SILHOUETTE_NOTE


def given_geometry(
    image: Tensor, region: Tensor, normals: Tensor, heights: Tensor | None
) -> SubjectGeometry:
    """The user's normals (or a depth map's): trusted over the whole region."""
    matte = region.float()
    note = "normals: from the depth map" if heights is not None else "normals: the given map"
    reach = matte * edge_fade(region, fade_share(image, region))
    return SubjectGeometry(normals, heights, matte, reach, (note,))


GEOMETRY_TICKS = 3  # per image: faces looked for, the subject found, its normals


def estimated_geometry(
    image: Tensor, region: Tensor, faces: bool = True, tick: Tick = None
) -> SubjectGeometry:
    """image [B,H,W,3] 0..1 and region [B,H,W] bool: the subject found inside the region.
    `tick` is called GEOMETRY_TICKS times per image (a face mesh takes seconds on a CPU)."""
    parts = [_estimate_one(image[i], region[i], faces, tick) for i in range(len(image))]
    normals, matte, notes, skin, relief = zip(*parts, strict=True)
    matte = torch.stack(matte)
    notes = tuple(dict.fromkeys(n for one in notes for n in one))
    shares = [
        min(share, PERSON_FADE) if person else share
        for share, person in zip(fade_share(image, region), skin, strict=True)
    ]
    reach = matte * edge_fade(region, shares)
    wrap = torch.tensor([SKIN_WRAP if one else 0.0 for one in skin])
    normals = torch.stack(normals)
    if SHADING_CORRECTION:
        linear = to_linear(image[..., :3])
        core = matte > MATTE_THRESHOLD
        normals, trust = corrected_by_shading(linear, normals, core, rounded_by_surface(core, skin))
        if bool((trust > 0).any()):
            notes = (*notes, SHADING_NOTE)
    relief = stacked_relief(relief, matte)
    return SubjectGeometry(normals, None, matte, reach, notes, wrap, relief)


def uses_learned_prior(subject: Tensor) -> list[bool]:
    """Per subject (subject [B,H,W] bool): whether its normals start from the learned shape
    prior: an object whose silhouette is not convex (a figurine's parts), when the prior's
    file is there. A convex silhouette (a ball, a can, a fruit) keeps its dome, which is
    already its shape."""
    if not LEARNED_PRIOR or shape_net() is None:
        return [False] * len(subject)
    return (~is_convex(subject)).tolist()


def rounded_by_surface(core: Tensor, skin: tuple[bool, ...] | list[bool]) -> Tensor:
    """[B] bool: the subjects whose shading correction alternates with a surface
    (shape_from_shading.SURFACE_ROUNDS): objects whose silhouette (core [B,H,W] bool) is not
    convex. Not people: hair, clothes and make-up would be read as shape. Not a convex
    silhouette (lighting/parts): a ball's, a can's or a fruit's dome is already its shape, and
    the rounds read its texture as shape (40 rendered scenes, every target convex, re-shading
    alone: relight 16.58 -> 16.43 dB and 36.3 -> 42.0 deg with them)."""
    objects = ~torch.tensor(list(skin), dtype=torch.bool, device=core.device)
    return objects & ~is_convex(core)


def stacked_relief(reliefs: tuple[Tensor | None, ...], matte: Tensor) -> Tensor | None:
    """[B,H,W] the face meshes' heights of a batch (NaN where an image has none), None when no
    image has a face."""
    if all(relief is None for relief in reliefs):
        return None
    missing = torch.full_like(matte[0], torch.nan)
    return torch.stack([missing if relief is None else relief for relief in reliefs])


def _estimate_one(image: Tensor, region: Tensor, faces: bool, tick: Tick = None):
    matte = region.float()
    notes: list[str] = []
    face = _find_faces(image, notes) if faces and bool(region.any()) else None
    advance(tick)
    if face is not None and face.count > 0:
        person = _person_inside(image, region, face.weight, notes)
        matte = person if person is not None else matte
    advance(tick)
    if face is None or face.count == 0:
        prior, note = object_prior(matte, image)
        advance(tick)
        return prior, matte, [*notes, note], False, None
    prior = silhouette_prior(matte[None], PERSON_FLATTENING)[0]
    head, head_weight = head_prior(face.weight.to(prior))
    prior = F.normalize(
        head_weight[..., None] * head + (1 - head_weight[..., None]) * prior, dim=-1
    )
    weight = (soft_face_weight(face.weight.to(prior)) * region)[..., None]
    normals = F.normalize(weight * face.normals.to(prior) + (1 - weight) * prior, dim=-1)
    advance(tick)
    normals = torch.where(region[..., None], normals, prior)
    return normals, matte, notes, True, face.depth.to(prior) * FACE_RELIEF


def head_prior(face_weight: Tensor) -> tuple[Tensor, Tensor]:
    """(normals [H,W,3], weight [H,W]) of an ellipsoid head around each face mesh, flattened by
    PERSON_FLATTENING, its weight 1 on the head and 0 beyond HEAD_REACH of its radii. Why:
    past the mesh (upper forehead, temples, hair) the person's silhouette dome tilts toward
    wherever the hair falls, and its shading against the mesh's drew bands on the forehead."""
    height, width = face_weight.shape
    faces = (face_weight > 0.5).cpu().numpy().astype(np.uint8)
    count, labels = cv2.connectedComponents(faces)
    rows, cols = torch.meshgrid(
        torch.arange(height, dtype=torch.float32),
        torch.arange(width, dtype=torch.float32),
        indexing="ij",
    )
    normals = face_weight.new_zeros(height, width, 3)
    normals[..., 2] = 1.0
    weight = face_weight.new_zeros(height, width)
    for label in range(1, count):
        ys, xs = np.nonzero(labels == label)
        cy, cx = float(ys.mean()), float(xs.mean())
        ry, rx = HEAD_SCALE * 2.0 * float(ys.std()) + 1.0, HEAD_SCALE * 2.0 * float(xs.std()) + 1.0
        u, v = (cols - cx) / rx, (cy - rows) / ry
        radius = (u * u + v * v).sqrt()
        inside = radius.clamp(max=1.0)
        z = (1.0 - inside**2).clamp_min(0.0).sqrt()
        scale = inside / radius.clamp_min(1e-6)
        one = flattened(torch.stack([u * scale, v * scale, z], dim=-1), PERSON_FLATTENING)
        near = ((HEAD_REACH - radius) / (HEAD_REACH - 1.0)).clamp(0.0, 1.0)
        closer = near > weight
        normals = torch.where(closer[..., None], one, normals)
        weight = torch.maximum(weight, near)
    return normals, weight


def soft_face_weight(weight: Tensor) -> Tensor:
    """The face mesh's weight [H,W] rising from 0 at the mesh's edge to 1 inside it over
    FACE_BLEND of the face's size: where the mesh ends (mid-forehead, jaw) its normals and the
    head's differ, and a quick change from one to the other drew a line across the forehead.
    0 outside the mesh, which has no normals there."""
    size = float((weight > 0.5).sum()) ** 0.5
    if size == 0:
        return weight
    blurred = gaussian_blur((weight > 0.5).float()[None, None], max(1.0, FACE_BLEND * size))
    return (blurred[0, 0] * 2.0 - 1.0).clamp(0.0, 1.0)


def _find_faces(image: Tensor, notes: list[str]):
    try:
        from . import faces  # loaded only when needed: the interpreter starts in a second or two
    except ImportError as error:
        notes.append(f"face mesh unavailable ({error}): the silhouette is used")
        return None
    reason = faces.faces_unavailable()
    if reason is not None:
        notes.append(reason)
        return None
    found = faces.face_geometry(image)
    notes.append(found.message)
    return found


def _person_inside(image: Tensor, region: Tensor, face_weight: Tensor, notes: list[str]):
    """The person's matte inside the region (soft), the face mesh's hull included; None when
    the segmenter sees too little of a person there."""
    from . import faces

    person = faces.person_matte(image)
    if person is None:
        return None
    person = torch.maximum(person.to(face_weight), face_weight) * region
    share = float(person.sum()) / max(1.0, float(region.sum()))
    if share < MIN_PERSON_SHARE:
        return None
    notes.append(f"subject: the person ({share:.0%} of the region); the rest keeps its light")
    return person
