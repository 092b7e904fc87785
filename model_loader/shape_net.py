"""The learned shape prior's network and file: a small UNet that turns a subject's silhouette,
its dome and its grey picture into normals.

Why a network: one photo's shading says how far each normal turns from the light but not
which way around it, and a silhouette's dome does not say where a head or a wing stands before
the body. Trained on rendered figurines (training/figurines.py), the network reads both from
the picture. Plain torch + safetensors: no ComfyUI imports here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import safetensors.torch
import torch
import torch.nn.functional as F
from torch import Tensor, nn

SIZE = 128  # px a side: the subject's square box is worked at this size
CHANNELS = (16, 32, 64, 128, 128)
INPUTS = 5  # the silhouette, the dome's normals (3), the grey picture inside the silhouette
FORMAT = "relight_inpaint_shape_prior_v1"


def _block(inputs: int, outputs: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1),
        nn.GroupNorm(8, outputs),
        nn.SiLU(),
        nn.Conv2d(outputs, outputs, 3, padding=1),
        nn.GroupNorm(8, outputs),
        nn.SiLU(),
    )


class ShapeNet(nn.Module):
    """[B,5,S,S] (silhouette, dome normals, grey) -> unit normals [B,3,S,S]: the dome plus a
    learned correction (the correction starts at zero, so an untrained network is the dome)."""

    def __init__(self, channels: tuple[int, ...] = CHANNELS, inputs: int = INPUTS):
        super().__init__()
        self.downs = nn.ModuleList()
        width = inputs
        for out in channels:
            self.downs.append(_block(width, out))
            width = out
        self.ups = nn.ModuleList()
        for skip in reversed(channels[:-1]):
            self.ups.append(_block(width + skip, skip))
            width = skip
        self.out = nn.Conv2d(width, 3, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: Tensor) -> Tensor:
        skips = []
        h = x
        for index, down in enumerate(self.downs):
            h = down(h)
            if index < len(self.downs) - 1:
                skips.append(h)
                h = F.avg_pool2d(h, 2)
        for up in self.ups:
            skip = skips.pop()
            h = F.interpolate(h, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = up(torch.cat([h, skip], 1))
        return F.normalize(x[:, 1:4] + self.out(h), dim=1)


def save_shape_net(net: ShapeNet, path: str | os.PathLike, provenance: dict) -> None:
    """fp16 weights with the format and how they were trained in the metadata; written to a
    temporary file first, so a failed save leaves no half file."""
    tensors = {name: value.detach().half().contiguous() for name, value in net.state_dict().items()}
    metadata = {"format": FORMAT, "provenance": json.dumps(provenance)}
    tmp = Path(f"{path}.tmp")
    safetensors.torch.save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)


def load_shape_net(path: str | os.PathLike) -> ShapeNet:
    """The network of a shape-prior file, in eval mode (float32)."""
    with safetensors.safe_open(str(path), framework="pt") as handle:
        found = (handle.metadata() or {}).get("format")
    if found != FORMAT:
        raise ValueError(f"{Path(path).name}: not a shape-prior file (format {found!r})")
    net = ShapeNet()
    tensors = safetensors.torch.load_file(str(path))
    net.load_state_dict({name: value.float() for name, value in tensors.items()})
    return net.eval()
