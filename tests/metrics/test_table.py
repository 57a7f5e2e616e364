"""ResultRow: the one result-row type of src.eval and the benchmarks."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.image import PeakSignalNoiseRatio

from src.metrics.table import ResultRow, nanmean


def test_update_accumulates_metrics_time_and_pixels() -> None:
    g = torch.Generator().manual_seed(0)
    clean = torch.rand(2, 3, 16, 20, generator=g)
    out = (clean + 0.01 * torch.randn(2, 3, 16, 20, generator=g)).clamp(0, 1)
    row = ResultRow.of(["psnr"])
    row.update(out[:1], clean[:1], seconds=0.5)
    row.update(out[1:], clean[1:], seconds=1.5)
    ref = PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))
    ref.update(out, clean)
    assert row.values()["psnr"] == pytest.approx(float(ref.compute()))
    assert row.megapixels == pytest.approx(2 * 16 * 20 / 1e6)
    assert row.s_per_mpx == pytest.approx(2.0 / (2 * 16 * 20 / 1e6))


def test_scores_average_over_the_images_that_have_one() -> None:
    row = ResultRow()
    row.add_scores({"cambi": 1.0, "flat_noise": float("nan"), "other": 9.0}, ["cambi", "flat_noise"])
    row.add_scores({"cambi": 3.0, "flat_noise": 0.2}, ["cambi", "flat_noise"])
    assert row.values() == {"cambi": 2.0, "flat_noise": pytest.approx(0.2)}
    assert math.isnan(ResultRow().s_per_mpx)
    assert math.isnan(nanmean([float("nan")]))
