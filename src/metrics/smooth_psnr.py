"""PSNR over the smooth regions of the clean image, where banding lives.

Whole-image PSNR dilutes what happens in skies and walls with textured regions whose quantization error no
method can undo; this metric only counts the pixels where the clean image is locally flat.
"""

from __future__ import annotations

import kornia
import torch
from torchmetrics import Metric


def smooth_mask(clean: torch.Tensor, window: int = 7, threshold: float = 0.01) -> torch.Tensor:
    """Where the clean image is locally flat: local std of its luma over ``window`` x ``window`` < ``threshold``.

    Args:
        clean: ``(B, 3, H, W)`` (or ``(B, 1, H, W)``) in [0, 1].
    Returns:
        ``(B, 1, H, W)`` bool.
    """
    luma = kornia.color.rgb_to_grayscale(clean.float()) if clean.shape[1] == 3 else clean.float()
    k = (window, window)
    mean = kornia.filters.box_blur(luma, k, border_type="reflect")
    sq = kornia.filters.box_blur(luma * luma, k, border_type="reflect")
    std = (sq - mean * mean).clamp_min(0).sqrt()
    return std < threshold


def smooth_psnr(
    pred: torch.Tensor,
    clean: torch.Tensor,
    window: int = 7,
    threshold: float = 0.01,
    data_range: float = 1.0,
    min_fraction: float = 0.01,
) -> torch.Tensor:
    """Per-image PSNR ``(B,)`` over the smooth pixels of ``clean``; NaN where under ``min_fraction`` is smooth.

    Args:
        pred, clean: ``(B, C, H, W)`` in [0, data_range].
    """
    mask = smooth_mask(clean, window, threshold).expand_as(clean).float()
    se = ((pred.float() - clean.float()) ** 2 * mask).flatten(1).sum(1)
    n = mask.flatten(1).sum(1)
    mse = se / n.clamp_min(1)
    psnr = 10 * torch.log10(data_range**2 / mse.clamp_min(1e-12))
    # an error-free smooth region is capped at 100 dB so a mean over images stays finite
    psnr = psnr.clamp(max=100.0)
    return torch.where(n >= min_fraction * mask[0].numel(), psnr, torch.full_like(psnr, float("nan")))


class SmoothRegionPSNR(Metric):
    """Mean over images of :func:`smooth_psnr`; images with too few smooth pixels are left out."""

    higher_is_better = True
    full_state_update = False

    def __init__(
        self, window: int = 7, threshold: float = 0.01, data_range: float = 1.0, min_fraction: float = 0.01, **kwargs
    ) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self.window, self.threshold, self.data_range, self.min_fraction = window, threshold, data_range, min_fraction
        self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        values = smooth_psnr(preds, target, self.window, self.threshold, self.data_range, self.min_fraction)
        ok = ~torch.isnan(values)
        self.total += values[ok].double().sum()
        self.count += ok.sum()

    def compute(self) -> torch.Tensor:
        if self.count == 0:
            return torch.tensor(float("nan"))
        return (self.total / self.count).float()
