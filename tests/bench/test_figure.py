"""python -m src.bench figure: a real model on a procedural banded scene, a PNG and a score table."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from src.bench.__main__ import main


def test_figure_draws_and_scores(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "fig.png"
    rc = main(["figure", "--size", "320x240", "--crop", "96", "--out", str(out), "--threads", "1"])
    assert rc == 0
    assert Image.open(out).size[0] > 3 * 96  # three columns: input, shipped model, clean
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    rows = {line.split("|")[1].strip(): line.split("|")[2:-1] for line in lines}
    assert {"banded input", "shipped model", "clean"} <= set(rows)
    psnr = {k: float(v[0]) for k, v in rows.items() if k in ("banded input", "shipped model")}
    assert psnr["shipped model"] > psnr["banded input"]  # it restores, on a scene it never saw


def test_figure_rejects_bad_sizes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["figure", "--size", "10x10"]) == 1
    assert "--size must be WxH" in capsys.readouterr().err
    assert main(["figure", "--size", "320x240", "--crop", "500"]) == 1
