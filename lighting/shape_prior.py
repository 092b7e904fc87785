"""The learned shape prior: a subject's normals read from its silhouette and its picture by a
small network trained on rendered figurines (model_loader/shape_net.py,
training/shape_prior.py).

Why: the silhouette's dome inflates a figurine into one blob, and the shading correction that
follows can only turn each normal toward or away from the light, not around it: the dome's
coarse shape stays (the lower third facing down where a figurine's faces forward, a head merged
into its body). The network sees where a head, a wing or a leg stands before the body. Its
normals start the shading correction in place of the dome; without its file the dome is used.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor

from ..model_loader.shape_net import SIZE, ShapeNet, load_shape_net
from .normals import FLAT, estimate_normals

MODEL_PATH = Path(__file__).resolve().parent / "weights" / "shape_prior.safetensors"
BOX_MARGIN = 1.15  # the square box around the subject, of its longer side (training: 1.05-1.4)
WHITE = 0.98  # quantile of the grey picture inside the subject taken as its white

_lock = threading.Lock()
_loaded: dict[Path, ShapeNet | None] = {}


def shape_net(path: Path | None = None) -> ShapeNet | None:
    """The network of `path` (MODEL_PATH), loaded once; None when the file is missing or
    unreadable (logged: the silhouette's prior is used instead)."""
    path = MODEL_PATH if path is None else path
    if not path.is_file():
        return None
    with _lock:
        if path not in _loaded:
            try:
                _loaded[path] = load_shape_net(path)
            except Exception as error:  # a truncated download: relight with the dome
                logging.warning(
                    "relight_inpaint: %s unreadable (%s); using the silhouette", path, error
                )
                _loaded[path] = None
        return _loaded[path]


def network_input(mask: Tensor, grey: Tensor) -> Tensor:
    """[B,5,S,S]: the silhouette (mask [B,S,S] 0/1), its dome's normals and the grey picture
    inside it (grey [B,S,S] display-encoded), scaled so its WHITE quantile is 1."""
    dome, _ = estimate_normals(mask)
    inside = grey * mask
    white = torch.quantile(inside.flatten(1), WHITE, dim=1).clamp_min(1e-3)
    return torch.cat(
        [mask[:, None], dome.permute(0, 3, 1, 2), (inside / white[:, None, None])[:, None]], 1
    )


def subject_box(subject: Tensor) -> tuple[int, int, int]:
    """(top, left, side) of the square box around the subject, BOX_MARGIN of its longer side
    (it may reach past the picture)."""
    rows = torch.nonzero(subject.any(1))[:, 0]
    cols = torch.nonzero(subject.any(0))[:, 0]
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    side = max(2, round(max(bottom - top, right - left) * BOX_MARGIN))
    return (top + bottom - side) // 2, (left + right - side) // 2, side


def _overlap(top: int, left: int, side: int, height: int, width: int) -> tuple[slice, ...]:
    """(rows, cols) of the picture [height, width] inside the box, (rows, cols) of the box on
    the picture: the box may reach past the picture."""
    y0, y1, x0, x1 = max(0, top), min(height, top + side), max(0, left), min(width, left + side)
    return slice(y0, y1), slice(x0, x1), slice(y0 - top, y1 - top), slice(x0 - left, x1 - left)


def _boxed(plane: Tensor, top: int, left: int, side: int) -> Tensor:
    """plane [H,W] cut to the box (zeros past the picture)."""
    rows, cols, box_rows, box_cols = _overlap(top, left, side, *plane.shape)
    box = plane.new_zeros(side, side)
    box[box_rows, box_cols] = plane[rows, cols]
    return box


def learned_normals(image: Tensor, subject: Tensor, net: ShapeNet | None = None) -> Tensor | None:
    """Normals [H,W,3] of the subject (subject [H,W] bool in image [H,W,3] display-encoded,
    0..1) by the shape network, flat outside; None without the network or a subject."""
    net = shape_net() if net is None else net
    if net is None or not bool(subject.any()):
        return None
    top, left, side = subject_box(subject)
    grey = _boxed(image[..., :3].float().mean(-1), top, left, side)
    mask = _boxed(subject.float(), top, left, side)
    small = lambda plane: F.interpolate(plane[None, None], size=(SIZE, SIZE), mode="area")[:, 0]  # noqa: E731
    mask_small = (small(mask) > 0.5).float()
    with torch.no_grad():
        normals = net(network_input(mask_small, small(grey)))
    normals = F.interpolate(normals, size=(side, side), mode="bilinear", align_corners=False)
    normals = F.normalize(normals, dim=1)[0].permute(1, 2, 0)
    rows, cols, box_rows, box_cols = _overlap(top, left, side, *subject.shape)
    out = subject.new_zeros(*subject.shape, 3, dtype=torch.float32)
    out[rows, cols] = normals[box_rows, box_cols]
    return torch.where(subject[..., None], out, out.new_tensor(FLAT))
