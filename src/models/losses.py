"""Losses for debanding: the 2D-FFT loss with frequency weighting, pixel losses, SSIM, and their weighted sum.

All take ``pred`` and ``target`` ``(B, C, H, W)`` in [0, 1] and return a scalar; ``per_sample`` returns
one value per image ``(B,)``.
"""

from __future__ import annotations

from collections.abc import Mapping

import kornia
import torch
from torch import nn

from src.metrics.smooth_psnr import smooth_mask
from src.utils.errors import ConfigError

FREQ_WEIGHTINGS = ("none", "radial", "focal")


def radial_frequency(h: int, w: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """|f| ``(H, W)`` of each 2D-FFT bin, in cycles per pixel (0 at DC, sqrt(0.5) at the corner)."""
    fy = torch.fft.fftfreq(h, device=device)
    fx = torch.fft.fftfreq(w, device=device)
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


class LossTerm(nn.Module):
    """A loss term: :meth:`per_sample` ``(pred, target)`` ``(B, C, H, W)`` -> ``(B,)``, and ``forward`` its mean.
    The per-image values are what ``DebandLoss``'s ``normalize="input"`` divides by the input's own."""

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.per_sample(pred, target).mean()


class FFTLoss(LossTerm):
    """L1 on the real and imaginary parts of the orthonormal 2D FFT of ``pred - target``.

    Orthonormal scaling (Parseval) keeps the loss independent of the image size.

    Args:
        freq_weighting: ``none``; ``radial``: weight (|f| / f_max)^alpha, normalised to mean 1, so high
            frequencies (where band edges live) count more; ``focal``: the focal frequency loss of
            Jiang et al. 2021, weight = (|F(pred) - F(target)| / its max per image)^alpha, detached, so the
            hardest frequencies of each image count most.
        alpha: the exponent of the weighting.
    """

    def __init__(self, freq_weighting: str = "none", alpha: float = 1.0) -> None:
        super().__init__()
        if freq_weighting not in FREQ_WEIGHTINGS:
            raise ConfigError(
                f"loss.freq_weighting must be one of {', '.join(FREQ_WEIGHTINGS)}; got {freq_weighting!r}"
            )
        if alpha < 0:
            raise ConfigError(f"loss.alpha must be >= 0, got {alpha}")
        self.freq_weighting = freq_weighting
        self.alpha = float(alpha)

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        # FFT in float32: bfloat16/half FFTs are unsupported or inaccurate on CPU
        diff = torch.fft.fft2((pred - target).float(), norm="ortho")
        dist = diff.real.abs() + diff.imag.abs()
        if self.freq_weighting == "radial":
            f = radial_frequency(*pred.shape[-2:], device=pred.device)
            wgt = (f / f.max().clamp_min(1e-12)) ** self.alpha
            dist = dist * (wgt / wgt.mean().clamp_min(1e-12))
        elif self.freq_weighting == "focal":
            mag = diff.abs().detach()
            dist = dist * (mag / mag.flatten(-2).amax(-1)[..., None, None].clamp_min(1e-12)) ** self.alpha
        return dist.flatten(1).mean(1)


class CharbonnierLoss(LossTerm):
    """sqrt((pred - target)^2 + eps^2), a smooth L1."""

    def __init__(self, eps: float = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return torch.sqrt((pred - target) ** 2 + self.eps**2).flatten(1).mean(1)


class PixelLoss(LossTerm):
    """Mean |pred - target|^p: p = 1 (L1) or 2 (L2)."""

    def __init__(self, p: int = 1) -> None:
        super().__init__()
        self.p = p

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        d = (pred - target).abs()
        return (d if self.p == 1 else d * d).flatten(1).mean(1)


class SSIMLoss(LossTerm):
    """1 - SSIM (kornia), as a loss."""

    def __init__(self, window_size: int = 11) -> None:
        super().__init__()
        self.window_size = window_size

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        ssim = kornia.metrics.ssim(pred.float(), target.float(), self.window_size)
        return (1.0 - ssim).flatten(1).mean(1)


class FlatL1Loss(LossTerm):
    """L1 over the pixels where the target is locally flat, 0 elsewhere, averaged over all pixels.

    Added to the other terms it weights the flat regions (skies, walls: where banding is seen) more than
    texture, whose quantization error no method can undo and which otherwise dominates pixel losses on
    photo crops. "Flat" is the smooth-region PSNR's own mask (:func:`~src.metrics.smooth_psnr.smooth_mask`:
    7 x 7 luma std of the target < 0.01).
    """

    def per_sample(self, pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            mask = smooth_mask(target).to(pred.dtype)
        return ((pred - target).abs() * mask).flatten(1).mean(1)


TERMS = ("fft", "l1", "l2", "charbonnier", "ssim", "flat_l1")
NORMALIZE = ("none", "input")


class DebandLoss(nn.Module):
    """A weighted sum of loss terms from config, e.g. ``weights={"fft": 1.0, "l1": 0.5}``.

    ``forward(pred, target, reference=None)`` returns ``(total, {term: value})`` so each term can be logged.

    ``normalize="input"`` divides each image's loss by the same loss of ``reference`` (the banded input)
    plus ``normalize_eps``: every image then counts by how much of *its own* degradation is removed. Plain
    losses are dominated by the most degraded images (4 bits, textures whose quantization error cannot be
    undone), while mean PSNR, what validation reports, is a log scale on which a lightly banded image
    (6 bits, 47 dB) loses as many dB from a faint halo as a heavily banded one gains from debanding.
    """

    def __init__(
        self,
        weights: Mapping[str, float] | None = None,
        freq_weighting: str = "none",
        alpha: float = 1.0,
        charbonnier_eps: float = 1e-3,
        ssim_window: int = 11,
        normalize: str = "none",
        normalize_eps: float = 5e-4,
    ) -> None:
        super().__init__()
        if normalize not in NORMALIZE:
            raise ConfigError(f"loss.normalize must be one of {', '.join(NORMALIZE)}; got {normalize!r}")
        if not normalize_eps > 0:
            raise ConfigError(f"loss.normalize_eps must be > 0, got {normalize_eps}")
        self.normalize = normalize
        self.normalize_eps = float(normalize_eps)
        weights = dict(weights or {"fft": 1.0})
        unknown = sorted(set(weights) - set(TERMS))
        if unknown:
            raise ConfigError(
                f"unknown loss term(s) {', '.join(map(repr, unknown))} in loss.weights; choose from {', '.join(TERMS)}"
            )
        weights = {k: float(v) for k, v in weights.items() if v}
        if not weights or any(v < 0 for v in weights.values()):
            raise ConfigError(f"loss.weights needs at least one positive weight and none negative; got {weights}")
        self.weights = weights
        self.terms = nn.ModuleDict()
        for name in weights:
            if name == "fft":
                self.terms[name] = FFTLoss(freq_weighting, alpha)
            elif name == "l1":
                self.terms[name] = PixelLoss(1)
            elif name == "l2":
                self.terms[name] = PixelLoss(2)
            elif name == "charbonnier":
                self.terms[name] = CharbonnierLoss(charbonnier_eps)
            elif name == "flat_l1":
                self.terms[name] = FlatL1Loss()
            else:
                self.terms[name] = SSIMLoss(ssim_window)
        if "fft" not in weights and freq_weighting != "none":
            FFTLoss(freq_weighting, alpha)  # still validate the value a sweep may set

    def forward(
        self, pred: torch.Tensor, target: torch.Tensor, reference: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``pred``, ``target``, ``reference`` ``(B, C, H, W)``; ``reference`` is needed by ``normalize="input"``."""
        per = {name: term.per_sample(pred, target) for name, term in self.terms.items()}
        parts = {name: v.mean() for name, v in per.items()}
        if self.normalize == "none":
            return sum(self.weights[n] * parts[n] for n in parts), parts
        if reference is None:
            raise ValueError("loss.normalize='input' needs the banded reference image")
        with torch.no_grad():
            ref = {name: term.per_sample(reference, target) for name, term in self.terms.items()}
        total = sum(self.weights[n] * (per[n] / (ref[n] + self.normalize_eps)).mean() for n in per)
        return total, parts
