"""The restoration metrics logged everywhere (validation, test, src.eval), built in one place."""

from __future__ import annotations

from torchmetrics import Metric, MetricCollection
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from src.metrics.cambi import CAMBI
from src.metrics.smooth_psnr import SmoothRegionPSNR

#: metric name -> higher is better
METRICS = {"psnr": True, "psnr_smooth": True, "ssim": True, "cambi": False, "cambi_mlc5": False}


def make_metric(name: str) -> Metric:
    """One fresh metric: images ``(B, 3, H, W)`` in [0, 1], updated with ``(restored, clean)``."""
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
    raise KeyError(name)


def restoration_metrics(prefix: str, suffixes: tuple[str, ...] = ("_input", "_1step", "")) -> MetricCollection:
    """Every metric for every output kind, e.g. ``val/psnr_input``, ``val/cambi_1step``, ``val/ssim``."""
    return MetricCollection({f"{name}{sfx}": make_metric(name) for sfx in suffixes for name in METRICS},
                            prefix=prefix, compute_groups=False)
