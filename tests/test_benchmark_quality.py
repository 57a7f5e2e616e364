"""``python -m src.benchmark quality`` on tiny synthetic images with a tiny untrained checkpoint."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src import benchmark_quality as bq
from src.benchmark import main
from src.data.degradations import quantize_ycbcr
from src.data.torch_threads import one_torch_thread
from tests.inference.fixtures import save_tiny_checkpoint

DEGRADATIONS = ("ycbcr_6_5", "rgb_jpeg", "h264")


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():  # tiny tensors: more threads only stall on a busy machine
        yield


def _gradients(folder: Path, n: int = 2, size: int = 64) -> list[np.ndarray]:
    """``n`` smooth colour gradients ``(size, size, 3)`` uint8, written as PNGs into ``folder``."""
    folder.mkdir()
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    out = []
    for i in range(n):
        img = np.stack([0.2 + 0.5 * x, 0.3 + 0.4 * y * (i + 1) / n, 0.6 - 0.3 * (x + y) / 2], axis=-1)
        u8 = np.round(img * 255).astype(np.uint8)
        Image.fromarray(u8).save(folder / f"grad_{i}.png")
        out.append(u8)
    return out


def _tables(md: str) -> dict[str, dict[str, list[str]]]:
    """``{degradation: {method: cells}}`` from the report's markdown tables."""
    tables: dict[str, dict[str, list[str]]] = {}
    current = None
    for line in md.splitlines():
        if line.startswith("## "):
            current = line[3:].split(":", 1)[0]
            tables[current] = {}
        elif current and line.startswith("| ") and not line.startswith("| method"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            tables[current][cells[0]] = cells[1:]
    return tables


def test_quality_benchmark_end_to_end(tmp_path, capsys):
    clean = _gradients(tmp_path / "imgs")
    # trained with 2 steps, recommending 1: the recipe row runs the schedule's 2, the default row 1
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.ckpt", steps=2, extra_hparams={"deband_steps": 1})
    out = tmp_path / "report" / "quality.md"
    rc = main(["quality", "--checkpoint", str(ckpt), "--recipe", str(ckpt), "--images", str(tmp_path / "imgs"),
               "--size", "64", "--speed", "extrapolate", "--out", str(out), "--threads", "1"])
    assert rc == 0
    md = out.read_text()
    assert md in capsys.readouterr().out  # printed as well as written
    tables = _tables(md)
    assert list(tables) == list(DEGRADATIONS)
    rows = ["input (banded)", "ffmpeg deband", "ffmpeg gradfun", "guided filter (r 4, eps 0.0001)",
            "recipe (2 steps)", "recipe (2 steps), float",
            "default model (1 step)", "default model (1 step), float"]
    for deg, table in tables.items():
        assert list(table) == rows, deg
        for method, cells in table.items():
            assert len(cells) == len(bq.COLUMNS) + 1
            numbers = cells if method != "input (banded)" else cells[:-1]
            assert all(math.isfinite(float(c)) for c in numbers), (deg, method, cells)
        assert table["input (banded)"][-1] == "–"  # nothing to time
        # one model run, two outputs: same speed; the dithered row sits on 8-bit codes
        assert table["recipe (2 steps)"][-1] == table["recipe (2 steps), float"][-1]
    # the input row's PSNR is the mean over images of the PSNR of the banded image (direct computation)
    psnrs = []
    for u8 in clean:
        c = torch.from_numpy(u8.transpose(2, 0, 1).astype(np.float32) / 255.0)
        mse = float(((quantize_ycbcr(c, 6, 5) - c) ** 2).mean())
        psnrs.append(10 * math.log10(1.0 / mse))
    assert float(tables["ycbcr_6_5"]["input (banded)"][0]) == pytest.approx(np.mean(psnrs), abs=0.006)
    assert "extrapolated" in md and "grad_0.png" in md


def test_quality_skips_missing_weights_with_a_note(tmp_path, capsys):
    _gradients(tmp_path / "imgs", n=1)
    out = tmp_path / "q.md"
    rc = main(["quality", "--checkpoint", str(tmp_path / "absent.ckpt"), "--images", str(tmp_path / "imgs"),
               "--size", "64", "--speed", "extrapolate", "--out", str(out), "--limit", "1"])
    assert rc == 0
    md = out.read_text()
    assert "default model: skipped (checkpoint not found" in md and "recipe: skipped" in md
    assert list(_tables(md)["h264"]) == ["input (banded)", "ffmpeg deband", "ffmpeg gradfun",
                                         "guided filter (r 4, eps 0.0001)"]


def test_quality_without_test_photos_says_how_to_get_them(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["quality"]) == 1
    err = capsys.readouterr().err
    assert "python -m src.data.fetch" in err and "--images" in err and len(err.strip().splitlines()) == 1


def test_quality_rejects_odd_size(tmp_path, capsys):
    assert main(["quality", "--images", str(tmp_path), "--size", "63"]) == 1
    assert "--size must be an even number" in capsys.readouterr().err


def test_fit_square_resizes_the_short_side_then_crops_the_centre():
    img = torch.zeros(3, 100, 200)
    img[:, :, 100:] = 1.0  # right half white: the centre crop straddles the edge
    out = bq.fit_square(img, 50)
    assert out.shape == (3, 50, 50)
    assert float(out[:, :, :20].max()) < 0.05 and float(out[:, :, 30:].min()) > 0.95
    assert bq.fit_square(torch.rand(3, 64, 64), 64).shape == (3, 64, 64)


def test_time_frame_measures_a_frame(monkeypatch):
    seen = []
    method = bq.Method("identity", lambda x: seen.append(tuple(x.shape)) or x)
    monkeypatch.setattr(bq, "FRAME_1080P", (32, 48))  # the real 1080p frame is the same code, only bigger
    assert bq.time_frame(method) >= 0
    assert seen == [(1, 3, 64, 64), (1, 3, 32, 48)]  # warm-up, then the timed frame


def test_markdown_formats_missing_values():
    assert bq._fmt(None, 2) == "–" and bq._fmt(float("nan"), 2) == "n/a" and bq._fmt(1.234, 2) == "1.23"
    assert re.fullmatch(r"\d+\.\d{4}", bq._fmt(0.5, 4))


def test_dither_8bit_lands_on_8bit_codes_and_keeps_the_mean():
    x = torch.linspace(0.2, 0.3, 64)[None, None, None, :].expand(2, 3, 64, 64).contiguous()
    q = bq.dither_8bit(x)
    assert q.shape == x.shape and q.dtype == torch.float32
    codes = q * 255
    assert torch.equal(codes, codes.round())
    # dithering keeps the local average: column means follow the ramp within a fraction of a code
    assert float((q.mean(dim=(0, 1, 2)) - x[0, 0, 0]).abs().max()) < 0.5 / 255
