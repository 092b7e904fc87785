"""An exemplar fill of the masked region: the hole is rebuilt from patches of the image itself
(Wexler, Shechtman & Irani's space-time completion, with PatchMatch as the patch search), coarse
to fine, then re-lit: its low frequencies are taken from the border's smooth interpolation, so a
patch copied from a brighter or darker part of the scene takes the light of the place it lands.

Why not OpenCV: `xphoto`'s FSR lives in opencv-contrib, whose wheel clashes with the plain
opencv wheels users already have (both install `cv2`). This is pure torch and needs no weights;
on a 2-core CPU it takes under a second for a 256 px scene and a few seconds for a 512 px one.
The push-pull fill stays as the smooth interpolation it starts from and re-lights with
(conditioning/prefill).

PatchMatch here is the parallel form (every target patch updated at once from its four
neighbours at growing jumps, then a random search at shrinking radii), so it vectorises in torch
instead of the original's scan-line order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from ..lighting.progress import Tick, advance
from .composite import size_within
from .filters import gaussian_blur
from .prefill import push_pull_fill

PATCH = 7  # patch side at every level (odd)
COARSEST_SIDE = 24  # the pyramid stops when the shorter side would drop below this
EM_ITERATIONS = 4  # search + vote rounds at the coarsest level
SEARCH_ITERATIONS = 3  # PatchMatch rounds per search there
# Finer levels start from the coarser field doubled, which is already close: fewer rounds and a
# local reach (px) keep a 512 px fill to seconds on a CPU instead of most of a minute.
FINE_EM_ITERATIONS = 2
FINE_SEARCH_ITERATIONS = 1
FINE_REACH = 16
RELIGHT_SIGMA = 4.0  # low-pass width of the re-lighting, in patches
CONTEXT = 32  # px around the hole that patches may come from, at least
WORK_SIDE = 512  # a larger hole and its context are filled at this longer side, then resized


def exemplar_fill(image: Tensor, known: Tensor, seed: int = 0, tick: Tick = None) -> Tensor:
    """Fill where known == 0 (image [B,C,H,W], known [B,1,H,W]); known pixels stay unchanged.
    Deterministic for a seed. Falls back to the push-pull fill where the image has no complete
    patch outside the hole to copy from. `tick` is called exemplar_fill_rounds(known) times,
    once per search-and-vote round (lighting/progress)."""
    known = (known > 0.5).to(image.dtype)
    smooth = push_pull_fill(image, known)
    generator = torch.Generator(device="cpu").manual_seed(seed)
    filled = smooth.clone()
    for b in range(image.shape[0]):
        box = hole_context(known[b, 0] > 0)
        if box is None:
            continue
        rows, cols = box
        crop = smooth[b, :, rows, cols].float().cpu()
        crop_known = known[b, 0, rows, cols].cpu() > 0
        work = _fill_at_work_size(crop, crop_known, generator, tick)
        filled[b, :, rows, cols] = work.to(filled)
    relit = relight_to(filled, smooth, known)
    return torch.where(known > 0, image, relit)


def exemplar_fill_rounds(known: Tensor) -> int:
    """How many rounds exemplar_fill makes for `known` [B,1,H,W] (its progress bar's length)."""
    rounds = 0
    for one in known[:, 0] > 0.5:
        box = hole_context(one)
        if box is not None:
            rows, cols = box
            rounds += _planned_rounds(one[rows, cols].shape)
    return rounds


def _planned_rounds(shape: tuple[int, int]) -> int:
    """Search-and-vote rounds for a hole's context of `shape`: EM_ITERATIONS at the coarsest
    pyramid level, FINE_EM_ITERATIONS at each finer one (as _fill_at_work_size and _pyramid)."""
    side = min(size_within(*shape, WORK_SIDE))
    levels = 1
    while side // 2 >= COARSEST_SIDE:
        side = -(-side // 2)  # the pyramid's pooling rounds up
        levels += 1
    return EM_ITERATIONS + FINE_EM_ITERATIONS * (levels - 1)


def hole_context(known: Tensor) -> tuple[slice, slice] | None:
    """The hole's bounding box grown by its own size on every side (at least CONTEXT px):
    where the patches are copied from. Nearby texture is the likeliest match, and the work (and
    memory) stays bounded by the hole, not the photo."""
    hole = ~known
    if not bool(hole.any()):
        return None
    ys, xs = hole.any(1).nonzero()[:, 0], hole.any(0).nonzero()[:, 0]
    top, bottom, left, right = int(ys[0]), int(ys[-1]) + 1, int(xs[0]), int(xs[-1]) + 1
    margin_y = max(bottom - top, CONTEXT)
    margin_x = max(right - left, CONTEXT)
    height, width = known.shape
    return (
        slice(max(0, top - margin_y), min(height, bottom + margin_y)),
        slice(max(0, left - margin_x), min(width, right + margin_x)),
    )


def _fill_at_work_size(
    crop: Tensor, known: Tensor, generator: torch.Generator, tick: Tick = None
) -> Tensor:
    """_fill_one on the crop, shrunk first when its longer side exceeds WORK_SIDE."""
    size = size_within(*known.shape, WORK_SIDE)
    if size == tuple(known.shape):
        return _fill_one(crop, known, generator, tick)
    small = F.interpolate(crop[None], size=size, mode="area")[0]
    small_known = F.interpolate(known[None, None].float(), size=size, mode="area")[0, 0] > 0.999
    filled = _fill_one(small, small_known, generator, tick)
    return F.interpolate(filled[None], size=tuple(known.shape), mode="bicubic")[0]


def relight_to(filled: Tensor, smooth: Tensor, known: Tensor) -> Tensor:
    """The fill with its low frequencies replaced by the smooth fill's: texture from the
    exemplars, shading from the hole's border. The low-pass is normalised over the hole only,
    so the known surroundings do not leak into it twice."""
    sigma = RELIGHT_SIGMA * PATCH
    hole = 1.0 - known
    coverage = gaussian_blur(hole, sigma).clamp_min(1e-4)
    low_filled = gaussian_blur(filled * hole, sigma) / coverage
    low_smooth = gaussian_blur(smooth * hole, sigma) / coverage
    return filled + (low_smooth - low_filled)


def _pyramid(image: Tensor, known: Tensor) -> list[tuple[Tensor, Tensor]]:
    """Finest first. A coarse pixel is known only when all four of its fine pixels are."""
    levels = [(image, known)]
    while min(levels[-1][0].shape[-2:]) // 2 >= COARSEST_SIDE:
        values, mask = levels[-1]
        weight = mask.to(values.dtype)[None, None]
        total = F.avg_pool2d(values[None] * weight, 2, ceil_mode=True)
        count = F.avg_pool2d(weight, 2, ceil_mode=True)
        coarse_known = count[0, 0] > 0.999
        coarse = torch.where(coarse_known, total[0] / count[0].clamp_min(1e-8), 0.0)
        coarse = F.interpolate(values[None], size=coarse_known.shape, mode="area")[0].where(
            ~coarse_known, coarse
        )
        levels.append((coarse, coarse_known))
    return levels


def _fill_one(
    image: Tensor, known: Tensor, generator: torch.Generator, tick: Tick = None
) -> Tensor:
    """image [C,H,W] (hole already smoothly filled), known [H,W] bool. Ticks
    _planned_rounds(known.shape) times, a fill cut short included."""
    planned = _planned_rounds(tuple(known.shape))
    if bool(known.all()):
        advance(tick, planned)
        return image
    levels = _pyramid(image, known)
    estimate, nnf, done = levels[-1][0], None, 0
    for depth, (values, mask) in enumerate(reversed(levels)):
        if estimate.shape[-2:] != values.shape[-2:]:
            up = F.interpolate(estimate[None], size=values.shape[-2:], mode="bilinear")[0]
            estimate = torch.where(mask, values, up)
        level = _Level(values, mask, generator)
        if level.sources.numel() == 0:
            advance(tick, planned - done)
            return image  # nothing complete to copy from: keep the smooth fill
        nnf = level.initial_nnf(nnf)
        coarsest = depth == 0
        rounds = SEARCH_ITERATIONS if coarsest else FINE_SEARCH_ITERATIONS
        reach = max(values.shape[-2:]) if coarsest else FINE_REACH
        for _ in range(EM_ITERATIONS if coarsest else FINE_EM_ITERATIONS):
            nnf, cost = level.search(estimate, nnf, rounds, reach)
            estimate = torch.where(mask, values, level.vote(estimate, nnf, cost))
            advance(tick)
            done += 1
        nnf = level.full_field(nnf)
    return _copy_centres(estimate, known, nnf)


def _copy_centres(estimate: Tensor, known: Tensor, nnf: Tensor) -> Tensor:
    """Each hole pixel set to its best match's centre pixel. The votes average overlapping
    patches, which blurs a texture that is matched a little out of phase (stripes turn to haze);
    the final copy keeps it sharp."""
    flat = estimate.flatten(1)
    copied = flat[:, nnf.clamp_min(0)]
    hole = (nnf >= 0) & ~known.flatten()
    return torch.where(hole, copied, flat).view_as(estimate)


class _Level:
    """One pyramid level: which patches may be copied (sources, entirely known) and which must
    be matched (targets, touching the hole). A nearest-neighbour field (nnf) maps each target to
    a source centre as a flat index into the level's padded grid."""

    def __init__(self, values: Tensor, known: Tensor, generator: torch.Generator) -> None:
        self.height, self.width = known.shape
        self.radius = PATCH // 2
        self.generator = generator
        hole = (~known).to(values.dtype)[None, None]
        touching = F.max_pool2d(hole, PATCH, stride=1, padding=self.radius)[0, 0] > 0
        padded_known = F.pad(known.to(values.dtype)[None, None], (self.radius,) * 4, value=0.0)
        complete = -F.max_pool2d(-padded_known, PATCH, stride=1)[0, 0] > 0.5
        self.targets = touching.flatten().nonzero()[:, 0]
        self.sources = complete.flatten().nonzero()[:, 0]
        self.is_source = complete.flatten()

    def _features(self, estimate: Tensor) -> Tensor:
        """What patches are matched by: every other pixel of each patch (a 4x4 grid over its
        7x7 span), a third of the numbers to compare for nearly the same matches."""
        padded = F.pad(estimate[None], (self.radius,) * 4, mode="reflect")
        return F.unfold(padded, (PATCH + 1) // 2, dilation=2)[0].T.contiguous()

    def _patches(self, estimate: Tensor) -> Tensor:
        padded = F.pad(estimate[None], (self.radius,) * 4, mode="reflect")
        return F.unfold(padded, PATCH)[0].T.contiguous()  # [H*W, C*P*P]: rows gather fast

    def _random_sources(self, count: int) -> Tensor:
        pick = torch.randint(len(self.sources), (count,), generator=self.generator)
        return self.sources[pick.to(self.sources.device)]

    def full_field(self, nnf: Tensor) -> Tensor:
        """The targets' sources on the whole grid (-1 where a pixel is no target)."""
        full = torch.full((self.height * self.width,), -1, dtype=torch.long)
        full[self.targets] = nnf
        return full

    def initial_nnf(self, coarser: Tensor | None) -> Tensor:
        """Random sources, or the coarser level's field (full_field) doubled where that lands
        on a source."""
        nnf = self._random_sources(len(self.targets))
        if coarser is None:
            return nnf
        coarse_width = (self.width + 1) // 2
        ty, tx = self.targets // self.width, self.targets % self.width
        coarse_target = (ty // 2) * coarse_width + (tx // 2)
        source = coarser[coarse_target.clamp(max=len(coarser) - 1)]
        sy = (source // coarse_width) * 2 + ty % 2
        sx = (source % coarse_width) * 2 + tx % 2
        inside = (sy < self.height) & (sx < self.width) & (source >= 0)
        doubled = sy.clamp(max=self.height - 1) * self.width + sx.clamp(max=self.width - 1)
        usable = inside & self.is_source[doubled]
        return torch.where(usable, doubled, nnf)

    def search(
        self, estimate: Tensor, nnf: Tensor, rounds: int, reach: int
    ) -> tuple[Tensor, Tensor]:
        """The field improved by `rounds` of PatchMatch (propagation and random search up to
        `reach` px), and each target's patch cost."""
        patches = self._features(estimate)
        wanted = patches[self.targets]
        best = nnf.clone()
        cost = self._cost(patches, wanted, best)
        ty, tx = self.targets // self.width, self.targets % self.width
        full = torch.full((self.height * self.width,), -1, dtype=torch.long)
        for _ in range(rounds):
            jump = 1
            while jump < reach:
                full[self.targets] = best
                for dy, dx in ((0, jump), (0, -jump), (jump, 0), (-jump, 0)):
                    candidate = self._propagated(full, ty, tx, dy, dx)
                    best, cost = self._keep_better(patches, wanted, best, cost, candidate)
                jump *= 2
            radius = reach
            while radius >= 1:
                candidate = self._jittered(best, radius)
                best, cost = self._keep_better(patches, wanted, best, cost, candidate)
                radius //= 2
        return best, cost

    def _cost(self, patches: Tensor, wanted: Tensor, candidate: Tensor) -> Tensor:
        cost = (patches[candidate.clamp_min(0)] - wanted).square().sum(1)
        valid = (candidate >= 0) & self.is_source[candidate.clamp_min(0)]
        return torch.where(valid, cost, torch.inf)

    def _keep_better(self, patches, wanted, best, cost, candidate):
        """Only candidates that are new and copyable are scored: once the field settles, most
        propagated candidates are the current match, and scoring is the search's whole cost."""
        safe = candidate.clamp_min(0)
        fresh = ((candidate >= 0) & self.is_source[safe] & (candidate != best)).nonzero()[:, 0]
        if fresh.numel() == 0:
            return best, cost
        copied = patches.index_select(0, safe.index_select(0, fresh))
        new_cost = (copied - wanted.index_select(0, fresh)).square().sum(1)
        better = new_cost < cost[fresh]
        chosen = fresh[better]
        best, cost = best.clone(), cost.clone()
        best[chosen] = candidate[chosen]
        cost[chosen] = new_cost[better]
        return best, cost

    def _propagated(self, full: Tensor, ty: Tensor, tx: Tensor, dy: int, dx: int) -> Tensor:
        """The neighbour's source, shifted back by the neighbour's offset (coherent copying)."""
        ny, nx = ty + dy, tx + dx
        inside = (ny >= 0) & (ny < self.height) & (nx >= 0) & (nx < self.width)
        neighbour = full[(ny.clamp(0, self.height - 1) * self.width + nx.clamp(0, self.width - 1))]
        sy, sx = neighbour // self.width - dy, neighbour % self.width - dx
        ok = inside & (neighbour >= 0) & (sy >= 0) & (sy < self.height)
        ok &= (sx >= 0) & (sx < self.width)
        return torch.where(
            ok, sy.clamp(0, self.height - 1) * self.width + sx.clamp(0, self.width - 1), -1
        )

    def _jittered(self, best: Tensor, radius: int) -> Tensor:
        offsets = torch.randint(-radius, radius + 1, (2, len(best)), generator=self.generator)
        sy = (best // self.width + offsets[0]).clamp(0, self.height - 1)
        sx = (best % self.width + offsets[1]).clamp(0, self.width - 1)
        return sy * self.width + sx

    def vote(self, estimate: Tensor, nnf: Tensor, cost: Tensor) -> Tensor:
        """Every pixel: the weighted mean of what each overlapping target patch's match puts
        there (well-matched patches weigh more, Wexler's similarity weights)."""
        patches = self._patches(estimate)
        finite = cost[torch.isfinite(cost)]
        scale = (
            finite.quantile(0.75).clamp_min(1e-6) if finite.numel() else estimate.new_tensor(1.0)
        )
        weight = torch.exp(-cost / (2 * scale)).nan_to_num(0.0)
        copied = torch.zeros_like(patches)
        weights = torch.zeros(patches.shape[0], dtype=patches.dtype)
        copied[self.targets] = patches[nnf.clamp_min(0)] * weight[:, None]
        weights[self.targets] = weight
        size = (self.height + 2 * self.radius, self.width + 2 * self.radius)
        total = F.fold(copied.T[None], size, PATCH)[0]
        count = F.fold(weights.expand(PATCH * PATCH, -1)[None], size, PATCH)[0]
        crop = (slice(None), slice(self.radius, -self.radius), slice(self.radius, -self.radius))
        total, count = total[crop], count[crop]
        return torch.where(count > 1e-8, total / count.clamp_min(1e-8), estimate)
