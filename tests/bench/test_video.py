"""``python -m src.bench video`` on a tiny clip with a tiny untrained checkpoint."""

from __future__ import annotations

import math

import pytest
import torch

from src.bench.__main__ import main
from src.bench.video import MOVES, flicker, make_clip
from tests.bench.test_quality import _gradients
from tests.inference.fixtures import save_tiny_checkpoint


def test_make_clip_moves_the_window():
    photo = torch.linspace(0, 1, 200).view(1, 1, -1).expand(3, 120, 200).clone()
    still = make_clip(photo, (32, 48), 4, "drift")
    pan = make_clip(photo, (32, 48), 4, "pan")
    assert len(pan) == 4 and pan[0].shape == (3, 32, 48)
    # a horizontal ramp seen through a window moving right gets brighter, the faster the more
    drift_step, pan_step = (still[1] - still[0]).mean().item(), (pan[1] - pan[0]).mean().item()
    assert 0 < drift_step < pan_step
    assert pan_step / drift_step == pytest.approx(MOVES["pan"][0] / MOVES["drift"][0], rel=0.35)
    with pytest.raises(Exception, match="motion"):
        make_clip(photo, (32, 48), 2, "spin")


def test_zoom_pushes_in_about_the_centre():
    photo = torch.linspace(0, 1, 400).view(1, 1, -1).expand(3, 240, 400).clone()
    clip = make_clip(photo, (64, 96), 12, "zoom")
    first, last = clip[0][0, 32], clip[-1][0, 32]
    # a horizontal ramp seen closer: the left edge brightens, the right edge darkens, the centre stays
    assert last[0] > first[0] + 1e-3 and last[-1] < first[-1] - 1e-3
    assert abs(float(last[47:49].mean() - first[47:49].mean())) < 2e-3
    # and the window spans less of it
    assert float(last[-1] - last[0]) < float(first[-1] - first[0])


def test_shake_jitters_the_same_way_every_run():
    photo = torch.rand(3, 120, 200)
    a, b = make_clip(photo, (32, 48), 8, "shake"), make_clip(photo, (32, 48), 8, "shake")
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    # every frame moved against the one before (a hand-held camera never holds still)
    assert all(float((a[i] - a[i - 1]).abs().mean()) > 1e-3 for i in range(1, 8))


def test_flicker_counts_only_flat_static_pixels():
    src = [torch.full((3, 16, 16), 0.5) for _ in range(3)]
    steady = [s.clone() for s in src]
    shimmer = [s + (i % 2) * 2 / 255 for i, s in enumerate(src)]  # every pixel jumps by 2 codes and back
    assert flicker(steady, src) == 0.0
    assert flicker(shimmer, src) == pytest.approx(2 * 219 / 255, rel=1e-3)  # 2 RGB codes of grey, in luma codes
    moving = [torch.full((3, 16, 16), 0.1 * i) for i in range(3)]  # nothing static in the source
    assert math.isnan(flicker(shimmer, moving))


def test_video_benchmark_end_to_end(tmp_path, capsys):
    _gradients(tmp_path / "imgs", size=96)
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.ckpt", steps=1)
    out = tmp_path / "video.md"
    args = ["video", "--images", str(tmp_path / "imgs"), "--limit", "1", "--size", "64x48", "--frames", "4"]
    assert main([*args, "--motion", "drift,pan", "--checkpoint", str(ckpt), "--threads", "1", "--out", str(out)]) == 0
    md = out.read_text()
    assert md.startswith("# Video benchmark") and "## mean over" in capsys.readouterr().out
    tables = [line for line in md.splitlines() if line.startswith("## ")]
    assert len(tables) == 3 and tables[-1] == "## mean over 2 clips"
    rows = [line.split("|")[1].strip() for line in md.splitlines() if line.startswith("| ") and "---" not in line]
    methods = ["input (banded)", "deband", "deband --no-contour", "deband --video-bit-depth 10", "ffmpeg deband"]
    assert [r for r in rows if r != "method"] == methods * 3
    # the input has no speed; every method has a positive frame rate and memory
    for line in md.splitlines():
        if line.startswith("| deband") or line.startswith("| ffmpeg"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            assert float(cells[2]) > 10 and float(cells[4]) > 0 and float(cells[5]) > 0
            # the file size of the methods that write one (ffmpeg's filter here does not encode)
            assert (cells[6] == "–") == line.startswith("| ffmpeg") and (cells[6] == "–" or float(cells[6]) > 0)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--motion", "spin"], "--motion"),
        (["--frames", "1"], "--frames"),
        (["--size", "63x48"], "even"),
        (["--images", "/nonexistent"], "no photos"),
    ],
)
def test_bad_arguments_are_one_line(extra, message, capsys):
    assert main(["video", *extra]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
