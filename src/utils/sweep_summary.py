"""A Hydra callback that writes a summary of a multirun: every job's overrides and final metrics, best first.

Each job of ``src.train`` leaves ``metrics.json`` in its folder; at the end of the sweep this collects them
into ``summary.csv`` and ``summary.md`` in the sweep folder and prints the table, so nobody needs W&B to see
which run won.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from src.utils.atomic import atomic_output, atomic_write_text

log = logging.getLogger(__name__)

METRICS_FILE = "metrics.json"
#: columns shown in the summary besides the overrides, when present
SHOWN = (
    "val/psnr",
    "val/psnr_gain",
    "val/psnr_smooth",
    "val/ssim",
    "val/cambi",
    "val/cambi_mlc5",
    "val/score",
    "test/psnr",
    "test/psnr_smooth",
    "test/ssim",
    "test/cambi_mlc5",
)


def write_job_metrics(
    out_dir: str | os.PathLike, overrides: list[str], metrics: dict[str, float], optimized_metric: str | None, mode: str
) -> Path:
    """Save one job's result for the sweep summary (atomic write)."""
    path = Path(out_dir) / METRICS_FILE
    payload = {"overrides": overrides, "metrics": metrics, "optimized_metric": optimized_metric, "mode": mode}
    return atomic_write_text(path, json.dumps(payload, indent=1))


def summarize(sweep_dir: str | os.PathLike) -> list[dict[str, Any]]:
    """Collect the jobs of ``sweep_dir`` into ``summary.csv`` / ``summary.md``; returns the rows, best first."""
    sweep = Path(sweep_dir)
    jobs = sorted(sweep.glob(f"*/{METRICS_FILE}"), key=lambda p: (len(p.parent.name), p.parent.name))
    rows: list[dict[str, Any]] = []
    metric, mode = None, "max"
    loaded = [json.loads(p.read_text()) for p in jobs]
    # show what differs between jobs; the overrides they all share would only bury it
    shared = set.intersection(*(set(d["overrides"]) for d in loaded)) if len(loaded) > 1 else set()
    for path, data in zip(jobs, loaded):
        metric = metric or data.get("optimized_metric")
        mode = data.get("mode", mode)
        row: dict[str, Any] = {
            "job": path.parent.name,
            "overrides": " ".join(o for o in data["overrides"] if o not in shared),
        }
        row.update({k: v for k, v in data["metrics"].items() if k in SHOWN or k == data.get("optimized_metric")})
        rows.append(row)
    if not rows:
        return rows

    def key(r: dict[str, Any]) -> float:
        v = r.get(metric, float("nan")) if metric else float("nan")
        if v is None or math.isnan(v):
            return math.inf
        return -v if mode == "max" else v

    rows.sort(key=key)
    cols = ["job", "overrides"] + [
        c for c in ([metric] if metric else []) + list(SHOWN) if c and any(c in r for r in rows)
    ]
    cols = list(dict.fromkeys(cols))
    with atomic_output(sweep / "summary.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=cols, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)

    def fmt(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else str(v)

    lines = [
        f"Sweep {sweep}: {len(rows)} jobs, best first by {metric} ({mode})",
        f"Shared by all jobs: {' '.join(sorted(shared)) or '-'}",
        "",
        "| " + " | ".join(cols) + " |",
        "|" + "---|" * len(cols),
    ]
    lines += ["| " + " | ".join(fmt(r.get(c, "")) for c in cols) + " |" for r in rows]
    md = "\n".join(lines) + "\n"
    atomic_write_text(sweep / "summary.md", md)
    print(md, flush=True)
    return rows


class SweepSummary(Callback):
    """Registered in ``conf/hydra/default.yaml``; runs once in the launching process after all jobs."""

    def __init__(self) -> None:
        self.sweep_dir: str | None = None

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        from hydra.core.hydra_config import HydraConfig

        # resolve the folder now, as the launcher does: ${hydra:...} needs HydraConfig, ${now:} is cached
        HydraConfig.instance().set_config(config)
        self.sweep_dir = str(config.hydra.sweep.dir)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        try:
            summarize(self.sweep_dir or config.hydra.sweep.dir)
        except Exception as exc:  # noqa: BLE001 - a summary failure must not hide the jobs' own results
            log.warning("could not write the sweep summary: %s", exc)
