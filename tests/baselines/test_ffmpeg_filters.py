import torch

from src.baselines.ffmpeg_filters import ffmpeg_filter


def test_ffmpeg_deband_and_gradfun_smooth_a_banded_ramp():
    ramp = torch.linspace(0, 1, 256).expand(1, 3, 96, 256)
    banded = torch.round(ramp * 31) / 31
    for name in ("deband", "gradfun"):
        out = ffmpeg_filter(banded, name)
        assert out.shape == banded.shape and 0 <= out.min() and out.max() <= 1
        assert not torch.equal(out, torch.round(banded * 255) / 255)
    single = ffmpeg_filter(banded[0], "deband")
    assert single.shape == banded[0].shape
