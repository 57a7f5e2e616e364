"""Degradation functions and the composed Degradation: levels, YCbCr, JPEG, noise, seeding, config."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from kornia.color import rgb_to_ycbcr
from omegaconf import OmegaConf

from src.data.degradations import (
    DEFAULT_DEGRADATION,
    Degradation,
    H264Config,
    add_noise,
    h264_roundtrip,
    jpeg_compress,
    quantize,
    quantize_chroma,
    quantize_ycbcr,
)
from src.utils.errors import ConfigError


def _gradient(h: int = 64, w: int = 64) -> torch.Tensor:
    """(3, H, W) smooth colour gradient with many distinct values per channel."""
    y = torch.linspace(0, 1, h)[:, None].expand(h, w)
    x = torch.linspace(0, 1, w)[None, :].expand(h, w)
    return torch.stack([x, 0.2 + 0.6 * y, 0.5 * (x + y)]).float()


@pytest.mark.parametrize("bits", [1, 3, 4, 6])
def test_quantize_levels(bits):
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(bits))
    q = quantize(x, bits)
    assert q.shape == x.shape
    for c in range(3):
        assert len(torch.unique(q[:, c])) <= 2**bits
    # values sit exactly on the grid k / (2^b - 1)
    k = q * (2**bits - 1)
    assert torch.allclose(k, k.round(), atol=1e-4)
    assert (q - x).abs().max() <= 0.5 / (2**bits - 1) + 1e-6


def test_composed_rgb_mode_levels():
    deg = Degradation.from_config({"bit_depth": {"p": 1.0, "space": "rgb", "bits": [4, 6]}})
    rng = np.random.default_rng(0)
    for _ in range(10):
        out, params = deg.apply(_gradient(), rng)
        for c in range(3):
            assert len(torch.unique(out[c])) <= 2 ** params["bits"]
        assert 4 <= params["bits"] <= 6


def test_ycbcr_mode_quantizes_luma_and_chroma():
    x = _gradient(96, 96) * 0.6 + 0.2  # stay inside the RGB gamut so clamping does not move values
    luma, chroma = 5, 3
    out = quantize_ycbcr(x, luma, chroma)
    ycc = rgb_to_ycbcr(out)
    for ch, bits in ((0, luma), (1, chroma), (2, chroma)):
        # luma on k / (2^b - 1); chroma on the same step around neutral (0.5 = code 2^(b-1))
        k = ycc[ch] * (2**bits - 1) if ch == 0 else (ycc[ch] - 0.5) * (2**bits - 1)
        assert (k - k.round()).abs().max() < 1e-3, f"channel {ch} is not on the {bits}-bit grid"
        assert len(torch.unique(k.round())) <= 2**bits
    # chroma is coarser than luma: fewer distinct Cb values than Y values
    assert len(torch.unique((ycc[1] * 7).round())) < len(torch.unique((ycc[0] * 31).round()))


@pytest.mark.parametrize("chroma_bits", [2, 3, 5, 8])
def test_ycbcr_keeps_neutral_grey_neutral(chroma_bits: int):
    # neutral chroma (0.5) is a code, as in every real Y'CbCr format: greys get no colour cast
    grey = torch.linspace(0, 1, 97).view(1, 1, 97).expand(3, 8, 97).contiguous()
    out = quantize_ycbcr(grey, 6, chroma_bits)
    assert torch.allclose(out[0], out[1], atol=1e-6) and torch.allclose(out[1], out[2], atol=1e-6)
    assert torch.equal(quantize_chroma(torch.tensor([0.5]), chroma_bits), torch.tensor([0.5]))
    # every chroma value, the ends included, is within half a step of its code: 2^b codes cover [0, 1]
    x = torch.linspace(0, 1, 1001)
    c = quantize_chroma(x, chroma_bits)
    assert float((c - x).abs().max()) <= 0.5 / (2**chroma_bits - 1) + 1e-6
    assert len(torch.unique(c)) == 2**chroma_bits


def test_ycbcr_via_config():
    deg = Degradation.from_config({"bit_depth": {"p": 1.0, "space": "ycbcr", "luma_bits": 6, "chroma_bits": [2, 2]}})
    _, params = deg.apply(_gradient(), np.random.default_rng(0))
    assert params == {"space": "ycbcr", "luma_bits": 6, "chroma_bits": 2}
    mixed = Degradation.from_config({"bit_depth": {"space": "mixed", "ycbcr_p": 0.5}})
    rng = np.random.default_rng(0)
    spaces = {mixed.apply(_gradient(16, 16), rng)[1]["space"] for _ in range(30)}
    assert spaces == {"rgb", "ycbcr"}


def test_jpeg_changes_image():
    x = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    y = jpeg_compress(x, 50)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert (y - x).abs().mean() > 0.01
    batch = jpeg_compress(torch.stack([x, x]), 90)
    assert batch.shape == (2, 3, 32, 32)
    deg = Degradation.from_config({"jpeg": {"p": 1.0, "quality": [30, 40]}})
    out, params = deg.apply(x, np.random.default_rng(0))
    assert 30 <= params["jpeg_quality"] <= 40 and not torch.equal(out, x)


def test_noise():
    x = torch.full((3, 64, 64), 0.5)
    y = add_noise(x, 0.01, np.random.default_rng(0))
    assert 0.008 < float((y - x).std()) < 0.012
    assert torch.equal(add_noise(x, 0.0, np.random.default_rng(0)), x)
    # noise before quantization dithers: a flat 0.5 + noise at 6 bits hits more than one level
    deg = Degradation.from_config({"noise": {"p": 1.0, "sigma": 0.02}, "bit_depth": {"bits": 6}})
    out = deg(torch.full((3, 32, 32), 0.5), np.random.default_rng(0))
    assert len(torch.unique(out)) > 1


def test_same_seed_same_pair_and_different_seed_differs():
    deg = Degradation.from_config(
        {
            "bit_depth": {"p": 1.0, "bits": [4, 6]},
            "jpeg": {"p": 0.5, "quality": [70, 95]},
            "noise": {"p": 0.5, "sigma": [0.0, 0.01]},
        }
    )
    x = _gradient()
    outs = [deg(x, np.random.default_rng(123)) for _ in range(2)]
    assert torch.equal(outs[0], outs[1])
    others = [deg(x, np.random.default_rng(s)) for s in range(10)]
    assert any(not torch.equal(o, outs[0]) for o in others)


def test_batched_input_gets_per_item_params():
    deg = Degradation.from_config({"bit_depth": {"bits": [2, 8]}})
    out, params = deg.apply(torch.stack([_gradient()] * 8), np.random.default_rng(0))
    assert out.shape == (8, 3, 64, 64) and isinstance(params, list) and len(params) == 8
    assert len({p["bits"] for p in params}) > 1


def test_output_range_dtype():
    deg = Degradation.from_config(DEFAULT_DEGRADATION)
    rng = np.random.default_rng(0)
    for _ in range(20):
        out = deg(_gradient(32, 32), rng)
        assert out.dtype == torch.float32 and out.min() >= 0 and out.max() <= 1 and out.is_contiguous()


def test_default_and_dictconfig():
    assert Degradation.from_config(None) == Degradation()
    assert Degradation.from_config(OmegaConf.create(DEFAULT_DEGRADATION)) == Degradation()
    off = Degradation.from_config({})
    x = _gradient()
    assert torch.equal(off(x, np.random.default_rng(0)), x)


@pytest.mark.parametrize(
    "cfg",
    [
        {"bit_depth": {"bits": 0}},
        {"bit_depth": {"bits": [0, 4]}},
        {"bit_depth": {"bits": [4, 17]}},
        {"bit_depth": {"bits": [6, 4]}},
        {"bit_depth": {"bits": [4, 5, 6]}},
        {"bit_depth": {"bits": 4.5}},
        {"bit_depth": {"luma_bits": 0}},
        {"bit_depth": {"chroma_bits": [1, 20]}},
        {"bit_depth": {"p": 1.5}},
        {"bit_depth": {"space": "lab"}},
        {"bit_depth": {"bitz": 4}},
        {"jpeg": {"quality": 0}},
        {"jpeg": {"quality": [50, 101]}},
        {"jpeg": {"p": -0.1}},
        {"noise": {"sigma": -0.1}},
        {"noise": {"p": 2}},
        {"h264": {"crf": 52}},
        {"h264": {"crf": [40, 30]}},
        {"h264": {"preset": "warp"}},
        {"h264": {"p": 1.2}},
        {"blur": {"p": 1}},
        {"jpeg": 5},
    ],
)
def test_bad_config_raises(cfg):
    with pytest.raises(ConfigError):
        Degradation.from_config(cfg)


def test_bad_function_args_raise():
    x = torch.rand(3, 8, 8)
    with pytest.raises(ConfigError):
        quantize(x, 0)
    with pytest.raises(ConfigError):
        jpeg_compress(x, 101)


def test_h264_roundtrip_is_lossy_close_and_deterministic():
    gx, gy = np.meshgrid(np.linspace(0, 1, 64), np.linspace(0.2, 0.8, 48))
    x = torch.from_numpy(np.stack([gx, gy, np.full_like(gx, 0.5)]).astype(np.float32))  # (3, 48, 64)
    y = h264_roundtrip(x, crf=35)
    assert y.shape == x.shape and y.dtype == torch.float32
    err = float((y - x).abs().mean())
    assert 0 < err < 0.05
    assert torch.equal(y, h264_roundtrip(x, crf=35))
    # a coarser CRF loses more
    assert float((h264_roundtrip(x, crf=50) - x).abs().mean()) > err


def test_h264_roundtrip_has_no_colour_bias():
    # nearly lossless (CRF 0): what comes back is the input up to rounding, with no offset (swscale's
    # yuv420p -> rgb24 used to read every pixel 1-1.5 codes dark)
    gx, gy = np.meshgrid(np.linspace(0.05, 0.95, 128), np.linspace(0.1, 0.9, 96))
    x = torch.from_numpy(np.stack([gx, gy, (gx + gy) / 2]).astype(np.float32))
    y = h264_roundtrip(x, crf=0)
    assert abs(float((y - x).mean())) < 2e-4
    assert float((y - x).abs().max()) < 4 / 255
    assert torch.equal(y, (y * 255).round() / 255)  # 8-bit values


def test_h264_roundtrip_odd_size():
    x = _gradient(33, 17)
    y = h264_roundtrip(x, crf=20)
    assert y.shape == (3, 33, 17)
    assert float((y - x).abs().mean()) < 0.02


def test_h264_stage_from_config_fires_and_records_crf():
    deg = Degradation.from_config({"h264": {"p": 1.0, "crf": [30, 32]}})
    assert deg.h264 == H264Config(p=1.0, crf=(30, 32))
    x = _gradient()
    y, params = deg.apply(x, np.random.default_rng(0))
    assert 30 <= params["h264_crf"] <= 32
    assert not torch.equal(y, x) and y.shape == x.shape
    # off by default, and adding it does not change the earlier stages' draws
    assert Degradation().h264 is None
    base = Degradation.from_config({"bit_depth": {"bits": 5}})
    with_off = Degradation.from_config({"bit_depth": {"bits": 5}, "h264": {"p": 0.0}})
    assert torch.equal(base(x, np.random.default_rng(3)), with_off(x, np.random.default_rng(3)))


@pytest.mark.parametrize("codec", ["h264", "hevc", "mpeg4", "vp9"])
def test_stream_roundtrip_bands_every_codec(codec):
    """4:2:0, coarse luma/chroma grids, then a real codec: close to the input, 8-bit valued, deterministic."""
    from src.data.degradations import STREAM_QUALITY, stream_roundtrip

    x = _gradient(64, 96)
    y = stream_roundtrip(x, luma_bits=5, chroma_bits=4, codec=codec, quality=STREAM_QUALITY[codec][1])
    assert y.shape == x.shape and y.dtype == torch.float32
    assert torch.equal(y, torch.round(y * 255) / 255)
    assert (y - x).abs().mean() < 0.05
    assert torch.equal(y, stream_roundtrip(x, 5, 4, codec, STREAM_QUALITY[codec][1]))  # deterministic


def test_stream_roundtrip_makes_wide_plateaus_keeps_grey_and_odd_sizes():
    from src.data.degradations import stream_roundtrip

    ramp = torch.linspace(0.3, 0.4, 501)[None, None].expand(3, 40, 501).contiguous()  # grey, 25 codes
    y = stream_roundtrip(ramp, luma_bits=6, chroma_bits=5, codec="h264", quality=30, passes=2)
    assert y.shape == ramp.shape
    assert (y - ramp).abs().mean() < 3 / 255
    # before the codec, 6-bit luma leaves steps of 4 codes: the 25-code ramp becomes plateaus ~80 px wide
    from src.data.degradations import _quantize_plane

    codes = _quantize_plane(16 + 219 * ramp[1, 20].double().numpy(), 6, None)
    assert len(np.unique(codes)) <= 8
    assert np.array_equal(_quantize_plane(np.array([128.0, 129.0, 139.0]), 5, 128.0), [128.0, 128.0, 136.0])
    assert (y[0] - y[2]).abs().max() <= 2 / 255  # neutral chroma stays neutral


def test_stream_stage_from_config_draws_codec_and_validates():
    d = Degradation.from_config({"stream": {"p": 1.0, "codecs": {"mpeg4": [8, 8]}, "twice_p": 0.0}})
    _, params = d.apply(_gradient(32, 32), np.random.default_rng(0))
    assert params["stream"]["codec"] == "mpeg4" and params["stream"]["quality"] == 8
    assert Degradation.from_config({"stream": {"codecs": ["vp9"]}}).stream.codecs == {"vp9": (40, 58)}
    for bad in (
        {"codecs": {"av2": [1, 2]}},
        {"codecs": {"h264": [10, 60]}},
        {"luma_bits": [9, 10]},
        {"twice_p": 2},
        {"codecs": {}},
        {"bogus": 1},
    ):
        with pytest.raises(ConfigError):
            Degradation.from_config({"stream": bad})
