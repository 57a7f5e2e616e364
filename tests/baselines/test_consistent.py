"""Non-blind dequantization (src.baselines.consistent): stays in the cells, flattens a banded ramp."""

from __future__ import annotations

import pytest
import torch
from kornia.color import rgb_to_ycbcr

from src.baselines.consistent import consistent_smooth, consistent_smooth_ycbcr, project, quantization_box, ycbcr_box
from src.data.degradations import quantize, quantize_ycbcr
from src.utils.errors import ConfigError


def _ramp(h: int = 32, w: int = 256) -> torch.Tensor:
    """``(1, 3, h, w)``: a slow colour ramp, a few 5-bit codes across."""
    x = torch.linspace(0, 1, w).expand(h, w)
    return torch.stack([0.3 + 0.2 * x, 0.5 - 0.15 * x, 0.4 + 0.1 * x])[None]


def _mse(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(((a - b) ** 2).mean())


def test_cells_hold_the_clean_image_and_open_at_the_ends():
    clean = torch.rand(2, 3, 16, 16)
    q = quantize(clean, 4)
    lo, hi = quantization_box(q, 4)
    assert bool(((clean >= lo - 1e-6) & (clean <= hi + 1e-6)).all())
    assert torch.isinf(lo[q == 0]).all() and torch.isinf(hi[q == 1]).all()
    mid = (q > 0) & (q < 1)
    assert torch.allclose((hi - lo)[mid], torch.full_like(hi[mid], 1 / 15))


def test_ycbcr_cells_hold_the_clean_image():
    clean = _ramp() * 0.8 + 0.1
    lo, hi = ycbcr_box(quantize_ycbcr(clean, 6, 5), 6, 5)
    ycc = rgb_to_ycbcr(clean)
    assert bool(((ycc >= lo - 1e-5) & (ycc <= hi + 1e-5)).all())


def test_consistent_smoothing_recovers_a_banded_ramp_and_stays_in_its_cells():
    clean = _ramp()
    banded = quantize(clean, 5)
    lo, hi = quantization_box(banded, 5)
    out = consistent_smooth(banded, lo, hi, iters=400)
    assert bool(((out >= lo - 1e-6) & (out <= hi + 1e-6)).all())
    assert (out - banded).abs().max() <= 0.5 / 31 + 1e-6  # within half a code: consistent with the input
    assert _mse(out, clean) < _mse(banded, clean) / 4  # > 6 dB closer on a smooth ramp


def test_ycbcr_consistent_smoothing_beats_the_banded_input():
    clean = _ramp()
    banded = quantize_ycbcr(clean, 6, 5)
    out = consistent_smooth_ycbcr(banded, 6, 5, iters=200)
    assert out.shape == banded.shape and 0 <= out.min() and out.max() <= 1
    assert _mse(out, clean) < _mse(banded, clean) / 2
    assert consistent_smooth_ycbcr(banded, 6, 5, iters=0).sub(banded).abs().max() < 1e-5  # 0 iterations: as is


def test_a_flat_image_stays_flat():
    flat = torch.full((1, 3, 8, 8), 0.5)
    lo, hi = quantization_box(quantize(flat, 5), 5)
    out = consistent_smooth(quantize(flat, 5), lo, hi, iters=20)
    assert torch.allclose(out, quantize(flat, 5))


def test_project_clips_into_the_box():
    x = torch.tensor([-1.0, 0.5, 2.0])
    assert project(x, torch.zeros(3), torch.ones(3)).tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("kwargs", [{"iters": -1}, {"iters": 1.5}, {"rate": 0.3}, {"rate": 0.0}])
def test_bad_settings_are_config_errors(kwargs):
    x = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ConfigError):
        consistent_smooth(x, x, x, **kwargs)


def test_bad_shapes_and_bits_are_config_errors():
    x = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ConfigError, match="shape"):
        consistent_smooth(x, x[:, :1], x)
    with pytest.raises(ConfigError, match="bits"):
        quantization_box(x, 0)
