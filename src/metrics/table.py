"""One row of a results table, shared by ``src.eval`` (a row per step count) and the benchmarks (a row per
method): torchmetrics accumulated over batches, per-image scores averaged at the end, and the time taken."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from torch import Tensor
from torchmetrics import Metric

from src.metrics.collection import make_metric, update_metric

__all__ = ["ResultRow", "nanmean"]


@dataclass
class ResultRow:
    """Accumulated results of one method (or step count): torchmetrics in ``metrics`` (see
    :func:`~src.metrics.collection.make_metric`), per-image scores in ``scores`` (e.g.
    :func:`~src.metrics.banding.banding_scores`), seconds and megapixels restored."""

    metrics: dict[str, Metric] = field(default_factory=dict)
    scores: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    megapixels: float = 0.0
    s_per_1080p: float | None = None

    @classmethod
    def of(cls, names: Iterable[str]) -> ResultRow:
        """A row with a fresh metric for each name."""
        return cls({n: make_metric(n) for n in names})

    def update(self, output: Tensor, clean: Tensor | None, banded: Tensor | None = None, seconds: float = 0.0) -> None:
        """Score ``output`` ``(B, 3, H, W)`` against ``clean``; ``banded`` is the input it came from (for the
        metrics that take it); ``seconds`` is the time it took to restore."""
        for name, metric in self.metrics.items():
            update_metric(metric, name, output, clean, banded)
        self.seconds += seconds
        self.megapixels += output.shape[0] * output.shape[-1] * output.shape[-2] / 1e6

    def add_scores(self, scores: dict[str, float], names: Iterable[str] | None = None) -> None:
        """Append one image's scores (only ``names`` of them when given)."""
        for k in scores if names is None else names:
            if k in scores:
                self.scores.setdefault(k, []).append(scores[k])

    def values(self) -> dict[str, float]:
        """Every column: the metrics' values and the mean of each score over the images that have one."""
        out = {k: float(m.compute()) for k, m in self.metrics.items()}
        out.update({k: nanmean(v) for k, v in self.scores.items()})
        return out

    @property
    def s_per_mpx(self) -> float:
        """Seconds per megapixel restored (NaN when nothing was restored)."""
        return self.seconds / self.megapixels if self.megapixels else float("nan")


def nanmean(values: Sequence[float]) -> float:
    """Mean of the values that are not NaN (a score with nothing to measure on an image); NaN if none is."""
    kept = [v for v in values if not math.isnan(v)]
    return sum(kept) / len(kept) if kept else float("nan")
