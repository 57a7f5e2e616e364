"""Banding scores of one output, all taken on what an 8-bit file holds: the output rounded to 8 bits per RGB
channel, without dither.

CAMBI (:mod:`src.metrics.cambi`) only counts a pixel where it equals its right and bottom neighbours, so
dither, grain or any per-pixel noise hides banding from it: a dithered staircase scores about 0 with every
band still there. Rounding plainly first keeps the score honest; ``flat_noise`` then shows how much noise a
method adds in flat areas, which is what a low CAMBI could otherwise be bought with.

- :func:`banding_scores`: every score of one image, a ``dict[str, float]``;
- :class:`ChromaCAMBI`, :class:`FlatNoise`: the torchmetrics forms of the Cb/Cr CAMBI and ``flat_noise`` for
  :mod:`src.metrics.collection` (the luma CAMBI is :class:`~src.metrics.cambi.CAMBI`, which rounds the same way).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
import torchmetrics
from torch import Tensor

from src.metrics.cambi import cambi, rgb_to_luma_codes, round_rgb
from src.metrics.smooth_psnr import smooth_psnr

__all__ = [
    "PLANES",
    "FLAT_RANGE",
    "TEXTURE_STD",
    "round_8bit",
    "ycbcr_codes",
    "plane_cambi",
    "flat_noise",
    "texture_psnr",
    "banding_scores",
    "ChromaCAMBI",
    "FlatNoise",
]

#: plane name -> index in :func:`ycbcr_codes`' output
PLANES = {"y": 0, "cb": 1, "cr": 2}
#: a pixel is flat where the luma of the banded input spans at most this many 8-bit codes over its 3 x 3
FLAT_RANGE = 1
#: a pixel is textured where the banded input's luma std over its 9 x 9 is at least this many 8-bit codes
TEXTURE_STD = 6.0
#: PSNRs of error-free regions are capped here, so means over images stay finite (as smooth PSNR does)
MAX_PSNR = 100.0
KR, KB = 0.2126, 0.0722  # BT.709


def round_8bit(x: Tensor) -> Tensor:
    """``(..., 3, H, W)`` float in [0, 1] -> the same shape and dtype, on the 8-bit grid: ``round(255 x) / 255``
    after clamping to [0, 1], no dither (what writing an 8-bit file without dither does)."""
    return round_rgb(x, 8)


def ycbcr_codes(rgb: Tensor) -> Tensor:
    """BT.709 limited-range 8-bit code planes of an RGB image already on the 8-bit grid (:func:`round_8bit`).

    rgb: ``(3, H, W)`` or ``(B, 3, H, W)`` in [0, 1] -> ``(3, H, W)`` or ``(B, 3, H, W)`` int64 planes Y, Cb, Cr:
    ``Y = 16 + 219 Y'`` (:func:`~src.metrics.cambi.rgb_to_luma_codes`), ``Cb = 128 + 224 (B' - Y') / 1.8556``,
    ``Cr = 128 + 224 (R' - Y') / 1.5748``, each rounded half to even. Full resolution: no chroma subsampling.
    """
    if rgb.ndim not in (3, 4) or rgb.shape[-3] != 3:
        raise ValueError(f"ycbcr_codes: expected (3, H, W) or (B, 3, H, W), got {tuple(rgb.shape)}")
    x = rgb.to(torch.float64).clamp(0, 1)
    r, g, b = x[..., 0, :, :], x[..., 1, :, :], x[..., 2, :, :]
    luma = KR * r + (1 - KR - KB) * g + KB * b
    cb = torch.round(128 + 224 * (b - luma) / (2 * (1 - KB))).to(torch.int64)
    cr = torch.round(128 + 224 * (r - luma) / (2 * (1 - KR))).to(torch.int64)
    return torch.stack([rgb_to_luma_codes(rgb), cb, cr], dim=-3)


def plane_cambi(codes: Tensor, max_log_contrast: int = 2) -> float:
    """CAMBI of one 8-bit code plane ``(H, W)`` taken as a luma plane (libvmaf defaults otherwise).

    Chroma planes are scored the same way: a step of a few Cb or Cr codes across a flat wall is a colour
    blotch. Frames below libvmaf's 216-pixel minimum are scored anyway (``strict=False``).
    """
    return float(cambi(codes, max_log_contrast=max_log_contrast, strict=False))


def _psnr(mse: float) -> float:
    """PSNR in dB at data range 1, capped at :data:`MAX_PSNR`."""
    return MAX_PSNR if mse <= 10 ** (-MAX_PSNR / 10) else -10 * math.log10(mse)


def _luma(rgb: Tensor) -> Tensor:
    """``(3, H, W)`` -> ``(1, 1, H, W)`` float64 8-bit luma codes."""
    return rgb_to_luma_codes(rgb).to(torch.float64)[None, None]


def flat_mask(banded: Tensor) -> Tensor:
    """``(3, H, W)`` -> ``(H, W)`` bool: where the luma of ``banded`` spans at most :data:`FLAT_RANGE` codes over
    the 3 x 3 around the pixel (edge-replicated): the inside of its bands, away from their edges."""
    y = F.pad(_luma(banded), (1, 1, 1, 1), mode="replicate")
    span = F.max_pool2d(y, 3, stride=1) + F.max_pool2d(-y, 3, stride=1)
    return (span <= FLAT_RANGE)[0, 0]


def flat_noise(output: Tensor, banded: Tensor | None = None) -> float:
    """Mean ``|Y - mean_3x3(Y)|`` in 8-bit luma codes of ``output`` ``(3, H, W)`` (rounded to 8 bits), over the
    pixels that are flat in ``banded`` (:func:`flat_mask`; ``output`` itself when None). NaN if none is flat.

    The banded input scores about 0 (its bands are flat); a smooth ramp rounded to 8 bits a little (its 1-code
    steps); a dither of one code about 0.3 to 0.7, grain more. Read it beside the clean reference's own value.
    """
    mask = flat_mask(banded if banded is not None else output)
    if not bool(mask.any()):
        return float("nan")
    y = _luma(round_8bit(output))
    local = F.avg_pool2d(F.pad(y, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
    return float((y - local).abs()[0, 0][mask].mean())


def texture_mask(banded: Tensor) -> Tensor:
    """``(3, H, W)`` -> ``(H, W)`` bool: where the luma std of ``banded`` over the 9 x 9 around the pixel
    (reflect-padded) is at least :data:`TEXTURE_STD` codes: real detail, not bands."""
    y = F.pad(_luma(banded), (4, 4, 4, 4), mode="reflect")
    mean = F.avg_pool2d(y, 9, stride=1)
    var = (F.avg_pool2d(y * y, 9, stride=1) - mean * mean).clamp_min(0)
    return (var.sqrt() >= TEXTURE_STD)[0, 0]


def texture_psnr(output: Tensor, banded: Tensor) -> float:
    """PSNR (dB, RGB, data range 1) of ``output`` against ``banded``, both rounded to 8 bits, over the textured
    pixels (:func:`texture_mask`): how much detail a method keeps. Capped at 100 dB; NaN if nothing is textured.
    """
    mask = texture_mask(banded)
    if not bool(mask.any()):
        return float("nan")
    err = (round_8bit(output).double() - round_8bit(banded).double()) ** 2
    return _psnr(float(err[:, mask].mean()))


def banding_scores(output: Tensor, banded: Tensor | None = None, clean: Tensor | None = None) -> dict[str, float]:
    """Every banding score of one image, on ``output`` rounded to 8 bits without dither.

    Args:
        output: ``(3, H, W)`` RGB in [0, 1] (float: it is rounded here; any size, small ones included).
        banded: the ``(3, H, W)`` banded input it was restored from: the flat mask of ``flat_noise`` and the
            reference of ``texture_psnr``.
        clean: an optional ``(3, H, W)`` clean reference: adds ``psnr`` and ``psnr_smooth`` of the rounded output.

    Returns:
        ``cambi`` (luma, libvmaf defaults), ``cambi_mlc5`` (luma, ``max_log_contrast=5``: also the coarse steps
        of 4 to 6-bit banding), ``cambi_cb_mlc5``, ``cambi_cr_mlc5`` (the Cb and Cr planes scored as luma
        planes), ``flat_noise`` (:func:`flat_noise`), and with ``banded`` ``texture_psnr`` (:func:`texture_psnr`).
    """
    if output.ndim != 3 or output.shape[0] != 3:
        raise ValueError(f"banding_scores: expected output (3, H, W), got {tuple(output.shape)}")
    for name, ref in (("banded", banded), ("clean", clean)):
        if ref is not None and ref.shape != output.shape:
            raise ValueError(f"banding_scores: {name} is {tuple(ref.shape)}, output {tuple(output.shape)}")
    out8 = round_8bit(output.detach().cpu())
    codes = ycbcr_codes(out8)
    scores = {
        "cambi": plane_cambi(codes[0]),
        "cambi_mlc5": plane_cambi(codes[0], 5),
        "cambi_cb_mlc5": plane_cambi(codes[1], 5),
        "cambi_cr_mlc5": plane_cambi(codes[2], 5),
        "flat_noise": flat_noise(out8, None if banded is None else banded.detach().cpu()),
    }
    if banded is not None:
        scores["texture_psnr"] = texture_psnr(out8, banded.detach().cpu())
    if clean is not None:
        c = clean.detach().cpu().double()[None]
        scores["psnr"] = _psnr(float(((out8.double()[None] - c) ** 2).mean()))
        scores["psnr_smooth"] = float(smooth_psnr(out8[None].float(), c.float())[0])
    return scores


# --------------------------------------------------------------------------------------------------
# torchmetrics forms, for src.metrics.collection
# --------------------------------------------------------------------------------------------------
class _MeanScore(torchmetrics.Metric):
    """Mean of a per-image score over all images seen; NaN scores (nothing to measure) are left out."""

    is_differentiable = False
    higher_is_better = False
    full_state_update = False

    def __init__(self, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        self.add_state("score_sum", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
        self.add_state("count", default=torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def _add(self, scores: list[float]) -> None:
        kept = [s for s in scores if not math.isnan(s)]
        self.score_sum += torch.tensor(sum(kept), dtype=torch.float64, device=self.score_sum.device)
        self.count += len(kept)

    def compute(self) -> Tensor:
        if int(self.count) == 0:
            return torch.tensor(float("nan"), dtype=torch.float64)
        return self.score_sum / self.count


class ChromaCAMBI(_MeanScore):
    """Mean CAMBI of the Cb or Cr plane (:func:`plane_cambi`) of ``preds`` rounded to 8 bits.

    ``update(preds, target=None)``: preds ``(B, 3, H, W)`` RGB in [0, 1]; ``target`` is ignored.
    """

    def __init__(self, plane: str = "cb", max_log_contrast: int = 5, **kwargs) -> None:  # noqa: ANN003
        super().__init__(**kwargs)
        if plane not in ("cb", "cr"):
            raise ValueError(f"ChromaCAMBI: plane must be 'cb' or 'cr', got {plane!r}")
        self.plane, self.max_log_contrast = plane, max_log_contrast

    def update(self, preds: Tensor, target: Tensor | None = None) -> None:
        codes = ycbcr_codes(round_8bit(preds.detach().cpu()))[:, PLANES[self.plane]]
        self._add([plane_cambi(c, self.max_log_contrast) for c in codes])


class FlatNoise(_MeanScore):
    """Mean :func:`flat_noise` over images.

    ``update(preds, target=None, banded=None)``: preds and banded ``(B, 3, H, W)`` in [0, 1]; the flat mask
    comes from ``banded`` (``preds`` when None); ``target`` is ignored.
    """

    def update(self, preds: Tensor, target: Tensor | None = None, banded: Tensor | None = None) -> None:
        preds = preds.detach().cpu()
        masks = [None] * preds.shape[0] if banded is None else banded.detach().cpu()
        self._add([flat_noise(p, b) for p, b in zip(preds, masks)])
