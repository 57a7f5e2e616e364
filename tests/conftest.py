"""Shared fixtures: composing the Hydra config as `python -m src.train` does, into a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict, read_write

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")

# tiny settings for a run that only has to exercise the code paths
TINY = [
    "model.net.width=8",
    "model.net.depth=1",
    "data.patch_size=32",
    "data.batch_size=4",
    "data.samples_per_epoch=8",
    "data.val_samples=2",
    "data.val_patch_size=64",
    "indi.steps=2",
    "trainer.max_epochs=1",
    "trainer.check_val_every_n_epoch=1",
    "extras.print_config=false",
]


def compose_cfg(config_name: str, overrides: list[str], out: Path) -> DictConfig:
    """Compose ``conf/<config_name>.yaml`` like the CLI, with outputs under ``out``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = compose(config_name=config_name, return_hydra_config=True, overrides=overrides)
    with read_write(cfg), open_dict(cfg):
        cfg.paths.root_dir = str(out)
        cfg.paths.output_dir = str(out)
        cfg.paths.log_dir = str(out / "logs")
        cfg.hydra.runtime.output_dir = str(out)
        cfg.hydra.job.num = 0
    HydraConfig().set_config(cfg)
    with read_write(cfg), open_dict(cfg):
        del cfg["hydra"]  # as in a real run: the task function never sees the hydra node
    return cfg


@pytest.fixture
def tiny_train_cfg(tmp_path: Path):
    def make(*overrides: str, experiment: str = "fft_indi") -> DictConfig:
        return compose_cfg("train", [f"experiment={experiment}", *TINY, *overrides], tmp_path)

    yield make
    GlobalHydra.instance().clear()
