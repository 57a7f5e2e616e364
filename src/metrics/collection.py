"""The restoration metrics logged everywhere (validation, test, src.eval), built in one place.

Every banding score (CAMBI on luma, Cb and Cr, ``flat_noise``) is taken on the output rounded to 8 bits per
channel without dither (:mod:`src.metrics.banding`): dither would hide the bands from CAMBI.
"""

from __future__ import annotations

from collections.abc import Mapping

from torch import Tensor
from torchmetrics import Metric, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from src.metrics.banding import ChromaCAMBI, FlatNoise
from src.metrics.cambi import CAMBI
from src.metrics.smooth_psnr import SmoothRegionPSNR

#: metric name -> higher is better
METRICS = {
    "psnr": True,
    "psnr_smooth": True,
    "ssim": True,
    "cambi": False,
    "cambi_mlc5": False,
    "cambi_cb_mlc5": False,
    "cambi_cr_mlc5": False,
    "flat_noise": False,
}
#: the metrics that need no clean reference: what a banded image without ground truth (or the clean image
#: itself, the floor a method can reach) is scored with
NO_REFERENCE = ("cambi", "cambi_mlc5", "cambi_cb_mlc5", "cambi_cr_mlc5", "flat_noise")
#: the metrics whose ``update`` also takes the banded input (``banded=``)
NEEDS_BANDED = ("flat_noise",)
#: suffix of the clean reference's own scores, e.g. ``val/cambi_mlc5_clean``
CLEAN = "_clean"


def make_metric(name: str) -> Metric:
    """One fresh metric: images ``(B, 3, H, W)`` in [0, 1], updated with ``(restored, clean)`` (and
    ``banded=`` for :data:`NEEDS_BANDED`)."""
    if name == "psnr":
        # dim=(1, 2, 3): mean of per-image PSNR, as restoration papers report it
        return PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))
    if name == "psnr_smooth":
        return SmoothRegionPSNR()
    if name == "ssim":
        return StructuralSimilarityIndexMeasure(data_range=1.0)
    if name == "cambi":
        return CAMBI()
    if name == "cambi_mlc5":
        # max_log_contrast=5 counts steps of up to 8 codes at 8 bits: coarse bit-depth banding
        return CAMBI(max_log_contrast=5)
    if name in ("cambi_cb_mlc5", "cambi_cr_mlc5"):
        # chroma blotches: the Cb / Cr plane scored as a luma plane
        return ChromaCAMBI(name.split("_")[1], max_log_contrast=5)
    if name == "flat_noise":
        return FlatNoise()
    raise KeyError(name)


def metric_names(suffix: str) -> tuple[str, ...]:
    """The metrics kept for one kind of output: all of them, or :data:`NO_REFERENCE` for the clean image."""
    return NO_REFERENCE if suffix == CLEAN else tuple(METRICS)


def restoration_metrics(prefix: str, suffixes: tuple[str, ...] = ("_input", "_1step", "", CLEAN)) -> MetricCollection:
    """Every metric for every output kind, e.g. ``val/psnr_input``, ``val/cambi_1step``, ``val/ssim``,
    ``val/cambi_mlc5_clean`` (the clean images' own banding scores: the floor)."""
    return MetricCollection(
        {f"{name}{sfx}": make_metric(name) for sfx in suffixes for name in metric_names(sfx)},
        prefix=prefix,
        compute_groups=False,
    )


def update_metric(
    metric: Metric, name: str, output: Tensor, clean: Tensor | None, banded: Tensor | None = None
) -> None:
    """Update the metric called ``name`` with one output; ``banded`` goes to those that take it."""
    if name in NEEDS_BANDED:
        metric.update(output, clean, banded=banded)
    else:
        metric.update(output, clean)


def update_metrics(
    metrics: MetricCollection | Mapping[str, Metric], suffix: str, output: Tensor, clean: Tensor, banded: Tensor
) -> None:
    """Update every metric ``<name><suffix>`` of ``metrics`` with ``output`` ``(B, 3, H, W)``, e.g. suffix
    ``"_input"`` with the banded images or :data:`CLEAN` with the clean ones."""
    for name in metric_names(suffix):
        update_metric(metrics[f"{name}{suffix}"], name, output, clean, banded)
