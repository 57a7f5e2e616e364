"""Banding scores on 8-bit output without dither (src/metrics/banding.py) and their torchmetrics forms."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from src.metrics.banding import (
    ChromaCAMBI,
    FlatNoise,
    banding_scores,
    flat_mask,
    round_8bit,
    texture_mask,
    ycbcr_codes,
)
from src.metrics.cambi import CAMBI, cambi_rgb
from src.metrics.collection import CLEAN, METRICS, NO_REFERENCE, restoration_metrics, update_metrics
from src.utils.threads import one_torch_thread

H, W = 240, 320


@pytest.fixture(autouse=True)
def _one_thread():
    with one_torch_thread():  # small tensors on a shared machine: more threads only stall
        yield


def _staircase() -> torch.Tensor:
    """``(3, H, W)`` grey ramp 0.3 -> 0.6 cut to 6 bits, on the 8-bit grid: bands 4 codes apart, 10 px wide."""
    ramp = torch.linspace(0.3, 0.6, W).expand(3, H, W)
    return round_8bit(torch.round(ramp * 63) / 63)


def _rgb_with(y: int, cb: int, cr: int = 128) -> torch.Tensor:
    """An 8-bit RGB colour ``(3,)`` whose BT.709 codes are exactly Y = ``y``, Cb = ``cb`` (Cr as close to ``cr``
    as the 8-bit grid allows): the ideal inverse, then the nearest triples searched."""
    yp, pb, pr = (y - 16) / 219, (cb - 128) / 224, (cr - 128) / 224
    r, b = yp + 1.5748 * pr, yp + 1.8556 * pb
    g = (yp - 0.2126 * r - 0.0722 * b) / 0.7152
    base = torch.tensor([r, g, b]).mul(255).round()
    best = None
    for d in itertools.product(range(-3, 4), repeat=3):
        c = (base + torch.tensor(d, dtype=torch.float32)) / 255
        codes = ycbcr_codes(c.view(3, 1, 1)).flatten().tolist()
        if codes[:2] == [y, cb] and (best is None or abs(codes[2] - cr) < best[0]):
            best = (abs(codes[2] - cr), c)
    assert best is not None
    return best[1]


def test_round_8bit_and_ycbcr_codes():
    x = torch.tensor([-0.1, 0.0, 0.5 / 255, 0.7 / 255, 0.5, 1.2]).view(1, 1, 6).expand(3, 1, 6)
    assert (round_8bit(x)[0, 0] * 255).tolist() == [0, 0, 0, 1, 128, 255]  # half to even, clamped
    colours = torch.tensor([[0, 0, 0], [1, 1, 1], [0, 0, 1], [1, 0, 0]], dtype=torch.float32).T.reshape(3, 1, 4)
    y, cb, cr = ycbcr_codes(colours)[:, 0].tolist()
    assert y[:2] == [16, 235] and cb[:2] == [128, 128] and cr[:2] == [128, 128]  # greys sit at neutral chroma
    assert cb[2] == 240 and cr[3] == 240  # pure blue / red reach the top of the chroma range
    assert ycbcr_codes(colours[None].expand(2, 3, 1, 4)).shape == (2, 3, 1, 4)
    assert ycbcr_codes(colours).dtype == torch.int64


def test_dither_hides_a_staircase_rounding_does_not():
    stair = _staircase()
    rounded = banding_scores(stair, stair)["cambi_mlc5"]
    assert rounded > 20
    # a float output: the staircase plus noise under half a code; rounding it gives the staircase back
    noisy = stair + (torch.rand(stair.shape, generator=torch.Generator().manual_seed(0)) - 0.5) * 0.9 / 255
    assert banding_scores(noisy, stair)["cambi_mlc5"] == pytest.approx(rounded)
    # the same staircase dithered into the 8-bit codes: every band is still there, CAMBI sees none
    dithered = round_8bit(stair + torch.randn(1, H, W, generator=torch.Generator().manual_seed(1)) / 255)
    scores = banding_scores(dithered, stair)
    assert scores["cambi_mlc5"] < 0.05 * rounded and scores["cambi"] < 0.1
    assert float(cambi_rgb(dithered[None], max_log_contrast=5)[0]) == pytest.approx(scores["cambi_mlc5"])
    # what the dither costs shows in flat_noise instead
    assert scores["flat_noise"] > 0.5 > banding_scores(noisy, stair)["flat_noise"]


def test_smooth_16bit_ramp_scores_low():
    ramp = torch.linspace(0.0, 1.0, W).expand(3, H, W)
    r16 = torch.round(ramp * 65535) / 65535
    scores = banding_scores(r16)
    assert scores["cambi"] < 0.5 and scores["cambi_mlc5"] < 1.0
    assert scores["cambi_cb_mlc5"] == 0.0 and scores["cambi_cr_mlc5"] == 0.0  # grey: no chroma at all


def test_chroma_only_staircase():
    bands = 10
    colours = [_rgb_with(120, 112 + 4 * i) for i in range(bands)]  # constant luma, Cb 4 codes a band
    img = torch.stack([colours[j * bands // W] for j in range(W)], dim=-1)[:, None, :].expand(3, H, W).contiguous()
    codes = ycbcr_codes(img)
    assert bool((codes[0] == 120).all()) and codes[1].unique().numel() == bands
    scores = banding_scores(img)
    assert scores["cambi_cb_mlc5"] > 10
    assert scores["cambi"] == 0.0 and scores["cambi_mlc5"] == 0.0


def test_flat_noise():
    flat = torch.full((3, 64, 64), 0.5)
    assert banding_scores(flat)["flat_noise"] == 0.0
    assert bool(flat_mask(flat).all())
    noisy = flat + torch.randn(1, 64, 64, generator=torch.Generator().manual_seed(0)) * 2 / 255
    assert banding_scores(noisy, flat)["flat_noise"] > 0.5
    # the mask follows the banded input: nothing flat in it, nothing to measure
    edges = torch.zeros(3, 64, 64)
    edges[:, :, ::2] = 1.0
    assert not bool(flat_mask(edges).any()) and math.isnan(banding_scores(noisy, edges)["flat_noise"])


def test_texture_psnr():
    g = torch.Generator().manual_seed(0)
    banded = torch.rand(1, 96, 96, generator=g).expand(3, 96, 96).contiguous()  # noise texture
    assert bool(texture_mask(banded).all())
    assert banding_scores(round_8bit(banded), banded)["texture_psnr"] >= 100  # identity (capped)
    blurred = torch.nn.functional.avg_pool2d(banded[None], 5, stride=1, padding=2, count_include_pad=False)[0]
    assert banding_scores(blurred, round_8bit(banded))["texture_psnr"] < 20
    assert math.isnan(banding_scores(torch.full((3, 32, 32), 0.5), torch.full((3, 32, 32), 0.5))["texture_psnr"])
    assert "texture_psnr" not in banding_scores(banded)  # needs the input


def test_small_images_and_clean_reference():
    g = torch.Generator().manual_seed(0)
    small = torch.rand(3, 40, 56, generator=g)
    scores = banding_scores(small, small, clean=small)
    assert set(scores) == {
        "cambi",
        "cambi_mlc5",
        "cambi_cb_mlc5",
        "cambi_cr_mlc5",
        "flat_noise",
        "texture_psnr",
        "psnr",
        "psnr_smooth",
    }
    assert all(isinstance(v, float) for v in scores.values())
    assert scores["psnr"] > 50  # the rounded output against its own float values: within half a code
    with pytest.raises(ValueError):
        banding_scores(small[None])
    with pytest.raises(ValueError):
        banding_scores(small, small[:, :20])


def test_metrics_match_banding_scores():
    stair = _staircase()
    noisy = stair + 0.4 / 255 * torch.sign(torch.randn(stair.shape, generator=torch.Generator().manual_seed(2)))
    batch, banded = torch.stack([noisy, stair.flip(-1)]), torch.stack([stair, stair.flip(-1)])
    expected = [banding_scores(o, b) for o, b in zip(batch, banded)]
    mean = {k: sum(e[k] for e in expected) / 2 for k in expected[0]}
    for metric, key in (
        (CAMBI(), "cambi"),
        (CAMBI(max_log_contrast=5), "cambi_mlc5"),
        (ChromaCAMBI("cb"), "cambi_cb_mlc5"),
        (ChromaCAMBI("cr"), "cambi_cr_mlc5"),
    ):
        metric.update(batch)
        assert float(metric.compute()) == pytest.approx(mean[key], abs=1e-9), key
    fn = FlatNoise()
    fn.update(batch, None, banded=banded)
    assert float(fn.compute()) == pytest.approx(mean["flat_noise"])
    with pytest.raises(ValueError):
        ChromaCAMBI("y")


def test_collection_has_clean_floor_and_takes_the_banded_input():
    small = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    col = restoration_metrics("val/", suffixes=("", CLEAN))
    assert {f"{n}{CLEAN}" for n in NO_REFERENCE} | set(METRICS) == set(col.keys(keep_base=True))
    update_metrics(col, "", small, small, small)
    update_metrics(col, CLEAN, small, small, small)
    out = col.compute()
    assert "val/cambi_mlc5_clean" in out and "val/flat_noise" in out and "val/psnr_clean" not in out
