"""Train an INDI debanding model: ``python -m src.train experiment=fft_indi``.

Builds the datamodule, model, callbacks, loggers and trainer from ``conf/`` with ``hydra.utils.instantiate``,
fits, tests the best checkpoint, prints the final metrics and returns ``optimized_metric`` for sweeps.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from omegaconf import DictConfig, OmegaConf, open_dict

from src.utils.checkpoint_io import AtomicCheckpointIO
from src.utils.errors import ConfigError, DataError
from src.utils.hydra_utils import (
    CONFIG_PATH,
    finish_wandb,
    instantiate_dict,
    one_line_errors,
    print_config_tree,
    run_context,
)
from src.utils.sweep_summary import write_job_metrics

log = logging.getLogger(__name__)

# the EMA copy of the network is meant to stay in eval mode; Lightning's warning about it is noise
warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training.*")


def train(cfg: DictConfig) -> tuple[dict[str, float], dict[str, Any]]:
    """Fit and test from a composed config; returns (metrics, objects)."""
    ctx = run_context()
    threads = cfg.extras.get("num_threads") or ctx["threads"]
    if threads:
        torch.set_num_threads(int(threads))
    L.seed_everything(cfg.seed, workers=True)

    ckpt_path = cfg.get("ckpt_path")
    if ckpt_path and not Path(ckpt_path).is_file():
        raise DataError(f"checkpoint not found: '{ckpt_path}'")

    log.info("Instantiating datamodule <%s>", cfg.data._target_)
    datamodule: L.LightningDataModule = hydra.utils.instantiate(cfg.data)

    log.info("Instantiating model <%s>", cfg.model._target_)
    model: L.LightningModule = hydra.utils.instantiate(cfg.model, indi=cfg.indi, loss=cfg.loss, _recursive_=False)
    log.info(model.describe())

    callbacks = instantiate_dict(cfg.get("callbacks"), "callbacks")
    _name_wandb_run(cfg, ctx)
    loggers = instantiate_dict(cfg.get("logger"), "logger")
    if not loggers:
        # Lightning refuses an LR monitor without a logger; logger=none should still just work
        callbacks = [cb for cb in callbacks if not isinstance(cb, L.pytorch.callbacks.LearningRateMonitor)]
    log.info("Instantiating trainer <%s>", cfg.trainer._target_)
    trainer: L.Trainer = hydra.utils.instantiate(
        cfg.trainer, callbacks=callbacks, logger=loggers or False, plugins=[AtomicCheckpointIO()]
    )
    hparams = OmegaConf.to_container(cfg, resolve=True)
    for lg in trainer.loggers:
        lg.log_hyperparams(hparams)

    if cfg.get("train"):
        log.info("Starting training")
        trainer.fit(model=model, datamodule=datamodule, ckpt_path=ckpt_path)
        if not _has_val_metrics(trainer) and trainer.limit_val_batches != 0 and not trainer.interrupted:
            # a run shorter than check_val_every_n_epoch would end with no validation at all (and no
            # optimized_metric for a sweep): validate the final weights once
            log.info("No validation ran during training: validating the final weights")
            trainer.validate(model=model, datamodule=datamodule, verbose=False)
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}

    if cfg.get("test"):
        best = _best_checkpoint(trainer)
        log.info("Testing %s", f"the best checkpoint {best}" if best else "the current weights")
        trainer.test(model=model, datamodule=datamodule, ckpt_path=best, weights_only=False)
        metrics.update({k: float(v) for k, v in trainer.callback_metrics.items()})

    if trainer.is_global_zero:
        _print_metrics(metrics)
        write_job_metrics(
            cfg.paths.output_dir,
            ctx["overrides"],
            metrics,
            cfg.get("optimized_metric"),
            cfg.get("optimized_mode", "max"),
        )
    return metrics, {"cfg": cfg, "datamodule": datamodule, "model": model, "trainer": trainer}


def _name_wandb_run(cfg: DictConfig, ctx: dict[str, Any]) -> None:
    """Group the runs of one sweep in W&B and name each after its overrides."""
    wb = cfg.get("logger", {}) and cfg.logger.get("wandb")
    if not wb:
        return
    with open_dict(cfg):
        if wb.get("name") is None:
            wb.name = ctx["override_name"] or None
        if ctx["sweep"]:
            wb.group = ctx["sweep"]


def _best_checkpoint(trainer: L.Trainer) -> str | None:
    for cb in trainer.checkpoint_callbacks:
        if getattr(cb, "monitor", None) and cb.best_model_path:
            return cb.best_model_path
    return None


def _print_metrics(metrics: dict[str, float]) -> None:
    from rich.console import Console
    from rich.table import Table

    keys = [k for k in sorted(metrics) if k.startswith(("val/", "test/"))]
    if not keys:
        return
    table = Table(title="final metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k in keys:
        table.add_row(k, f"{metrics[k]:.4f}")
    Console().print(table)


def _has_val_metrics(trainer: L.Trainer) -> bool:
    return any(k.startswith("val/") for k in trainer.callback_metrics)


def metric_value(metrics: dict[str, float], name: str | None) -> float | None:
    """The value of ``optimized_metric``; a clear error when a sweep asks for a metric that was never logged."""
    if not name:
        return None
    if name not in metrics:
        raise ConfigError(f"optimized_metric '{name}' was not logged; available: {', '.join(sorted(metrics))}")
    return metrics[name]


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="train.yaml")
@one_line_errors
def main(cfg: DictConfig) -> float | None:
    if cfg.extras.get("print_config"):
        print_config_tree(cfg)
    try:
        metrics, _ = train(cfg)
    finally:
        finish_wandb()
    return metric_value(metrics, cfg.get("optimized_metric"))


if __name__ == "__main__":
    main()
