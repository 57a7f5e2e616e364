"""Non-blind dequantization: the smoothest image that still quantizes back to the banded one.

Classical dequantization by projection onto convex sets (POCS): alternate one step of heat diffusion (which
flattens the staircase of a banded ramp) with clipping every value back into its quantization cell, the
box of values that round to the code the banded image holds. The clean image lies in those boxes, so the
projection can only bring a channel closer to it. It needs the quantization grid, which a blind tool like
``deband`` does not have: ``python -m src.bench bound`` uses it as a reference for what knowing the grid
is worth, not as a method users could run on arbitrary banded files.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from kornia.color import rgb_to_ycbcr, ycbcr_to_rgb

from src.utils.errors import ConfigError
from src.utils.validate import check_int

__all__ = [
    "quantization_box",
    "ycbcr_box",
    "project",
    "consistent_smooth",
    "consistent_smooth_rgb",
    "consistent_smooth_ycbcr",
]


def _check_bits(name: str, bits: int) -> None:
    check_int(name, bits, 1, 16)


def quantization_box(codes: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The cell ``[lo, hi]`` of values that round to ``codes``: ``codes -+ 1 / (2 (2^bits - 1))``.

    ``codes``: any shape, values on a grid of step ``1 / (2^bits - 1)`` (:func:`src.data.degradations.quantize`
    or :func:`~src.data.degradations.quantize_chroma` output). Cells reaching past [0, 1] are left open
    outwards: clamping put everything beyond them there.
    """
    _check_bits("bits", bits)
    half = 0.5 / (2**bits - 1)
    lo, hi = codes - half, codes + half
    lo = torch.where(codes - half <= 1e-6, torch.full_like(lo, -float("inf")), lo)
    hi = torch.where(codes + half >= 1.0 - 1e-6, torch.full_like(hi, float("inf")), hi)
    return lo, hi


def ycbcr_box(banded: torch.Tensor, luma_bits: int, chroma_bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Cells in full-range YCbCr (kornia) of an image from :func:`src.data.degradations.quantize_ycbcr`.

    ``banded``: ``(B, 3, H, W)`` RGB in [0, 1]. Returns ``lo, hi`` ``(B, 3, H, W)`` in YCbCr.
    """
    _check_bits("luma_bits", luma_bits)
    _check_bits("chroma_bits", chroma_bits)
    ycc = rgb_to_ycbcr(banded.float())
    ly, hy = quantization_box(ycc[:, :1], luma_bits)
    lc, hc = quantization_box(ycc[:, 1:], chroma_bits)
    return torch.cat([ly, lc], 1), torch.cat([hy, hc], 1)


def project(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Clip ``x`` into ``[lo, hi]`` elementwise: the projection onto the consistent set."""
    return torch.maximum(torch.minimum(x, hi), lo)


def consistent_smooth(
    x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor, iters: int = 200, rate: float = 0.2
) -> torch.Tensor:
    """``iters`` rounds of 4-neighbour heat diffusion (``rate`` <= 0.25 keeps it stable), each projected
    into ``[lo, hi]``.

    ``x``, ``lo``, ``hi``: ``(B, C, H, W)``; ``x`` is the start (the banded image, or a model's output).
    The result lies in the box; with the clean image inside the box, each projection moves every value
    towards it or leaves it. After about ``iters * rate * 2`` px² of diffusion variance the ramps are flat
    staircases no more; far more iterations drift towards the flattest consistent image, which flattens
    real curvature too (optimal near 100-200 iterations on the benchmark photos).
    """
    check_int("iters", iters, 0)
    if not 0.0 < rate <= 0.25:
        raise ConfigError(f"rate must be in (0, 0.25] (stability of the explicit heat step), got {rate!r}")
    if not (x.shape == lo.shape == hi.shape) or x.ndim != 4:
        raise ConfigError(
            f"x, lo and hi must share one (B, C, H, W) shape, got {tuple(x.shape)}, "
            f"{tuple(lo.shape)}, {tuple(hi.shape)}"
        )
    x = project(x.float(), lo, hi)
    h, w = x.shape[-2:]
    for _ in range(iters):
        pad = F.pad(x, (1, 1, 1, 1), mode="replicate")
        lap = (
            pad[..., 1 : h + 1, 2:]
            + pad[..., 1 : h + 1, :w]
            + pad[..., 2:, 1 : w + 1]
            + pad[..., :h, 1 : w + 1]
            - 4 * x
        )
        x = project(x + rate * lap, lo, hi)
    return x


def consistent_smooth_rgb(
    banded: torch.Tensor, bits: int, start: torch.Tensor | None = None, iters: int = 200
) -> torch.Tensor:
    """:func:`consistent_smooth` in the RGB cells of a :func:`~src.data.degradations.quantize` image.

    ``banded`` (and ``start``, default ``banded``): ``(B, 3, H, W)`` RGB in [0, 1]. Returns RGB, clamped.
    """
    lo, hi = quantization_box(banded.float(), bits)
    return consistent_smooth((banded if start is None else start).float(), lo, hi, iters).clamp(0.0, 1.0)


def consistent_smooth_ycbcr(
    banded: torch.Tensor, luma_bits: int, chroma_bits: int, start: torch.Tensor | None = None, iters: int = 200
) -> torch.Tensor:
    """:func:`consistent_smooth` in the YCbCr cells of a :func:`~src.data.degradations.quantize_ycbcr` image.

    ``banded`` (and ``start``, default ``banded``): ``(B, 3, H, W)`` RGB in [0, 1]. Returns RGB, clamped.
    """
    lo, hi = ycbcr_box(banded, luma_bits, chroma_bits)
    x0 = rgb_to_ycbcr((banded if start is None else start).float())
    return ycbcr_to_rgb(consistent_smooth(x0, lo, hi, iters)).clamp(0.0, 1.0)
