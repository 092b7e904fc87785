"""The pack's own networks: small, fully convolutional, pixel space.

- `RelightUNet`: a denoiser. A space-to-depth stem (PixelUnshuffle) runs it at 1/stem resolution;
  the timestep reaches every residual block as a FiLM scale and shift.
- `RelightRegressor`: a conditional regressor. It reads only the conditioning channels (masked
  image, mask, light map, mode) and answers x0 directly, ignoring the noisy image and the
  timestep, so every sampler step returns the same answer.

Both answer ComfyUI as flow models (see `RelightNetwork.forward`). Layers come from `operations`
(ComfyUI's ops when ComfyUI builds them, torch.nn otherwise), so ComfyUI's weight casting and
offloading apply unchanged.
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import nn

TORCH_OPS = SimpleNamespace(Conv2d=nn.Conv2d, Linear=nn.Linear, GroupNorm=nn.GroupNorm)


def timestep_embedding(
    timesteps: torch.Tensor, dim: int, max_period: float = 10000.0
) -> torch.Tensor:
    """Sinusoidal embedding of timesteps given on ComfyUI's 0..1000 scale."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period)
        * torch.arange(half, dtype=torch.float32, device=timesteps.device)
        / half
    )
    args = timesteps.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def group_count(channels: int) -> int:
    for groups in (8, 4, 2):
        if channels % groups == 0:
            return groups
    return 1


class ResBlock(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, time_dim: int, ops, dtype=None, device=None):
        super().__init__()
        kw = {"dtype": dtype, "device": device}
        self.norm1 = ops.GroupNorm(group_count(in_ch), in_ch, **kw)
        self.conv1 = ops.Conv2d(in_ch, out_ch, 3, padding=1, **kw)
        self.film = ops.Linear(time_dim, 2 * out_ch, **kw)
        self.norm2 = ops.GroupNorm(group_count(out_ch), out_ch, **kw)
        self.conv2 = ops.Conv2d(out_ch, out_ch, 3, padding=1, **kw)
        self.skip = ops.Conv2d(in_ch, out_ch, 1, **kw) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        scale, shift = self.film(temb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1 + scale) + shift
        h = self.conv2(nn.functional.silu(h))
        return self.skip(x) + h


class RelightNetwork(nn.Module):
    """What both networks share: ComfyUI's call, x0 as a flow velocity, the residual head.

    Subclasses build `conv_out` and implement `denoise`."""

    def __init__(
        self, out_channels: int, stem: int, predict_x0: bool, residual: str, timestep_scale: float
    ):
        super().__init__()
        self.out_channels = out_channels
        self.stem = stem
        self.predict_x0 = predict_x0
        self.residual = residual
        self.timestep_scale = timestep_scale

    @property
    def dtype(self) -> torch.dtype:
        return self.conv_out.weight.dtype

    def forward(
        self, x: torch.Tensor, timesteps: torch.Tensor, context=None, **_kwargs
    ) -> torch.Tensor:
        """ComfyUI's call. An x0-predicting network answers as a flow model: v = (x_t - x0) / sigma,
        which ComfyUI's flow sampling turns back into exactly x0 (denoised = x_t - sigma * v)."""
        out = self.denoise(x, timesteps)
        if not self.predict_x0:
            return out
        sigma = (timesteps.float() / self.timestep_scale).clamp_min(1e-4)[:, None, None, None]
        return (x[:, : self.out_channels] - out) / sigma.to(out.dtype)

    def denoise(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def residual_head(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """The answer from the head's output h and the conditioning image inside x."""
        if self.residual == "none":
            return h
        image = x[:, self.out_channels : 2 * self.out_channels]  # the conditioning image
        if self.residual == "add":
            return image + h
        # affine: a per-pixel gain and offset of the conditioning image in 0..1 units, so a
        # coarse network can re-shade fine texture it never has to reproduce itself
        gain, offset = h.chunk(2, dim=1)
        return ((image + 1) * (1 + gain) + 2 * offset) - 1


def head_channels(residual: str, out_channels: int) -> int:
    return (2 if residual == "affine" else 1) * out_channels


class RelightUNet(RelightNetwork):
    """Denoiser for x (latent_channels) concatenated with the spatial conditioning channels."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_channels: int = 32,
        channel_mult: list[int] | tuple[int, ...] = (1, 2, 4),
        num_blocks: int = 1,
        stem: int = 2,
        time_dim: int = 128,
        predict_x0: bool = False,
        residual: str = "none",
        timestep_scale: float = 1000.0,
        dtype=None,
        device=None,
        operations=None,
        **_ignored,
    ):
        super().__init__(out_channels, stem, predict_x0, residual, timestep_scale)
        ops = operations or TORCH_OPS
        kw = {"dtype": dtype, "device": device}
        self.time_dim = time_dim
        widths = [base_channels * m for m in channel_mult]

        self.time_mlp = nn.Sequential(
            ops.Linear(time_dim, time_dim, **kw), nn.SiLU(), ops.Linear(time_dim, time_dim, **kw)
        )
        self.conv_in = ops.Conv2d(in_channels * stem * stem, widths[0], 3, padding=1, **kw)
        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        ch = widths[0]
        for level, width in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(num_blocks):
                blocks.append(ResBlock(ch, width, time_dim, ops, **kw))
                ch = width
            self.down.append(blocks)
            if level < len(widths) - 1:
                self.downsample.append(ops.Conv2d(ch, ch, 3, stride=2, padding=1, **kw))
        self.mid = ResBlock(ch, ch, time_dim, ops, **kw)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(len(widths))):
            width = widths[level]
            self.up.append(ResBlock(ch + width, width, time_dim, ops, **kw))
            ch = width
            if level > 0:
                self.upsample.append(ops.Conv2d(ch, widths[level - 1], 3, padding=1, **kw))
                ch = widths[level - 1]
        self.norm_out = ops.GroupNorm(group_count(ch), ch, **kw)
        heads = head_channels(residual, out_channels)
        self.conv_out = ops.Conv2d(ch, heads * stem * stem, 3, padding=1, **kw)

    def denoise(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """The network's own output (x0 for an x0-predicting model), as training uses it."""
        temb = self.time_mlp(timestep_embedding(timesteps, self.time_dim).to(x.dtype))
        h = self.conv_in(nn.functional.pixel_unshuffle(x, self.stem))
        skips = []
        for level, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, temb)
            skips.append(h)
            if level < len(self.downsample):
                h = self.downsample[level](h)
        h = self.mid(h, temb)
        for i, block in enumerate(self.up):
            h = block(torch.cat([h, skips.pop()], dim=1), temb)
            if i < len(self.upsample):
                h = nn.functional.interpolate(h, scale_factor=2.0, mode="nearest")
                h = self.upsample[i](h)
        h = self.conv_out(nn.functional.silu(self.norm_out(h)))
        return self.residual_head(nn.functional.pixel_shuffle(h, self.stem), x)


def conv_norm_stack(in_ch: int, out_ch: int, depth: int, ops, **kw) -> nn.Sequential:
    """depth x (3x3 conv, GroupNorm, SiLU)."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers.append(ops.Conv2d(in_ch if i == 0 else out_ch, out_ch, 3, padding=1, **kw))
        layers += [ops.GroupNorm(group_count(out_ch), out_ch, **kw), nn.SiLU()]
    return nn.Sequential(*layers)


class RelightRegressor(RelightNetwork):
    """x0 from the conditioning channels alone: a plain conv-norm UNet (average-pool down,
    bilinear up, `num_blocks` pairs of convolutions per level) with a residual head.

    It never sees the noisy image or the timestep, so it is deterministic given its conditioning:
    sampled through ComfyUI, every step (and every sampler, scheduler and seed) gives one answer.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        base_channels: int = 16,
        channel_mult: list[int] | tuple[int, ...] = (1, 2, 4, 8, 12),
        num_blocks: int = 1,
        stem: int = 1,
        predict_x0: bool = True,
        residual: str = "add",
        timestep_scale: float = 1000.0,
        dtype=None,
        device=None,
        operations=None,
        **_ignored,
    ):
        super().__init__(out_channels, stem, predict_x0, residual, timestep_scale)
        ops = operations or TORCH_OPS
        kw = {"dtype": dtype, "device": device}
        widths = [base_channels * m for m in channel_mult]
        depth = 2 * num_blocks
        ch = (in_channels - out_channels) * stem * stem  # the conditioning channels only
        self.down = nn.ModuleList()
        for width in widths:
            self.down.append(conv_norm_stack(ch, width, depth, ops, **kw))
            ch = width
        self.up = nn.ModuleList()
        for width in reversed(widths[:-1]):
            self.up.append(conv_norm_stack(ch + width, width, depth, ops, **kw))
            ch = width
        self.conv_out = ops.Conv2d(ch, head_channels(residual, out_channels) * stem * stem, 1, **kw)

    def denoise(self, x: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        condition = x[:, self.out_channels :]
        h = nn.functional.pixel_unshuffle(condition, self.stem)
        skips = []
        for level, stack in enumerate(self.down):
            h = stack(h)
            if level < len(self.down) - 1:
                skips.append(h)
                h = nn.functional.avg_pool2d(h, 2)
        for stack in self.up:
            h = nn.functional.interpolate(h, scale_factor=2.0, mode="bilinear", align_corners=False)
            h = stack(torch.cat([h, skips.pop()], dim=1))
        h = nn.functional.pixel_shuffle(self.conv_out(h), self.stem)
        return self.residual_head(h, x)


def downscale_factor(stem: int, channel_mult: list[int] | tuple[int, ...]) -> int:
    """Image sides must be multiples of this for the skip connections to line up."""
    return stem * 2 ** (len(channel_mult) - 1)
