"""The guided filter (He, Sun & Tang 2010), luma-guided: more candidates for the blend head.

Why: a blur is the right fix where a band's whole ramp lies in its window, but colour banding is often
coarser in chroma than in luma (YCbCr 6/5 bits, 4:2:0 codecs): the chroma bands are wider than any blur
that stays off the edges. Locally, the colour channels are close to linear in the luma
(``c = a * Y + b`` over a window), and the luma has the finer steps, so regressing each channel on the luma
over a window gives the colour the luma's finer ramp; ``eps`` sets where that fit gives way to the window's
mean (a region flatter than ``sqrt(eps)``) and keeps real edges (variance well above ``eps``).

Box means are computed from cumulative sums, so any radius costs the same few operations per pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["box_mean", "guided_filter", "guided_scale", "linear_fit", "luma"]


def luma(x: torch.Tensor) -> torch.Tensor:
    """BT.601 luma ``(B, 1, H, W)`` of ``(B, 3, H, W)`` RGB."""
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def box_mean(x: torch.Tensor, r: int) -> torch.Tensor:
    """Mean over the ``(2r + 1)^2`` window around every pixel of ``(B, C, H, W)``, edges replicated."""
    if r <= 0:
        return x
    k = 2 * r + 1
    # replicate padding keeps the window full-size at the borders (reflect needs r < H, W)
    xp = F.pad(x, (r + 1, r, r + 1, r), mode="replicate")
    # cumulative sums in float64: a 4K row's sum would lose the few-codes differences in float32
    c = xp.double().cumsum(-1)
    c = c[..., k:] - c[..., :-k]
    c = c.cumsum(-2)
    c = c[..., k:, :] - c[..., :-k, :]
    return (c / (k * k)).to(x.dtype)


def guided_filter(
    x: torch.Tensor, r: int, eps: float, guide: torch.Tensor | None = None, scale: int = 1
) -> torch.Tensor:
    """Each channel of ``x`` ``(B, C, H, W)`` guided by ``guide`` ``(B, 1, H, W)`` (default: the luma of ``x``),
    box radius ``r``, regularisation ``eps`` (a variance, in [0, 1] units squared).

    ``scale`` > 1 is the fast guided filter (He & Sun 2015): the linear coefficients are fitted on copies
    shrunk by ``scale`` (radius ``r / scale``) and applied, upsampled bilinearly, to the full-size guide:
    ``scale^2`` times less work, and the coefficients vary smoothly anyway.
    """
    g = luma(x) if guide is None else guide
    h, w = x.shape[-2:]
    if scale > 1 and min(h, w) >= 2 * scale:
        size = (max(1, round(h / scale)), max(1, round(w / scale)))
        xs, gs = F.interpolate(x, size=size, mode="area"), F.interpolate(g, size=size, mode="area")
        a, b = _coefficients(xs, gs, max(1, round(r / scale)), eps)
        a = F.interpolate(a, size=(h, w), mode="bilinear", align_corners=False)
        b = F.interpolate(b, size=(h, w), mode="bilinear", align_corners=False)
        return a * g + b
    a, b = _coefficients(x, g, r, eps)
    return a * g + b


def guided_scale(r: int) -> int:
    """The fast form's subsampling for radius ``r``: none below 4, 2 below 8, then 4 (so the shrunk windows
    keep a radius of at least 2)."""
    return 1 if r < 4 else 2 if r < 8 else 4


def linear_fit(
    x: torch.Tensor, g: torch.Tensor, r: int, eps: float, residual: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``a``, ``b`` of ``x ~ a * g + b`` fitted (ridge ``eps`` on ``a``) over the ``(2r + 1)^2`` window around
    every pixel of ``x`` ``(B, C, H, W)`` and ``g`` ``(B, 1, H, W)``; with ``residual``, also the variance of
    ``x`` the line leaves unexplained there (else None)."""
    mean_g = box_mean(g, r)
    mean_x = box_mean(x, r)
    cov = box_mean(g * x, r) - mean_g * mean_x
    var = box_mean(g * g, r) - mean_g * mean_g
    a = cov / (var.clamp_min(0) + eps)
    b = mean_x - a * mean_g
    if not residual:
        return a, b, None
    return a, b, (box_mean(x * x, r) - mean_x * mean_x - a * cov).clamp_min(0)


def _coefficients(x: torch.Tensor, g: torch.Tensor, r: int, eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The window-averaged ``a``, ``b`` of ``x ~ a * g + b`` fitted over each ``(2r + 1)^2`` window."""
    a, b, _ = linear_fit(x, g, r, eps)
    return box_mean(a, r), box_mean(b, r)
