"""src.eval end to end on a tiny checkpoint: tables, plot, crops, folder mode and the error cases."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.eval import evaluate, load_checkpoint
from src.train import train
from src.utils.errors import DataError
from tests.conftest import compose_cfg


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    from tests.conftest import TINY

    out = tmp_path_factory.mktemp("train")
    cfg = compose_cfg("train", ["experiment=fft_indi", *TINY, "logger=none", "test=false"], out)
    train(cfg)
    return next((out / "checkpoints").glob("best-*.ckpt"))


def _eval_cfg(tmp_path: Path, ckpt: Path, *overrides: str):
    return compose_cfg(
        "eval",
        [
            f"ckpt_path={ckpt}",
            "steps=[1,2]",
            "data.val_samples=2",
            "data.batch_size=2",
            "num_crops=1",
            "crop_size=64",
            "extras.print_config=false",
            *overrides,
        ],
        tmp_path,
    )


def test_eval_writes_table_plot_and_crops(tiny_ckpt: Path, tmp_path: Path):
    rows = evaluate(_eval_cfg(tmp_path, tiny_ckpt))
    assert [r["steps"] for r in rows] == ["input", "1", "2", "clean"]
    with open(tmp_path / "results.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 4
    assert {
        "psnr",
        "psnr_smooth",
        "ssim",
        "cambi",
        "cambi_mlc5",
        "cambi_cb_mlc5",
        "cambi_cr_mlc5",
        "flat_noise",
        "s_per_mpx",
    } <= set(table[0])
    assert float(table[1]["s_per_mpx"]) > 0 and float(table[0]["psnr"]) > 20
    # the clean row: the reference's own banding scores, nothing to compare it with or to time
    clean = rows[-1]
    assert math.isnan(clean["psnr"]) and math.isnan(clean["s_per_mpx"])
    assert all(math.isfinite(clean[k]) for k in ("cambi", "cambi_mlc5", "cambi_cb_mlc5", "cambi_cr_mlc5"))
    assert "| steps |" in (tmp_path / "results.md").read_text()
    assert Image.open(tmp_path / "metrics_vs_steps.png").size[0] > 500
    assert len(list((tmp_path / "crops").glob("crop_*.png"))) == 1


def test_eval_folder_mode_no_reference(tiny_ckpt: Path, tmp_path: Path):
    folder = tmp_path / "banded"
    folder.mkdir()
    ramp = np.tile(np.linspace(0, 1, 240)[None, :, None], (230, 1, 3))
    Image.fromarray((np.round(ramp * 15) / 15 * 255).astype(np.uint8)).save(folder / "a.png")
    rows = evaluate(_eval_cfg(tmp_path / "out", tiny_ckpt, f"folder={folder}"))
    assert set(rows[0]) == {"steps", "cambi", "cambi_mlc5", "cambi_cb_mlc5", "cambi_cr_mlc5", "flat_noise", "s_per_mpx"}
    assert [r["steps"] for r in rows] == ["input", "1", "2"]  # no clean row without a reference
    assert rows[0]["cambi_mlc5"] > 0 and rows[0]["flat_noise"] == 0.0  # the input's bands are flat


def test_eval_errors(tiny_ckpt: Path, tmp_path: Path):
    with pytest.raises(DataError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "missing.ckpt")
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot read checkpoint"):
        load_checkpoint(junk)
    # same file, but a config whose network no longer matches the weights
    ck = torch.load(tiny_ckpt, map_location="cpu", weights_only=False)
    ck["hyper_parameters"]["net"]["width"] = 16
    bad = tmp_path / "incompatible.ckpt"
    torch.save(ck, bad)
    with pytest.raises(DataError, match="incompatible"):
        load_checkpoint(bad)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataError, match="no images"):
        evaluate(_eval_cfg(tmp_path / "o2", tiny_ckpt, f"folder={empty}"))
