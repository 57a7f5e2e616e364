"""Every experiment, loss, trainer and logger config composes and instantiates its pieces."""

from pathlib import Path

import hydra
import pytest
from omegaconf import OmegaConf

from tests.conftest import CONF, compose_cfg

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


def test_there_are_the_required_experiments():
    assert {"fft_indi", "pixel_indi", "fft_regression", "default_model"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_composes_and_instantiates(experiment, tmp_path: Path):
    cfg = compose_cfg("train", [f"experiment={experiment}"], tmp_path)
    OmegaConf.resolve(cfg)
    model = hydra.utils.instantiate(cfg.model, indi=cfg.indi, loss=cfg.loss, _recursive_=False)
    assert model.schedule.steps == cfg.indi.steps
    hydra.utils.instantiate(cfg.data)


def test_recipes_differ_as_documented(tmp_path: Path):
    fft = compose_cfg("train", ["experiment=fft_indi"], tmp_path)
    pixel = compose_cfg("train", ["experiment=pixel_indi"], tmp_path)
    reg = compose_cfg("train", ["experiment=fft_regression"], tmp_path)
    assert fft.model.net.activation == "sin" and fft.loss.weights == {"fft": 1.0}
    assert pixel.loss.weights.l1 > 0 and pixel.loss.weights.fft == 0
    assert reg.indi.steps == 1 and reg.indi.t_one_weight == float("inf")


@pytest.mark.parametrize(
    "group,option",
    [
        ("loss", "fft"),
        ("loss", "fft_pixel"),
        ("loss", "pixel"),
        ("loss", "charbonnier"),
        ("loss", "ssim"),
        ("trainer", "default"),
        ("trainer", "cpu"),
        ("trainer", "gpu"),
        ("trainer", "ddp"),
        ("trainer", "ddp_sim"),
        ("logger", "wandb"),
        ("logger", "csv"),
        ("logger", "tensorboard"),
        ("logger", "none"),
        ("logger", "many"),
        ("debug", "fdr"),
        ("debug", "overfit"),
        ("debug", "limit"),
        ("model", "unet_silu"),
    ],
)
def test_group_options_compose(group, option, tmp_path: Path):
    cfg = compose_cfg("train", ["experiment=fft_indi", f"{group}={option}"], tmp_path)
    OmegaConf.resolve(cfg)
    if group == "loss":
        hydra.utils.instantiate(cfg.loss)


@pytest.mark.parametrize("weighting", ["none", "radial", "focal"])
def test_freq_weighting_override(weighting, tmp_path: Path):
    cfg = compose_cfg("train", ["experiment=fft_indi", f"loss.freq_weighting={weighting}"], tmp_path)
    assert hydra.utils.instantiate(cfg.loss).terms["fft"].freq_weighting == weighting


def test_default_model_recipe(tmp_path: Path):
    """The shipped model's experiment: real photos, a real codec among the degradations, a fast net."""
    cfg = compose_cfg("train", ["experiment=default_model"], tmp_path)
    assert cfg.data.root.endswith("photos/train") and cfg.data.test.root.endswith("photos/test")
    deg = cfg.data.degradation
    assert deg.bit_depth.p == 1.0 and deg.h264.p > 0 and deg.jpeg.p > 0
    assert cfg.model.net.unshuffle == 4 and cfg.model.net.blend_levels > 0
    assert cfg.indi.steps <= 2  # the 3 s per 1080p frame budget (MODEL_CARD.md)
    # the sweeps' winner (MODEL_CARD.md): the FFT loss with pixel L1, SSIM and flat-pixel L1, and luma-guided
    # candidates
    assert cfg.loss.weights == {"fft": 1.0, "l1": 1.0, "ssim": 0.5, "flat_l1": 15.0}
    assert cfg.loss.freq_weighting == "none"
    model = hydra.utils.instantiate(cfg.model, indi=cfg.indi, loss=cfg.loss, _recursive_=False)
    assert set(model.loss_fn.terms) == {"fft", "l1", "ssim", "flat_l1"}
    assert model.net.blend_guided == [(4, 1e-4), (8, 1e-4), (16, 1e-3)]


def test_stream_model_recipe_composes_on_the_shipped_net(tmp_path: Path):
    cfg = compose_cfg("train", ["experiment=stream_model"], tmp_path)
    assert cfg.model.net.global_branch.factor == 8 and cfg.model.net.blend_guided  # stage 1's net kept
    assert cfg.data.full_frame.fraction > 0 and cfg.data.degradation.stream.codecs.vp9
    assert cfg.model.train_part == "global" and cfg.model.net.global_branch.norm
    assert cfg.data.patch_size >= 512  # crops that hold whole bands
