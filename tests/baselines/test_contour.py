import subprocess
import sys

import numpy as np
import pytest
import torch

import src.baselines.contour as contour
from src.baselines.contour import ContourConfig, chroma_from_luma, contour_fill, contour_plane, nearest_target
from src.colour.yuv import rgb_to_ycbcr709, ycbcr709_to_rgb
from src.utils.errors import ConfigError


def _ramp(h: int, w: int, lo: float, hi: float) -> torch.Tensor:
    """A grey horizontal ramp ``(3, h, w)`` from ``lo`` to ``hi`` (8-bit codes of R = G = B)."""
    row = torch.linspace(lo, hi, w, dtype=torch.float64) / 255
    return row.view(1, 1, w).expand(3, h, w).clone()


def _band(x: torch.Tensor, step: float) -> torch.Tensor:
    """Round to a grid of ``step`` 8-bit codes: plateaus ``step`` codes apart."""
    return torch.round(x * 255 / step) * step / 255


def _codes_err(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a.double() - b.double()).abs() * 255


def test_wide_bands_become_the_ramp():
    # 6 plateaus of 256 px, 5 codes apart: far wider than any local filter's reach
    clean = _ramp(64, 1536, 100, 130)
    banded = _band(clean, 5)
    out = contour_fill(banded)
    inner = (slice(None), slice(None), slice(300, 1236))  # away from the open ends of the ramp
    before = _codes_err(banded, clean)[inner].mean().item()
    after = _codes_err(out, clean)[inner].mean().item()
    assert before > 1.0
    assert after < 0.25 * before
    # the ramp is rebuilt across each plateau's whole width; what is left sits on the hard borders
    # themselves (within a block), which the network before it smooths in the product
    assert torch.quantile(_codes_err(out, clean)[0][inner[1:]].flatten(), 0.9).item() < 0.2


def test_bands_wider_than_640_px_are_rebuilt():
    # 4 plateaus of 900 px, 5 codes apart (a 4K sky's bands): each block's borders lie up to 900 px away
    clean = _ramp(32, 3600, 100, 120)
    banded = _band(clean, 5)
    inner = (slice(None), slice(None), slice(1000, 2600))
    before = _codes_err(banded, clean)[inner].mean().item()
    assert before > 1.0
    after = _codes_err(contour_fill(banded), clean)[inner].mean().item()
    assert after < 0.25 * before
    # a reach shorter than the bands leaves them where they were
    short = _codes_err(contour_fill(banded, ContourConfig(reach=640)), clean)[inner].mean().item()
    assert short > 0.8 * before


def test_smooth_ramp_edges_and_texture_are_kept():
    smooth = _ramp(64, 512, 60, 70)
    assert _codes_err(contour_fill(smooth), smooth).max().item() < 0.3
    edge = torch.full((3, 64, 128), 40 / 255, dtype=torch.float64)
    edge[:, :, 64:] = 200 / 255
    assert _codes_err(contour_fill(edge), edge).max().item() < 1e-3
    g = torch.Generator().manual_seed(0)
    texture = (
        (0.5 + 12 / 255 * torch.randn(1, 128, 128, generator=g, dtype=torch.float64)).clamp(0, 1).expand(3, -1, -1)
    )
    assert _codes_err(contour_fill(texture), texture).mean().item() < 0.05


def test_a_steep_smooth_gradient_is_no_band():
    # an 8-bit smooth wave whose 8 px blocks step ~2.7 codes apart: every block a level of its own, no plateau
    x = torch.arange(768, dtype=torch.float64)
    row = torch.round(120 + 20 * torch.sin(x / 60)) / 255
    wave = row.view(1, 1, -1).expand(3, 96, -1).clone()
    assert _codes_err(contour_fill(wave, ContourConfig(gate="rules")), wave).max().item() < 0.01
    # the learned gate moves it by a fraction of a code at most: the same 8-bit codes
    out = contour_fill(wave)
    assert _codes_err(out, wave).max().item() < 0.45
    assert torch.equal(torch.round(out.double() * 255), torch.round(wave * 255))
    # without the plateau-width test the hand rules take its blocks for band crossings and move them
    assert _codes_err(contour_fill(wave, ContourConfig(min_width=0.0, gate="rules")), wave).max().item() > 0.3


def test_shapes_dtype_and_odd_sizes():
    x = _band(_ramp(37, 53, 20, 40), 4).float()
    out = contour_fill(x)
    assert out.shape == x.shape and out.dtype == torch.float32
    assert 0 <= out.min() and out.max() <= 1
    batch = contour_fill(torch.stack([x, x.flip(-1)]))
    assert batch.shape == (2, 3, 37, 53)
    assert torch.allclose(batch[0], out)
    with pytest.raises(ValueError, match="expects"):
        contour_fill(x[:1])


def test_plane_changes_at_most_max_change_fade():
    p = torch.full((32, 32), 100.0)
    p[:, 16:] = 140.0  # an edge, 40 codes: not a band
    assert torch.equal(contour_plane(p), p.double())


def _sky(h: int = 96, w: int = 768) -> torch.Tensor:
    """BT.709 codes ``(3, h, w)`` of a sky: luma rising 40 codes left to right, Cb falling 40 codes with it and
    Cr rising 20."""
    y = torch.linspace(100, 140, w).view(1, 1, w).expand(1, h, w)
    return torch.cat([y, 150 - (y - 100), 120 + 0.5 * (y - 100)]).float()


def test_chroma_steps_are_refitted_to_the_luma():
    clean = _sky()
    banded = clean.clone()
    banded[1:] = torch.round(banded[1:] / 4) * 4  # chroma plateaus 4 codes apart, about 77 px wide; luma kept
    out = chroma_from_luma(banded, banded)
    inner = (slice(1, 3), slice(None), slice(64, -64))
    before = (banded - clean)[inner].abs().mean().item()
    after = (out - clean)[inner].abs().mean().item()
    assert before > 0.9 and after < 0.7 * before
    assert torch.equal(out[0], banded[0])  # luma untouched
    assert (out - banded)[1:].abs().max().item() <= ContourConfig().chroma_fit_max_change + 1e-5
    assert torch.equal(chroma_from_luma(banded, banded, ContourConfig(chroma_fit_radius=0)), banded)


def test_chroma_refits_take_out_more_of_coarse_chroma_steps_only_where_asked():
    clean = _sky()
    banded = clean.clone()
    banded[1:] = torch.round(banded[1:] / 4) * 4  # chroma plateaus 4 codes apart: one fit moves at most 1 code
    inner = (slice(1, 3), slice(None), slice(64, -64))
    once = chroma_from_luma(banded, banded, ContourConfig(chroma_refits=0))
    ones, zeros = torch.ones(1, 96, 768), torch.zeros(1, 96, 768)
    again = chroma_from_luma(banded, banded, ContourConfig(chroma_refits=2), refit=ones)
    err_once, err_again = ((o - clean)[inner].abs().mean().item() for o in (once, again))
    assert err_again < 0.6 * err_once
    assert torch.equal(again[0], banded[0])
    assert (again - banded)[1:].abs().max().item() <= 3 * ContourConfig().chroma_fit_max_change + 1e-4
    # no refit where it is not asked for: bit for bit the single fit
    assert torch.equal(chroma_from_luma(banded, banded, ContourConfig(chroma_refits=2), refit=zeros), once)


def test_chroma_refits_follow_the_luma_ramps():
    # chroma plateaus over a smooth luma: the ramps move the luma by a hair at most, so the refits hardly act
    sky = _sky()
    sky[1:] = torch.round(sky[1:] / 6) * 6
    rgb = ycbcr709_to_rgb(sky).clamp(0, 1)
    assert _codes_err(contour_fill(rgb), contour_fill(rgb, ContourConfig(chroma_refits=0))).max().item() < 0.1
    # a banded luma ramp with a colour cast banded with it: the luma is rebuilt, and the refits take out more
    # of the chroma steps
    clean = _sky(64, 1536)
    ycc = clean.clone()
    ycc[0] = torch.round(ycc[0] / 5) * 5
    ycc[1:] = torch.round(ycc[1:] / 6) * 6
    rgb = ycbcr709_to_rgb(ycc).clamp(0, 1)
    inner = (slice(1, 3), slice(None), slice(200, -200))
    err = [
        (rgb_to_ycbcr709(contour_fill(rgb, ContourConfig(chroma_refits=n))) - clean)[inner].abs().mean().item()
        for n in (0, 2)
    ]
    assert err[1] < 0.85 * err[0]


def test_chroma_fit_leaves_colour_edges_and_unbanded_chroma_alone():
    # two colours of one luma side by side: no line through luma explains them
    edge = torch.tensor([120.0, 128.0, 128.0]).view(3, 1, 1).repeat(1, 96, 768)
    edge[1, :, 384:] += 12
    moved = (chroma_from_luma(edge, edge) - edge).abs()
    assert moved.max().item() < 0.5 and moved[:, :, 376:392].max().item() < 1e-3  # nothing at the edge itself
    # the photo's own chroma detail (chroma that is not flat in the reference) stays
    g = torch.Generator().manual_seed(0)
    detail = _sky()
    detail[1:] += torch.randn(2, 96, 768, generator=g)
    assert (chroma_from_luma(detail, detail) - detail).abs().mean().item() < 0.02


def test_contour_fill_reference_must_match():
    x = _band(_ramp(40, 64, 20, 40), 4).float()
    assert torch.equal(contour_fill(x, reference=x), contour_fill(x))
    with pytest.raises(ValueError, match="reference"):
        contour_fill(x, reference=x[:, :20])


@pytest.mark.parametrize(
    "kwargs",
    [
        {"luma_block": 0},
        {"chroma_block": 17},
        {"threshold": 0.1},
        {"max_step": 1.0},
        {"reach": 1},
        {"step_match": 1.5},
        {"max_change": "x"},
        {"min_width": -1.0},
        {"chroma_fit_radius": -1},
        {"chroma_fit_residual": -0.5},
        {"chroma_fit_max_change": float("nan")},
        {"chroma_refits": -1},
        {"chroma_refit_codes": 0.0},
    ],
)
def test_config_checked(kwargs):
    with pytest.raises(ConfigError):
        ContourConfig(**kwargs)


def test_ycbcr709_round_trip():
    g = torch.Generator().manual_seed(1)
    rgb = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64)
    codes = rgb_to_ycbcr709(rgb)
    assert torch.allclose(ycbcr709_to_rgb(codes), rgb, atol=1e-12)
    white = rgb_to_ycbcr709(torch.ones(3, 1, 1, dtype=torch.float64)).flatten().tolist()
    assert white == pytest.approx([235.0, 128.0, 128.0])


def test_tracker_holds_a_still_picture_steady():
    from src.baselines.contour import ContourTracker

    clean = _ramp(48, 1200, 90, 120)
    banded = _band(clean, 5).float()
    g = torch.Generator().manual_seed(3)
    tracker = ContourTracker()
    outs = []
    for _ in range(4):
        # the same picture with a little codec-like noise in a corner far away
        frame = banded.clone()
        frame[:, :8, :8] += 0.5 / 255 * torch.rand(3, 8, 8, generator=g)
        outs.append(tracker(frame, frame))
    # the first frame gets the full correction; still pixels then change by a fraction of a code at most
    err0 = (outs[0].double() - clean).abs()[..., 200:1000].mean() * 255
    assert err0 < 0.3
    for a, b in zip(outs, outs[1:]):
        assert (a - b).abs()[..., 16:, :].max() * 255 < 0.05


def test_tracker_reuses_its_correction_while_the_flat_areas_stand_still():
    from src.baselines.contour import ContourTracker

    banded = _band(_ramp(48, 1200, 90, 120), 5).float()
    tracker = ContourTracker(max_reuse=2)
    outs = [tracker(banded, banded) for _ in range(7)]
    # computed on frames 0, 3 and 6; reused in between, so a still shot is not recomputed every frame
    assert tracker.passes == 3
    assert all(torch.equal(outs[0], o) for o in outs[1:3])
    # a moving picture is recomputed every frame
    moving = ContourTracker()
    for i in range(3):
        frame = _band(_ramp(48, 1200, 90 + 10 * i, 120 + 10 * i), 5).float()
        moving(frame, frame)
    assert moving.passes == 3
    with pytest.raises(ConfigError):
        ContourTracker(still_fraction=2.0)


def test_tracker_follows_a_changed_picture():
    from src.baselines.contour import ContourTracker

    a = _band(_ramp(48, 1200, 90, 120), 5).float()
    b = _band(_ramp(48, 1200, 110, 140), 5).float()  # 20 codes brighter: every pixel changed
    tracker = ContourTracker()
    tracker(a, a)
    out = tracker(b, b)
    fresh = ContourTracker()(b, b)
    assert (out - fresh).abs().max() * 255 < 1e-3  # nothing carried where the picture changed
    with pytest.raises(ConfigError):
        ContourTracker(carry=1.5)


@pytest.mark.parametrize("k", [1, 4, 8])
def test_block_range_is_max_minus_min_pooling(k):
    import torch.nn.functional as F

    from src.baselines.contour import _block_range

    t = torch.rand(1, 1, 6 * k, 10 * k, generator=torch.Generator().manual_seed(k)) * 255
    assert torch.equal(_block_range(t, k), F.max_pool2d(t, k) + F.max_pool2d(-t, k))


@pytest.mark.parametrize("fast", [True, False])
def test_nearest_target_is_scipys_feature_transform(fast, monkeypatch):
    from scipy import ndimage

    if not fast:  # the public API, used where scipy's compiled module cannot be loaded on its own
        monkeypatch.setattr(contour, "_feature_transform_fn", lambda: None)
    else:
        assert contour._feature_transform_fn() is not None
    rng = np.random.default_rng(0)
    for p in (0.002, 0.05, 0.5):
        target = rng.random((57, 91)) < p
        target[0, 0] = True
        want = ndimage.distance_transform_edt(~target, return_distances=False, return_indices=True)
        got = nearest_target(target)
        for w, g in zip(want, got):
            np.testing.assert_array_equal(g, w)


def test_contour_pass_does_not_import_scipy_ndimage():
    # the package's import takes 0.2-0.45 s, a tenth of a one-image deband run
    code = "import sys, src.baselines.contour as c; c._feature_transform_fn(); print('scipy.ndimage' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
