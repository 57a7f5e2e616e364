"""``python -m src.bench speed`` on a tiny frame with a tiny untrained checkpoint."""

from __future__ import annotations

import re

import pytest

from src.bench.__main__ import main
from tests.inference.fixtures import save_tiny_checkpoint


@pytest.mark.parametrize("contour", [True, False])
def test_speed_end_to_end(tmp_path, capsys, contour):
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.ckpt", steps=1)
    args = ["speed", "--checkpoint", str(ckpt), "--sizes", "96x64", "--steps", "1,2", "--threads", "1"]
    assert main(args + ([] if contour else ["--no-contour"])) == 0
    out, err = capsys.readouterr()
    title = "network + contour interpolation" if contour else "network only"
    assert title in out
    assert ("then contour interpolation" in err) == contour
    # one line per step count: seconds (0.00 for this tiny frame), MP/s and peak memory
    lines = re.findall(r"96x64 (\d) steps: ([\d.]+) s/frame, ([\d.]+) MP/s, peak RSS (\d+) MB", err)
    assert [n for n, *_ in lines] == ["1", "2"]
    assert all(float(s) >= 0 and float(mp) > 0 and int(rss) > 0 for _, s, mp, rss in lines)


def test_speed_bad_size_is_one_line(capsys):
    assert main(["speed", "--sizes", "huge"]) != 0
    err = capsys.readouterr().err
    assert "unknown size 'huge'" in err and "Traceback" not in err
