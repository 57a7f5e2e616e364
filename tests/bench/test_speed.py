"""``python -m src.bench speed`` on a tiny frame with a tiny untrained checkpoint."""

from __future__ import annotations

import re

import pytest

from src.bench.__main__ import main
from tests.inference.fixtures import save_tiny_checkpoint


@pytest.mark.parametrize("contour", [True, False])
def test_speed_end_to_end(tmp_path, capsys, contour):
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.ckpt", steps=1)
    args = [
        "speed",
        "--checkpoint",
        str(ckpt),
        "--sizes",
        "96x64",
        "--steps",
        "1,2",
        "--threads",
        "1",
        "--process",
        "off",
    ]
    assert main(args + ([] if contour else ["--no-contour"])) == 0
    out, err = capsys.readouterr()
    title = "network + contour interpolation" if contour else "network only"
    assert title in out
    assert ("then contour interpolation" in err) == contour
    # one line per step count: seconds (0.00 for this tiny frame), MP/s and peak memory
    lines = re.findall(r"96x64 (\d) steps: ([\d.]+) s/frame, ([\d.]+) MP/s, peak RSS (\d+) MB", err)
    assert [n for n, *_ in lines] == ["1", "2"]
    assert all(float(s) >= 0 and float(mp) > 0 and int(rss) > 0 for _, s, mp, rss in lines)


def test_whole_process_times_and_startup_split(tmp_path, capsys):
    """--process runs deband and ffmpeg's filter as separate processes and splits the start-up."""
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.ckpt", steps=1)
    args = ["speed", "--checkpoint", str(ckpt), "--sizes", "96x64", "--steps", "1", "--threads", "1"]
    assert main(args + ["--process", "96x64"]) == 0
    out = capsys.readouterr().out
    split = re.search(
        r"interpreter ([\d.]+) s, import torch ([\d.]+) s, import deband ([\d.]+) s, "
        r"load weights ([\d.]+) s; ([\d.]+) s in all",
        out,
    )
    assert split, out
    parts = [float(v) for v in split.groups()]
    assert parts[1] > 0.05 and abs(sum(parts[:4]) - parts[4]) < 0.02  # torch's import is never free
    runs = dict(re.findall(r"  (deband|deband --no-contour|ffmpeg deband): ([\d.]+) / [\d.]+ s", out))
    assert set(runs) == {"deband", "deband --no-contour", "ffmpeg deband"}
    assert all(float(v) > 0 for v in runs.values())
    # a whole deband process pays at least torch's import
    assert float(runs["deband"]) > parts[1]
    assert "deband / ffmpeg deband:" in out and "the table's 1-step row" in out


def test_speed_bad_size_is_one_line(capsys):
    assert main(["speed", "--sizes", "huge"]) != 0
    err = capsys.readouterr().err
    assert "unknown size 'huge'" in err and "Traceback" not in err
