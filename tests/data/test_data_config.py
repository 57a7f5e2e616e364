"""conf/data/*.yaml: instantiate with Hydra (loaded directly, and composed as a config group)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf
from PIL import Image

from src.data.datamodule import BandingDataModule
from src.data.degradations import DEFAULT_DEGRADATION, Degradation

CONF = Path(__file__).resolve().parents[2] / "conf"


def test_default_yaml_instantiates():
    cfg = OmegaConf.load(CONF / "data" / "default.yaml")
    root = OmegaConf.create({"seed": 5, "data": cfg})  # train.yaml defines seed at the top level
    dm = instantiate(root.data)
    assert isinstance(dm, BandingDataModule)
    assert dm.seed == 5 and dm.root is None and dm.paired is None
    assert (dm.patch_size, dm.batch_size, dm.num_workers) == (64, 16, 0)
    assert dm.degradation == Degradation.from_config(DEFAULT_DEGRADATION)
    assert isinstance(dm.hparams["degradation"], dict)


def test_default_yaml_matches_code_defaults():
    cfg = OmegaConf.to_container(OmegaConf.load(CONF / "data" / "default.yaml"), resolve=False)
    assert cfg["degradation"] == DEFAULT_DEGRADATION


def test_default_yaml_without_convert_still_works():
    cfg = OmegaConf.load(CONF / "data" / "default.yaml")
    cfg._convert_ = "none"  # nested DictConfigs reach the constructor
    dm = instantiate(OmegaConf.create({"seed": 0, "data": cfg}).data, synthetic_images=2, samples_per_epoch=4)
    assert dm.degradation == Degradation()


def test_compose_folder_and_paired_groups(tmp_path):
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "a.png")
    with initialize_config_dir(version_base=None, config_dir=str(CONF)):
        cfg = compose(overrides=["+data=folder", "+seed=1"])
        with pytest.raises(InstantiationException, match="data.root"):
            instantiate(cfg.data)  # data=folder without data.root
        cfg = compose(overrides=["+data=folder", "+seed=1", f"data.root={tmp_path}"])
        dm = instantiate(cfg.data)
        assert dm.root == str(tmp_path) and dm.synthetic_images == 0 and dm.seed == 1

        cfg = compose(overrides=["+data=paired", "+seed=1", f"data.paired.csv={tmp_path / 'p.csv'}"])
        dm = instantiate(cfg.data)
        assert dm.paired == {"csv": str(tmp_path / "p.csv")}
