import math

import torch

from src.metrics.smooth_psnr import SmoothRegionPSNR, smooth_mask, smooth_psnr


def _ramp_and_texture(h: int = 64, w: int = 64) -> torch.Tensor:
    """Left half a gentle ramp, right half noise texture."""
    g = torch.Generator().manual_seed(0)
    img = torch.linspace(0.2, 0.3, w).expand(1, 3, h, w).clone()
    img[..., w // 2 :] = torch.rand(1, 3, h, w // 2, generator=g)
    return img


def test_mask_finds_the_flat_half():
    mask = smooth_mask(_ramp_and_texture())
    assert mask[..., :, :28].all()
    assert not mask[..., :, 36:].any()


def test_smooth_psnr_ignores_errors_in_texture():
    clean = _ramp_and_texture()
    pred = clean.clone()
    pred[..., 40:] += 0.2  # error only in the textured half
    assert smooth_psnr(pred, clean).item() == 100.0
    pred2 = clean.clone()
    pred2[..., :8] += 0.01
    value = smooth_psnr(pred2, clean).item()
    # 8 of the ~32 smooth columns carry an error of 0.01: mse = 1e-4 * 8 / n_smooth_cols
    n_cols = smooth_mask(clean)[0, 0, 0].sum().item()
    assert math.isclose(value, 10 * math.log10(1 / (1e-4 * 8 / n_cols)), rel_tol=1e-3)


def test_no_smooth_pixels_gives_nan_and_metric_skips_it():
    g = torch.Generator().manual_seed(1)
    texture = torch.rand(1, 3, 32, 32, generator=g)
    assert math.isnan(smooth_psnr(texture * 0.9, texture).item())
    metric = SmoothRegionPSNR()
    clean = _ramp_and_texture()
    metric.update(texture * 0.9, texture)
    metric.update(clean + 0.01, clean)
    assert metric.compute().item() == smooth_psnr(clean + 0.01, clean).item()
