"""Tiling: tile layout, blending weights, and tiled vs untiled debanding."""

from __future__ import annotations

import pytest
import torch

from src.inference.debander import Debander
from src.inference.tiling import blend_ramp, run_tiled, tile_starts
from tests.inference.fixtures import tiny_ckpt  # noqa: F401 - fixture


@pytest.mark.parametrize("size,tile,overlap", [(100, 32, 8), (1001, 256, 32), (64, 64, 16), (65, 64, 16), (7, 64, 8)])
def test_tile_starts_cover_with_overlap(size: int, tile: int, overlap: int) -> None:
    starts = tile_starts(size, tile, overlap)
    assert starts[0] == 0
    assert starts[-1] + min(tile, size) == size
    for a, b in zip(starts, starts[1:]):
        assert b - a <= tile - overlap  # neighbours overlap by at least `overlap`
        assert b > a


def test_blend_ramp_is_complementary_and_positive() -> None:
    w = blend_ramp(64, 16, 16)
    assert torch.all(w > 0) and torch.all(w <= 1)
    assert torch.allclose(w[:16] + w[-16:], torch.ones(16), atol=1e-6)  # rising + falling ramps sum to 1
    assert torch.all(blend_ramp(10, 0, 0) == 1)


def test_run_tiled_reproduces_a_pointwise_function() -> None:
    x = torch.rand(2, 3, 100, 130)
    out = run_tiled(lambda t: t * 2 + 1, x, tile=32, overlap=8)
    assert torch.allclose(out, x * 2 + 1, atol=1e-5)


def test_tiled_and_untiled_agree(tiny_ckpt) -> None:  # noqa: F811
    d = Debander.from_checkpoint(tiny_ckpt, device="cpu")
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 150), torch.linspace(0, 1, 230), indexing="ij")
    img = torch.stack([yy, xx, (yy + xx) / 2])[None]
    img = (img * 31).round() / 31  # banded
    full = d.deband_batch(img, tile=0)
    tiled = d.deband_batch(img, tile=64, overlap=32)
    assert (full - img).abs().max() > 1e-2  # the net does change the image
    diff = (full - tiled).abs()
    assert diff.max() < 2e-2, diff.max()
    assert diff.mean() < 1e-3, diff.mean()
