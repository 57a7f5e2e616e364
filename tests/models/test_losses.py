import pytest
import torch

from src.models.losses import TERMS, DebandLoss, FFTLoss, radial_frequency
from src.utils.errors import ConfigError


@pytest.mark.parametrize("weighting", ["none", "radial", "focal"])
def test_fft_loss_zero_iff_equal(weighting):
    torch.manual_seed(0)
    a = torch.rand(2, 3, 16, 20)
    loss = FFTLoss(weighting, alpha=1.0)
    assert loss(a, a.clone()).item() == 0.0
    b = a.clone()
    b[0, 1, 3, 4] += 0.01
    assert loss(a, b).item() > 0


def test_fft_loss_does_not_grow_with_size():
    torch.manual_seed(0)
    small = torch.randn(1, 3, 32, 32) * 0.05
    big = torch.randn(1, 3, 256, 256) * 0.05
    loss = FFTLoss()
    zero_s, zero_b = torch.zeros_like(small), torch.zeros_like(big)
    # white noise of the same level gives the same loss at any size
    assert loss(small, zero_s).item() == pytest.approx(loss(big, zero_b).item(), rel=0.1)


def test_radial_weighting_favours_high_frequencies():
    h = w = 32
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    low = (0.05 * torch.cos(2 * torch.pi * xx / w)).expand(1, 3, h, w)
    high = (0.05 * torch.cos(2 * torch.pi * 12 * xx / w)).expand(1, 3, h, w)
    zero = torch.zeros(1, 3, h, w)
    plain, radial = FFTLoss("none"), FFTLoss("radial", alpha=1.0)
    assert plain(low, zero).item() == pytest.approx(plain(high, zero).item(), rel=1e-4)
    assert radial(high, zero).item() > 5 * radial(low, zero).item()
    f = radial_frequency(h, w)
    assert f[0, 0] == 0 and f.max() == pytest.approx(2**0.5 / 2)


def test_focal_weighting_emphasises_the_worst_frequency():
    h = w = 32
    yy, xx = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    big = (0.2 * torch.cos(2 * torch.pi * 3 * xx / w)).expand(1, 3, h, w)
    small = (0.02 * torch.cos(2 * torch.pi * 9 * yy / h)).expand(1, 3, h, w)
    zero = torch.zeros(1, 3, h, w)
    plain, focal = FFTLoss("none"), FFTLoss("focal", alpha=1.0)
    # relative to the plain loss, focal weighting shrinks the contribution of the smaller error
    ratio_plain = plain(big + small, zero) / plain(big, zero)
    ratio_focal = focal(big + small, zero) / focal(big, zero)
    assert ratio_focal < ratio_plain


def test_weighted_sum_and_terms():
    torch.manual_seed(0)
    a, b = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    loss = DebandLoss({"fft": 1.0, "l1": 2.0, "l2": 0.5, "charbonnier": 1.0, "ssim": 0.1})
    total, parts = loss(a, b)
    assert set(parts) == {"fft", "l1", "l2", "charbonnier", "ssim"}
    expected = parts["fft"] + 2 * parts["l1"] + 0.5 * parts["l2"] + parts["charbonnier"] + 0.1 * parts["ssim"]
    assert torch.allclose(total, expected)
    assert parts["l1"].item() == pytest.approx((a - b).abs().mean().item())
    zero, _ = loss(a, a.clone())
    assert zero.item() == pytest.approx(0.0, abs=2e-3)  # charbonnier's eps floor
    # a zero weight drops the term
    assert set(DebandLoss({"fft": 0.0, "l1": 1.0})(a, b)[1]) == {"l1"}


def test_gradients_flow_through_fft_loss():
    a = torch.rand(1, 3, 16, 16, requires_grad=True)
    total, _ = DebandLoss({"fft": 1.0}, freq_weighting="focal")(a, torch.rand(1, 3, 16, 16))
    total.backward()
    assert a.grad is not None and a.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"weights": {"perceptual": 1.0}},
        {"weights": {"fft": 0.0}},
        {"weights": {"fft": -1.0}},
        {"freq_weighting": "log"},
        {"weights": {"l1": 1.0}, "freq_weighting": "bogus"},
    ],
)
def test_bad_config(kwargs):
    with pytest.raises(ConfigError):
        DebandLoss(**kwargs)


def test_input_normalisation_counts_each_image_by_its_own_degradation():
    torch.manual_seed(0)
    clean = torch.rand(2, 3, 16, 16)
    noise = torch.randn(2, 3, 16, 16)
    ref = clean + noise * torch.tensor([0.1, 0.005]).view(2, 1, 1, 1)  # one heavily, one lightly degraded
    halfway = clean + 0.5 * (ref - clean)
    loss = DebandLoss({"fft": 1.0, "l1": 1.0}, normalize="input", normalize_eps=1e-9)
    total, parts = loss(halfway, clean, reference=ref)
    # each image has half its degradation left: 0.5 per term, whatever its size
    assert total.item() == pytest.approx(2 * 0.5, rel=1e-4)
    # the logged parts stay the plain (unnormalised) means
    assert parts["l1"].item() == pytest.approx((halfway - clean).abs().mean().item(), rel=1e-5)
    plain, _ = DebandLoss({"fft": 1.0, "l1": 1.0})(halfway, clean)
    assert plain.item() == pytest.approx(sum(parts.values()).item(), rel=1e-6)
    with pytest.raises(ValueError):
        loss(halfway, clean)
    with pytest.raises(ConfigError):
        DebandLoss(normalize="banded")


def test_flat_l1_counts_only_the_flat_pixels_of_the_target():
    from src.models.losses import FlatL1Loss

    torch.manual_seed(0)
    flat = torch.full((1, 3, 32, 32), 0.5)
    textured = flat.clone()
    textured[..., 16:] = torch.rand(1, 3, 32, 16)  # noise on the right half: not flat
    err = torch.zeros_like(flat)
    err[..., :8] = 0.02  # an error far inside the flat half
    err[..., 24:] = 0.05  # an error inside the texture
    loss = FlatL1Loss()
    assert torch.isclose(loss(flat + err, flat), (err.abs()).mean(), atol=1e-6)  # all flat: plain L1
    # on the textured target only the error in the flat half counts, averaged over every pixel
    assert torch.isclose(loss(textured + err, textured), torch.tensor(0.02 * 8 / 32), atol=1e-6)
    total, parts = DebandLoss({"l1": 1.0, "flat_l1": 2.0})(textured + err, textured)
    assert set(parts) == {"l1", "flat_l1"} and torch.isclose(total, parts["l1"] + 2 * parts["flat_l1"])


def test_every_term_shares_the_base_class_and_its_mean() -> None:
    from src.models.losses import LossTerm

    g = torch.Generator().manual_seed(1)
    pred, target = torch.rand(3, 3, 24, 24, generator=g), torch.rand(3, 3, 24, 24, generator=g)
    loss = DebandLoss(weights={t: 1.0 for t in TERMS})
    for name, term in loss.terms.items():
        assert isinstance(term, LossTerm), name
        per = term.per_sample(pred, target)
        assert per.shape == (3,)
        torch.testing.assert_close(term(pred, target), per.mean())
