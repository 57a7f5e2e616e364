"""The luma-guided filter: box means, agreement with kornia, edge keeping, chroma from luma."""

from __future__ import annotations

import kornia
import pytest
import torch

from src.baselines.guided import box_mean, guided_filter, linear_fit, luma


def test_box_mean_matches_a_padded_average():
    x = torch.rand(2, 3, 13, 17)
    for r in (1, 3):
        k = 2 * r + 1
        ref = torch.nn.functional.avg_pool2d(torch.nn.functional.pad(x, (r, r, r, r), mode="replicate"), k, stride=1)
        assert torch.allclose(box_mean(x, r), ref, atol=1e-6)
    assert torch.equal(box_mean(x, 0), x)
    # a radius beyond the image is fine (replicate padding): the result stays finite and in range
    big = box_mean(x, 40)
    assert big.shape == x.shape and float(big.min()) >= 0.0 and float(big.max()) <= 1.0


def test_box_mean_keeps_fine_steps_on_wide_rows():
    # 4K-wide, one 10-bit code apart: float32 cumulative sums would lose this step, float64 ones keep it
    x = torch.full((1, 1, 3, 3840), 0.7)
    x[..., 3000:] += 1 / 1023
    m = box_mean(x, 2)
    assert abs(float(m[0, 0, 1, 3500] - m[0, 0, 1, 100]) - 1 / 1023) < 1e-6


def test_matches_kornia_guided_blur_per_channel():
    torch.manual_seed(0)
    x = torch.rand(1, 3, 24, 31)
    g = luma(x)
    ours = guided_filter(x, 2, 1e-3)
    ref = torch.cat(
        [kornia.filters.guided_blur(g, x[:, c : c + 1], 5, 1e-3, border_type="replicate") for c in range(3)], 1
    )
    assert torch.allclose(ours, ref, atol=1e-5)


def test_keeps_an_edge_and_flattens_a_flat_region():
    x = torch.full((1, 3, 32, 32), 0.2)
    x[..., 16:] = 0.8
    noisy = x + 0.002 * torch.randn_like(x)
    out = guided_filter(noisy, 4, 1e-4)
    # the 0.6 step is far above sqrt(eps): it stays sharp
    assert float(out[..., 15].mean()) < 0.25 and float(out[..., 16].mean()) > 0.75
    # the noise, below sqrt(eps), is averaged away
    assert float((out - x)[..., 2:12].std()) < 0.5 * float((noisy - x)[..., 2:12].std())


def test_gives_coarse_chroma_the_luma_ramp():
    # a smooth ramp whose blue channel is banded 8x coarser than its luma (bands ~28 px wide): once the window
    # spans a blue step, the fit carries the luma's ramp into blue
    ramp = torch.linspace(0.3, 0.6, 128).view(1, 1, 1, 128).expand(1, 1, 32, 128)
    clean = torch.cat([ramp, ramp, 0.5 * ramp + 0.2], 1)
    banded = clean.clone()
    banded[:, :2] = torch.round(clean[:, :2] * 255) / 255
    banded[:, 2:] = torch.round(clean[:, 2:] * 31) / 31
    out = guided_filter(banded, 16, 1e-4)
    err_in = (banded[:, 2, :, 24:-24] - clean[:, 2, :, 24:-24]).abs().mean()
    err_out = (out[:, 2, :, 24:-24] - clean[:, 2, :, 24:-24]).abs().mean()
    assert err_out < 0.25 * err_in


@pytest.mark.parametrize("shape", [(1, 3, 1, 1), (2, 3, 5, 77)])
def test_any_size(shape):
    out = guided_filter(torch.rand(*shape), 8, 1e-3)
    assert out.shape == shape and torch.isfinite(out).all()


def test_fast_form_is_close_to_the_exact_filter():
    torch.manual_seed(1)
    y, x = torch.meshgrid(torch.linspace(0, 1, 96), torch.linspace(0, 1, 130), indexing="ij")
    img = torch.stack([0.3 + 0.4 * x, 0.5 - 0.2 * y, 0.2 + 0.3 * x * y])[None]
    img = torch.round(img * 31) / 31
    img[..., 40:60, 50:90] = 0.9  # an edge
    exact = guided_filter(img, 8, 1e-4)
    for s in (2, 4):
        fast = guided_filter(img, 8, 1e-4, scale=s)
        assert fast.shape == img.shape
        assert float((fast - exact).pow(2).mean()) < 4e-5  # PSNR above 44 dB against the exact filter
    # too small to shrink: the exact filter
    tiny = torch.rand(1, 3, 5, 40)
    assert torch.equal(guided_filter(tiny, 4, 1e-3, scale=4), guided_filter(tiny, 4, 1e-3))


def test_fast_form_scales_keep_a_window():
    from src.baselines.guided import guided_scale

    assert [guided_scale(r) for r in (1, 3, 4, 7, 8, 16, 32)] == [1, 1, 2, 2, 4, 4, 4]
    assert all(r / guided_scale(r) >= 2 for r in (4, 5, 8, 16))


def test_linear_fit_finds_the_line_and_what_it_leaves():
    g = torch.Generator().manual_seed(0)
    guide = torch.rand(1, 1, 48, 64, generator=g)
    noise = 0.1 * torch.randn(1, 2, 48, 64, generator=g)
    x = torch.cat([2 * guide + 3, 1 - guide], 1)
    a, b, resid = linear_fit(x, guide, 4, 1e-9, residual=True)
    assert torch.allclose(a[:, 0], torch.full_like(a[:, 0], 2.0), atol=1e-3)
    assert torch.allclose(b[:, 1], torch.ones_like(b[:, 1]), atol=1e-3)
    assert resid.abs().max().item() < 1e-5
    # noise the guide cannot explain stays in the residual, about its variance
    _, _, resid = linear_fit(x + noise, guide, 4, 1e-9, residual=True)
    assert 0.005 < resid.mean().item() < 0.012
    assert linear_fit(x, guide, 4, 1e-3)[2] is None
