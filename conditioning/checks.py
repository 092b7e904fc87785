"""Input checks every entry point shares: finite values and workable sizes, each error naming
the input it is about. Plain torch: the nodes, the CLI and the tests call the same functions."""

from __future__ import annotations

from torch import Tensor, isfinite

# The largest photo the pack works on. Crops are planned on the full image, so a bigger one
# costs gigabytes before any model runs; refused where the image enters, before that.
MAX_SIDE = 16384
MAX_MEGAPIXELS = 268.0


def require_finite(name: str, tensor: Tensor | None) -> None:
    """NaN or infinity in an image or mask turns the repaint black while the run 'succeeds'."""
    if tensor is None or not tensor.is_floating_point():
        return
    bad = int((~isfinite(tensor)).sum())
    if bad:
        raise ValueError(
            f"{name}: {bad} of {tensor.numel()} values are NaN or infinite; expected finite "
            "numbers (an IMAGE in 0..1, a MASK in 0..1)"
        )


def require_workable_size(
    name: str,
    height: int,
    width: int,
    max_side: int = MAX_SIDE,
    max_megapixels: float = MAX_MEGAPIXELS,
) -> None:
    """Refuse a size the pack cannot work on, from its shape alone (nothing allocated yet)."""
    if height < 1 or width < 1:
        raise ValueError(f"{name}: the image is {width}x{height} px; expected at least 1x1")
    megapixels = height * width / 1e6
    if max(height, width) > max_side or megapixels > max_megapixels:
        raise ValueError(
            f"{name}: the image is {width}x{height} px ({megapixels:.1f} MP); the limit is "
            f"{max_side} px a side and {max_megapixels:g} MP: scale it down first"
        )


def require_photo(image: Tensor, mask: Tensor | None = None) -> None:
    """The checks every node that takes a photo (IMAGE [B,H,W,C]) and its MASK starts with."""
    if image.ndim != 4 or image.shape[-1] not in (3, 4):
        raise ValueError(f"image: expected shape [B, H, W, 3] or RGBA, got {list(image.shape)}")
    require_workable_size("image", *image.shape[1:3])
    require_finite("image", image)
    require_finite("mask", mask)
