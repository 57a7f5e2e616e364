"""Blue-noise mask and dithered quantisation."""

from __future__ import annotations

import numpy as np
import pytest

from src.colour.dither import STORED_MASK, HeldQuantizer, blue_noise_mask, quantize, void_and_cluster


def test_blue_noise_mask_is_a_permutation_with_little_low_frequency_energy() -> None:
    m = blue_noise_mask()
    assert m.shape == (64, 64) and m.dtype == np.float32
    assert len(np.unique(m)) == 64 * 64 and 0 < m.min() and m.max() < 1
    spec = np.abs(np.fft.fft2(m - m.mean())) ** 2
    f = np.hypot(*np.meshgrid(np.fft.fftfreq(64), np.fft.fftfreq(64)))
    low, high = spec[(f > 0) & (f < 0.1)].mean(), spec[f > 0.3].mean()
    assert low < 0.01 * high  # blue: almost no energy at low frequencies
    assert blue_noise_mask() is m  # cached


def test_the_stored_mask_is_the_generated_one() -> None:
    """The shipped file is what void_and_cluster makes (regenerate it with
    ``np.save(STORED_MASK, void_and_cluster(64, 1.5, 0))`` if the generator ever changes)."""
    assert STORED_MASK.is_file()
    np.testing.assert_array_equal(np.load(STORED_MASK), void_and_cluster(64, 1.5, 0))
    np.testing.assert_array_equal(blue_noise_mask(), void_and_cluster())
    # other arguments are generated, not read
    assert blue_noise_mask(32).shape == (32, 32)


def _runs(row: np.ndarray) -> np.ndarray:
    """Lengths of the runs of equal values along ``row``."""
    edges = np.flatnonzero(np.diff(row.astype(np.int64))) + 1
    return np.diff(np.concatenate([[0], edges, [len(row)]]))


@pytest.mark.parametrize("kind", ["blue-noise", "tpdf"])
def test_dither_breaks_up_the_steps_of_a_smooth_ramp(kind: str) -> None:
    # a ramp over 4 codes across 1024 pixels: plain rounding gives runs of ~256 identical codes
    ramp = np.tile(np.linspace(100 / 255, 104 / 255, 1024, dtype=np.float32)[None, :, None], (32, 1, 3))
    plain = quantize(ramp, 8, "none")
    dith = quantize(ramp, 8, kind)
    assert dith.dtype == np.uint8 and dith.shape == ramp.shape
    assert _runs(plain[0, :, 0]).max() > 200
    runs = [_runs(dith[r, :, 0]) for r in range(32)]
    # near an exact code the right output *is* that code for a while; elsewhere codes alternate quickly
    assert max(r.max() for r in runs) < 128
    assert np.mean(np.concatenate(runs)) < 5
    # the local mean follows the ramp: averaging 32 rows x 64 columns
    mean = dith[:, :, 0].astype(np.float64).reshape(32, 16, 64).mean(axis=(0, 2))
    target = ramp[0, :, 0].reshape(16, 64).mean(axis=1) * 255
    assert np.abs(mean - target).max() < 0.15


def test_quantize_ranges_and_depths() -> None:
    x = np.array([[0.0, 1.0, 0.5, -1.0, 2.0, np.nan]], dtype=np.float32)
    assert quantize(x, 16, "none").tolist() == [[0, 65535, 32768, 0, 65535, 0]]
    q = quantize(x, 8, "blue-noise")
    assert q.dtype == np.uint8 and q[0, 0] == 0 and q[0, 1] == 255
    assert quantize(x, 10, "none").max() == 1023


def test_blue_noise_is_triangular_and_achromatic() -> None:
    # a flat value on an exact code: a single threshold mask would leave it flat (a plateau between the
    # dithered stretches of a ramp); the triangular dither spreads it over the codes either side
    flat = np.full((64, 64), 100 / 255, dtype=np.float32)
    q = quantize(flat, 8, "blue-noise").astype(np.int64)
    assert set(np.unique(q)) <= {99, 100, 101} and (q != 100).mean() > 0.2
    assert abs(q.mean() - 100) < 0.05
    # the same pattern on every channel: colours one code apart stay one code apart everywhere (grey-axis noise)
    ramp = np.linspace(50 / 255, 60 / 255, 256, dtype=np.float32)[None, :].repeat(64, 0)
    rgb = np.stack([ramp, ramp + 1 / 255, ramp + 2 / 255], axis=2)
    q = quantize(rgb, 8, "blue-noise").astype(np.int64)
    assert (q[:, :, 1] - q[:, :, 0] == 1).all() and (q[:, :, 2] - q[:, :, 1] == 1).all()
    # black and white stay exact, and values near them are not pushed past the ends
    ends = np.concatenate([np.zeros((32, 32)), np.ones((32, 32))], axis=1).astype(np.float32)
    assert (quantize(ends, 8, "blue-noise") == (ends * 255).astype(np.uint8)).all()
    near = np.full((64, 64), 0.25 / 255, dtype=np.float32)
    assert abs(quantize(near, 8, "blue-noise").mean() - 0.25) < 0.05


def test_single_mask_and_custom_ends() -> None:
    flat = np.full((64, 64), 100 / 255, dtype=np.float32)
    assert (quantize(flat, 8, "blue-noise", triangular=False) == 100).all()  # exact codes stay exact
    # with the ends at 100 and 200 (as limited-range video passes its black and white), 100 stays exact too
    assert (quantize(flat, 8, "blue-noise", ends=(100.0, 200.0)) == 100).all()
    ramp = np.linspace(100.2 / 255, 103.8 / 255, 256, dtype=np.float32)[None, :].repeat(64, 0)
    q = quantize(ramp, 8, "blue-noise", triangular=False).astype(np.float64)
    assert np.abs(q.mean(0) - ramp[0] * 255).mean() < 0.1  # still unbiased on average


def test_held_quantizer_keeps_codes_of_values_that_barely_move() -> None:
    rng = np.random.default_rng(0)
    base = np.linspace(0.2, 0.3, 4096).reshape(64, 64)
    hq = HeldQuantizer(hold=0.5)
    first = hq("y", base, 8, "blue-noise")
    np.testing.assert_array_equal(first, quantize(base, 8, "blue-noise"))  # the first frame is plain quantize
    for _ in range(5):  # wobble of up to 0.3 codes: every code held
        wobble = base + rng.uniform(-0.3, 0.3, base.shape) / 255
        np.testing.assert_array_equal(hq("y", wobble, 8, "blue-noise"), first)
        assert not np.array_equal(quantize(wobble, 8, "blue-noise"), first)  # without holding they would move


def test_held_quantizer_follows_changes_of_hold_or_more() -> None:
    base = np.full((32, 32), 100.25 / 255)
    hq = HeldQuantizer(hold=0.5)
    assert (hq(0, base, 8, "none") == 100).all()
    assert (hq(0, base + 0.4 / 255, 8, "none") == 100).all()  # 100.65: held (0.4 from the value that set it)
    assert (hq(0, base + 0.6 / 255, 8, "none") == 101).all()  # 100.85: 0.6 away, requantized
    # the reference is the value that set the code, so slow creep cannot drift unboundedly from it
    assert (hq(0, base + 0.9 / 255, 8, "none") == 101).all()
    # another key, shape or depth starts afresh
    assert (hq(1, base + 0.4 / 255, 8, "none") == 101).all()
    assert hq(0, np.full((8, 8), 0.5), 8, "none").shape == (8, 8)
    assert (hq(0, np.full((8, 8), 0.5), 10, "none") == 512).all()


def test_held_quantizer_holds_the_same_change_of_value_at_10_bits() -> None:
    base = np.full((16, 16), 400.25 / 1023)
    hq = HeldQuantizer(hold=0.5)  # half an 8-bit code: 2 codes at 10 bits
    assert (hq(0, base, 10, "none") == 400).all()
    assert (hq(0, base + 1.5 / 1023, 10, "none") == 400).all()  # 401.75: 1.5 codes from the value that set it
    assert (hq(0, base + 2.5 / 1023, 10, "none") == 403).all()  # 402.75: 2.5 codes away, requantized


def test_held_quantizer_with_hold_zero_is_quantize() -> None:
    x = np.random.default_rng(1).random((16, 16))
    hq = HeldQuantizer(hold=0.0)
    for _ in range(2):
        np.testing.assert_array_equal(hq("k", x, 8, "tpdf", seed=3), quantize(x, 8, "tpdf", seed=3))
    with pytest.raises(ValueError, match="hold"):
        HeldQuantizer(hold=-1.0)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"offset": (5, 17)}, {"triangular": False, "ends": (16.0, 235.0)}, {"dither": "none"}, {"bits": 10}],
)
def test_quantize_in_row_blocks_equals_one_piece(monkeypatch: pytest.MonkeyPatch, kwargs: dict) -> None:
    """Large frames are quantized in row blocks on threads; the blue-noise mask follows each block's rows."""
    import src.colour.dither as dither

    x = np.random.default_rng(3).random((1031, 700, 3), dtype=np.float32)  # 2.2 M samples, odd height
    monkeypatch.setattr(dither, "_cores", lambda: 4)
    blocks = dither.quantize(x, **kwargs)
    monkeypatch.setattr(dither, "PARALLEL_SAMPLES", x.size + 1)
    np.testing.assert_array_equal(blocks, dither.quantize(x, **kwargs))
