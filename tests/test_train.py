"""Training end to end: in-process on tiny settings, and the real CLI as a user runs it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from src.train import train
from tests.conftest import ROOT, TINY


def test_fast_dev_run(tiny_train_cfg):
    metrics, objs = train(tiny_train_cfg("debug=fdr"))
    assert "val/psnr" in metrics and "test/psnr" in metrics
    assert objs["trainer"].fast_dev_run


def test_one_epoch_writes_checkpoints_images_and_wandb(tiny_train_cfg, tmp_path: Path):
    cfg = tiny_train_cfg("model.log_images_every_n_epochs=1")
    metrics, objs = train(cfg)
    ckpts = {p.name for p in (tmp_path / "checkpoints").glob("*.ckpt")}
    assert "last.ckpt" in ckpts and any(n.startswith("best-") for n in ckpts)
    assert not list((tmp_path / "checkpoints").glob(".*.tmp"))
    for key in ("val/psnr_input", "val/psnr", "val/psnr_1step", "val/ssim", "test/psnr", "test/psnr_input"):
        assert key in metrics and metrics[key] > 0
    assert list((tmp_path / "images").glob("val_epoch*.png"))
    runs = list((tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    # the checkpoint carries the EMA weights and the configs needed to rebuild the model
    ckpt = torch.load(tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert any(k.startswith("ema.module.") for k in ckpt["state_dict"])
    assert ckpt["hyper_parameters"]["net"]["_target_"] == "src.models.unet.UNet"
    from src.models.indi_module import INDIModule

    model = INDIModule.load_from_checkpoint(
        tmp_path / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False
    )
    out = model.restore(torch.rand(1, 3, 13, 21), steps=3)
    assert out.shape == (1, 3, 13, 21) and 0 <= out.min() and out.max() <= 1


def test_csv_logger_without_wandb(tiny_train_cfg, tmp_path: Path):
    train(tiny_train_cfg("logger=csv", "test=false"))
    assert list((tmp_path / "csv").rglob("metrics.csv"))
    assert not (tmp_path / "wandb").exists()


def test_run_shorter_than_the_validation_interval_still_validates_once(tiny_train_cfg):
    """check_val_every_n_epoch beyond max_epochs: the final weights are validated, so a sweep's
    optimized_metric (val/psnr) exists."""
    from src.train import metric_value

    metrics, _ = train(
        tiny_train_cfg("trainer.max_epochs=1", "trainer.check_val_every_n_epoch=8", "test=false", "logger=csv")
    )
    assert metric_value(metrics, "val/psnr") > 0


def _cli(*args: str, cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "INDI_ROOT": str(cwd), "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "src.train", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.mark.parametrize(
    "override,message",
    [
        ("indi.steps=0", "indi.steps"),
        ("data.degradation.bit_depth.bits=[0,0]", "bits"),
        ("+loss.weights.perceptual=1.0", "unknown loss term"),
        ("ckpt_path=/nonexistent/last.ckpt", "checkpoint not found"),
    ],
)
def test_bad_config_values_give_one_line_errors(override, message, tmp_path: Path):
    res = _cli("experiment=fft_indi", "debug=fdr", override, cwd=tmp_path)
    assert res.returncode == 1, res.stderr[-2000:]
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and message in last, res.stderr[-2000:]


def test_folder_with_no_images_is_a_one_line_error(tmp_path: Path):
    empty = tmp_path / "photos"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    res = _cli("experiment=fft_indi", "debug=fdr", f"data.root={empty}", cwd=tmp_path)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "no images" in res.stderr.strip().splitlines()[-1]


def test_trains_on_a_user_folder_skipping_a_bad_file(tmp_path: Path):
    import numpy as np
    from PIL import Image

    photos = tmp_path / "photos" / "trip"
    photos.mkdir(parents=True)
    yy, xx = np.mgrid[0:96, 0:128]
    for i in range(3):
        img = np.stack([xx / 128, yy / 96, (xx + yy + 20 * i) / 224], -1)
        Image.fromarray((img * 255).astype(np.uint8)).save(photos / f"p{i}.png")
    (photos / "broken.jpg").write_bytes(b"not a jpeg at all")
    res = _cli("experiment=fft_indi", "debug=fdr", f"data.root={tmp_path / 'photos'}", *TINY, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "broken.jpg" in res.stderr + res.stdout


@pytest.mark.slow
def test_cli_killed_mid_epoch_resumes_from_last_ckpt(tmp_path: Path):
    """SIGKILL a real run once last.ckpt exists, then resume it with ckpt_path=... to the end."""
    args = [
        "experiment=fft_indi",
        *TINY,
        "trainer.max_epochs=3",
        "data.samples_per_epoch=160",
        "callbacks.last_checkpoint.every_n_train_steps=5",
        "logger=csv",
        "test=false",
        "hydra.run.dir=" + str(tmp_path / "run1"),
    ]
    env = {**os.environ, "WANDB_MODE": "offline", "INDI_ROOT": str(tmp_path), "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "src.train", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    last = tmp_path / "run1" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if last.exists():
            ck = torch.load(last, map_location="cpu", weights_only=False)
            if ck["global_step"] >= 15:  # well inside the second epoch (10 steps per epoch)
                break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be killed; make it longer"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p: p.read_bytes() for p in (tmp_path / "run1").rglob("*") if p.is_file()}
    killed_at = torch.load(last, map_location="cpu", weights_only=False)
    assert killed_at["epoch"] < 2

    args2 = [a for a in args if not a.startswith("hydra.run.dir")]
    res = _cli(*args2, f"ckpt_path={last}", "hydra.run.dir=" + str(tmp_path / "run2"), cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-3000:]
    final = torch.load(tmp_path / "run2" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert final["epoch"] == 2 and final["global_step"] > killed_at["global_step"]
    assert final["state_dict"].keys() == killed_at["state_dict"].keys()
    # nothing written by the first run was touched
    assert {p: p.read_bytes() for p in (tmp_path / "run1").rglob("*") if p.is_file()} == before
