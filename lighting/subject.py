"""The subject inside a painted region: where it is, its shape and how far the relight may
change it, in one object (SubjectGeometry) that the re-shading and the nodes share.

Shape, from the best source there is: the user's normal or depth map; a face mesh where a face
is found (mediapipe's landmarker, lighting/faces); elsewhere the silhouette inflated into a
dome and flattened toward the viewer. Why flattened: on faces the full dome was measured worse
than no shape at all (37-42 degrees from photometric stereo, a flat map 30-34), and a hard
half-dome paints a dark crescent; where the shape is a guess the change stays gentle.

Where: a painted region is rarely the subject. A loose ellipse over a face also covers hair and
wall; with a face in it, the person matte (mediapipe's selfie segmenter) says which part is the
person, and the rest of the region keeps the scene's light. Without one, the region is the
subject (a click selection, an object's silhouette).

How far: the change fades to nothing over the outer EDGE_FADE of the region, so its edge is
never a step the eye sees, however loose the painting.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from .normals import FLAT, estimate_normals

PRIOR_FLATTENING = 0.5  # the silhouette dome's normals this far toward the viewer (rim: 45 deg)
EDGE_FADE = 0.2  # of the region's radius (sqrt(area / pi)): where the change fades out
MIN_PERSON_SHARE = 0.15  # a person matte covering less of the region than this is not used
MATTE_THRESHOLD = 0.5


@dataclass(frozen=True)
class SubjectGeometry:
    """What the relight knows of the subject in each image of a batch."""

    normals: Tensor  # [B,H,W,3] unit, camera frame; flat outside the subject
    heights: Tensor | None  # [B,H,W] px from a depth map (cast shadows), else None
    matte: Tensor  # [B,H,W] 0..1: the subject inside the region (0 outside the region)
    reach: Tensor  # [B,H,W] 0..1: how much of the change each pixel takes (matte x edge fade)
    notes: tuple[str, ...]  # what was used, for the node

    @property
    def core(self) -> Tensor:
        """[B,H,W] bool: the subject well inside the region, where its light can be read."""
        return self.reach > 0.5


def edge_fade(region: Tensor, share: float = EDGE_FADE) -> Tensor:
    """[B,H,W] 0..1: 0 on and outside the region's edge, rising smoothly to 1 at `share` of
    the region's radius inside it."""
    fades = []
    for one in region:
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


def flattened(normals: Tensor, factor: float = PRIOR_FLATTENING) -> Tensor:
    """Normals [B,H,W,3] moved `factor` of the way toward the viewer: a gentler guess of a
    shape, whose rim turns 45 degrees away rather than 90 (a hard half-dome's dark crescent)."""
    return F.normalize(normals + factor * (normals.new_tensor(FLAT) - normals), dim=-1)


def silhouette_prior(matte: Tensor) -> Tensor:
    """Normals [B,H,W,3] of the matte's inflated, flattened silhouette; flat outside."""
    subject = matte > MATTE_THRESHOLD
    normals, _ = estimate_normals(subject.float())
    flat = normals.new_tensor(FLAT).expand_as(normals)
    return torch.where(subject[..., None], flattened(normals), flat)


def given_geometry(region: Tensor, normals: Tensor, heights: Tensor | None) -> SubjectGeometry:
    """The user's normals (or a depth map's): trusted over the whole region."""
    matte = region.float()
    note = "normals: from the depth map" if heights is not None else "normals: the given map"
    return SubjectGeometry(normals, heights, matte, matte * edge_fade(region), (note,))


def estimated_geometry(image: Tensor, region: Tensor, faces: bool = True) -> SubjectGeometry:
    """image [B,H,W,3] 0..1 and region [B,H,W] bool: the subject found inside the region."""
    parts = [_estimate_one(image[i], region[i], faces) for i in range(len(image))]
    normals, matte, notes = zip(*parts, strict=True)
    matte = torch.stack(matte)
    notes = tuple(dict.fromkeys(n for one in notes for n in one))
    return SubjectGeometry(torch.stack(normals), None, matte, matte * edge_fade(region), notes)


def _estimate_one(image: Tensor, region: Tensor, faces: bool):
    matte = region.float()
    notes: list[str] = []
    face = _find_faces(image, notes) if faces and bool(region.any()) else None
    if face is not None and face.count > 0:
        person = _person_inside(image, region, face.weight, notes)
        matte = person if person is not None else matte
    prior = silhouette_prior(matte[None])[0]
    if face is None or face.count == 0:
        return prior, matte, notes or ["normals: the silhouette, flattened"]
    weight = (face.weight.to(prior) * region)[..., None]
    normals = F.normalize(weight * face.normals.to(prior) + (1 - weight) * prior, dim=-1)
    return torch.where(region[..., None], normals, prior), matte, notes


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
