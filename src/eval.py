"""Evaluate a checkpoint for several INDI step counts: ``python -m src.eval ckpt_path=...``.

Writes to the run folder (``logs/eval/runs/<time>/``):
- ``results.csv`` and ``results.md``: one row per step count (and one for the banded input) with PSNR,
  smooth-region PSNR, SSIM, CAMBI (default and max_log_contrast=5; Cb and Cr at max_log_contrast=5), the
  flat-area noise and seconds per megapixel, plus a ``clean`` row with the clean images' own banding scores
  (the floor). Banding scores are taken on the restored output rounded to 8 bits without dither
  (:mod:`src.metrics.banding`);
- ``metrics_vs_steps.png``: each metric against the step count (the perception-distortion trade-off);
- ``crops/crop_NN.png``: banded | restored | clean, each also contrast-stretched, and CAMBI heatmaps.
With ``folder=PATH`` it evaluates banded images that have no ground truth, with the banding scores only.
"""

from __future__ import annotations

import csv
import logging
import math
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from src.metrics.collection import METRICS, NO_REFERENCE

# the crop figures live in src.metrics.panels (the benchmark draws them too); imported here for callers of src.eval
from src.metrics.panels import cambi_heatmap, most_banded_window, save_crop_panel, stretch  # noqa: F401
from src.metrics.table import ResultRow
from src.models.indi_module import INDIModule, load_checkpoint  # noqa: F401 (load_checkpoint re-exported)
from src.utils.atomic import atomic_output, atomic_write_text
from src.utils.errors import ConfigError, DataError
from src.utils.hydra_utils import CONFIG_PATH, finish_wandb, instantiate_dict, one_line_errors, print_config_tree

log = logging.getLogger(__name__)

LABELS = {
    "psnr": "PSNR (dB)",
    "psnr_smooth": "smooth-region PSNR (dB)",
    "ssim": "SSIM",
    "cambi": "CAMBI",
    "cambi_mlc5": "CAMBI (max_log_contrast=5)",
    "cambi_cb_mlc5": "CAMBI of Cb (mlc 5)",
    "cambi_cr_mlc5": "CAMBI of Cr (mlc 5)",
    "flat_noise": "flat-area noise (luma codes)",
    "s_per_mpx": "seconds / megapixel",
}


# ---------------------------------------------------------------------------------------------- metrics
class StepTable:
    """Accumulates every metric for the input and for each step count, plus restoration time; with
    ``clean_row`` also the clean images' own banding scores (row ``clean``: the floor a method can reach).

    Banding scores are taken on each output rounded to 8 bits without dither (:mod:`src.metrics.banding`).
    """

    def __init__(self, steps: Iterable[int], names: Iterable[str], clean_row: bool = False) -> None:
        self.names = list(names)
        self.rows: dict[str, ResultRow] = {"input": ResultRow.of(self.names)}
        for n in steps:
            self.rows[str(n)] = ResultRow.of(self.names)
        if clean_row:
            self.rows["clean"] = ResultRow.of(m for m in self.names if m in NO_REFERENCE)

    def update(
        self,
        key: str,
        output: torch.Tensor,
        clean: torch.Tensor | None,
        seconds: float = 0.0,
        banded: torch.Tensor | None = None,
    ) -> None:
        """Score ``output`` ``(B, 3, H, W)`` as row ``key``; ``banded`` is the input it came from (flat_noise's
        mask; without it the output's own flat pixels are used)."""
        self.rows[key].update(output, clean, banded, seconds)

    def results(self) -> list[dict[str, Any]]:
        out = []
        for key, r in self.rows.items():
            values = r.values()
            row: dict[str, Any] = {"steps": key}
            row.update({n: values.get(n, float("nan")) for n in self.names})
            timed = key not in ("input", "clean")
            row["s_per_mpx"] = r.s_per_mpx if timed else float("nan")
            out.append(row)
        return out


def timed_restore(module: INDIModule, banded: torch.Tensor, steps: int) -> tuple[torch.Tensor, float]:
    start = time.perf_counter()
    with torch.inference_mode():
        out = module.restore(banded, steps=steps)
    return out, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------- writing
def write_tables(rows: list[dict[str, Any]], out_dir: Path) -> str:
    """Write ``results.csv`` and ``results.md``; returns the markdown table."""
    cols = ["steps", *[c for c in rows[0] if c != "steps"]]
    with atomic_output(out_dir / "results.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=cols)
        writer.writeheader()
        writer.writerows(rows)

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            return "-" if math.isnan(v) else f"{v:.4f}" if abs(v) < 10 else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(r[c]) for c in cols) + " |" for r in rows]
    md = "\n".join(lines) + "\n"
    atomic_write_text(out_dir / "results.md", md)
    return md


def plot_metrics(rows: list[dict[str, Any]], path: Path, title: str) -> Path:
    """One panel per metric against the step count, with the banded input as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps_rows = [r for r in rows if r["steps"] not in ("input", "clean")]
    inp = next(r for r in rows if r["steps"] == "input")
    ref = next((r for r in rows if r["steps"] == "clean"), None)
    names = [c for c in rows[0] if c != "steps" and not all(math.isnan(r[c]) for r in steps_rows)]
    ncols = min(3, len(names))
    nrows = math.ceil(len(names) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.0 * nrows), squeeze=False)
    xs = [int(r["steps"]) for r in steps_rows]
    for ax in axes.flat[len(names) :]:
        ax.axis("off")
    for ax, name in zip(axes.flat, names):
        ax.plot(xs, [r[name] for r in steps_rows], "o-", label="restored")
        if not math.isnan(inp[name]):
            ax.axhline(inp[name], color="tab:red", ls="--", label="banded input")
        if ref is not None and not math.isnan(ref[name]):
            ax.axhline(ref[name], color="tab:green", ls=":", label="clean")
        ax.set_xscale("log", base=2)
        ax.set_xticks(xs, [str(x) for x in xs])
        ax.set_xlabel("INDI steps")
        ax.set_title(LABELS.get(name, name), fontsize=9)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------- inputs
def paired_batches(cfg: DictConfig) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(banded, clean) batches of the datamodule's test set."""
    datamodule = hydra.utils.instantiate(cfg.data)
    datamodule.setup("test")
    for i, batch in enumerate(datamodule.test_dataloader()):
        if cfg.get("limit_batches") is not None and i >= cfg.limit_batches:
            break
        yield batch["banded"], batch["clean"]


def folder_images(folder: str) -> Iterator[tuple[torch.Tensor, None]]:
    """Banded images of a folder, one at a time as ``(1, 3, H, W)``; unreadable files are skipped."""
    from src.data.image_io import read_image, to_rgb
    from src.data.sources import list_images

    paths = list_images(folder)
    for path in paths:
        try:
            arr, _ = read_image(path)
        except DataError as exc:
            log.warning("skipping %s", exc)
            continue
        yield torch.from_numpy(np.ascontiguousarray(to_rgb(arr))).permute(2, 0, 1)[None].float(), None


# ---------------------------------------------------------------------------------------------- main
def evaluate(cfg: DictConfig) -> list[dict[str, Any]]:
    """Run the evaluation described by ``cfg``; returns the table rows."""
    from rich.progress import Progress

    L.seed_everything(cfg.seed, workers=True)
    steps = [int(s) for s in cfg.steps]
    if not steps or any(s < 1 for s in steps):
        raise ConfigError(f"steps must be a non-empty list of integers >= 1, got {list(cfg.steps)}")
    out_dir = Path(cfg.paths.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    module = load_checkpoint(cfg.ckpt_path, cfg.device)
    log.info("Evaluating %s: %s", cfg.ckpt_path, module.describe())
    folder_mode = cfg.get("folder") is not None
    names = list(NO_REFERENCE) if folder_mode else list(METRICS)
    table = StepTable(steps, names, clean_row=not folder_mode)
    crop_steps = module.schedule.steps if module.schedule.steps in steps else max(steps)
    crops: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []
    source = folder_images(cfg.folder) if folder_mode else paired_batches(cfg)

    seen = 0
    with Progress(transient=True) as progress:
        task = progress.add_task("evaluating", total=None)
        for banded, clean in source:
            banded = banded.to(cfg.device)
            clean = clean.to(cfg.device) if clean is not None else None
            table.update("input", banded, clean, banded=banded)
            if clean is not None:
                table.update("clean", clean, clean, banded=banded)
            for n in steps:
                restored, seconds = timed_restore(module, banded, n)
                table.update(str(n), restored, clean, seconds, banded=banded)
                if n == crop_steps:
                    for i in range(min(banded.shape[0], cfg.num_crops - len(crops))):
                        crops.append((banded[i].cpu(), restored[i].cpu(), None if clean is None else clean[i].cpu()))
                progress.advance(task)
            seen += banded.shape[0]
    if seen == 0:
        raise DataError(f"no images to evaluate{' in ' + repr(cfg.folder) if folder_mode else ''}")

    rows = table.results()
    md = write_tables(rows, out_dir)
    plot_metrics(rows, out_dir / "metrics_vs_steps.png", f"{Path(cfg.ckpt_path).name}: {seen} images")
    crop_paths = [
        save_crop_panel(b, r, c, crop_steps, cfg.crop_size, out_dir / "crops" / f"crop_{k:02d}.png")
        for k, (b, r, c) in enumerate(crops)
    ]
    _log_to_loggers(cfg, rows, [out_dir / "metrics_vs_steps.png", *crop_paths])
    print(md)
    log.info("Wrote %s, results.csv, metrics_vs_steps.png and %d crops to %s", "results.md", len(crop_paths), out_dir)
    return rows


def _log_to_loggers(cfg: DictConfig, rows: list[dict[str, Any]], images: list[Path]) -> None:
    from lightning.pytorch.loggers import WandbLogger

    loggers = instantiate_dict(cfg.get("logger"), "logger")
    for lg in loggers:
        lg.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))
        for row in rows:
            label = row["steps"]
            lg.log_metrics({f"eval/{k}_{label}": v for k, v in row.items() if k != "steps" and not math.isnan(v)})
        if isinstance(lg, WandbLogger):
            cols = list(rows[0])
            lg.log_table(key="eval/results", columns=cols, data=[[r[c] for c in cols] for r in rows])
            lg.log_image(key="eval/plots", images=[str(p) for p in images])
        lg.finalize("success")


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="eval.yaml")
@one_line_errors
def main(cfg: DictConfig) -> None:
    if OmegaConf.is_missing(cfg, "ckpt_path"):
        raise ConfigError("which checkpoint? pass ckpt_path=path/to/checkpoint.ckpt")
    if cfg.extras.get("print_config"):
        print_config_tree(cfg, order=("ckpt_path", "steps", "folder", "data", "logger", "paths"))
    try:
        evaluate(cfg)
    finally:
        finish_wandb()


if __name__ == "__main__":
    main()
