"""The Python API: kinds in = kinds out, gray, alpha, odd sizes, steps, devices, dtypes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from src.inference.debander import Debander
from src.utils.errors import ConfigError, DataError
from tests.inference.fixtures import save_tiny_checkpoint, tiny_ckpt  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def debander(tiny_ckpt) -> Debander:  # noqa: F811
    return Debander.from_checkpoint(tiny_ckpt, device="cpu")


def _ramp(h: int, w: int) -> np.ndarray:
    return np.tile(np.linspace(0, 1, w, dtype=np.float32)[None, :, None], (h, 1, 3))


def test_tensor_shapes_dtype_and_device(debander: Debander) -> None:
    x = torch.rand(3, 20, 30)
    y = debander.deband(x)
    assert y.shape == x.shape and y.dtype == x.dtype and 0 <= y.min() and y.max() <= 1
    xb = torch.rand(2, 3, 17, 9, dtype=torch.float64)
    yb = debander.deband(xb)
    assert yb.shape == xb.shape and yb.dtype == torch.float64
    # a batch is the same as its images one by one
    assert torch.allclose(yb[1].float(), debander.deband(xb[1:2]).float()[0], atol=1e-5)


def test_numpy_kinds(debander: Debander) -> None:
    f = _ramp(16, 40)
    u8 = (f * 255).round().astype(np.uint8)
    u16 = (f * 65535).round().astype(np.uint16)
    for a in (f, u8, u16):
        out = debander.deband(a)
        assert out.shape == a.shape and out.dtype == a.dtype
    gray = debander.deband(u8[:, :, 0])
    assert gray.shape == (16, 40) and gray.dtype == np.uint8
    assert debander.deband(u16[:, :, :1]).shape == (16, 40, 1)


def test_rgba_alpha_is_untouched(debander: Debander) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (12, 13, 4), dtype=np.uint8)
    out = debander.deband(a)
    assert out.shape == a.shape and np.array_equal(out[:, :, 3], a[:, :, 3])
    t = torch.rand(4, 10, 11)
    assert torch.equal(debander.deband(t)[3], t[3])
    im = Image.fromarray(a, mode="RGBA")
    out_im = debander.deband(im)
    assert out_im.mode == "RGBA" and np.array_equal(np.asarray(out_im)[:, :, 3], a[:, :, 3])


def test_gray_in_gray_out(debander: Debander) -> None:
    g = (np.tile(np.linspace(0, 1, 50)[None], (20, 1)) * 255).astype(np.uint8)
    for im in (Image.fromarray(g), Image.fromarray(g.astype(np.uint16) * 257)):
        out = debander.deband(im)
        assert out.mode == im.mode and out.size == im.size
    t = torch.rand(1, 9, 9)
    assert debander.deband(t).shape == (1, 9, 9)


def test_pil_rgb_keeps_icc(debander: Debander) -> None:
    im = Image.fromarray((_ramp(8, 8) * 255).astype(np.uint8))
    im.info["icc_profile"] = b"fake-icc"
    out = debander.deband(im)
    assert out.mode == "RGB" and out.info["icc_profile"] == b"fake-icc"


@pytest.mark.parametrize("shape", [(1, 1, 3), (7, 1001, 3), (1001, 7, 3), (2, 3, 3)])
def test_odd_sizes(debander: Debander, shape: tuple[int, int, int]) -> None:
    a = np.random.default_rng(1).random(shape, dtype=np.float32)
    out = debander.deband(a)
    assert out.shape == shape and np.isfinite(out).all()


def test_steps_default_and_override(tiny_ckpt, tmp_path) -> None:  # noqa: F811
    d = Debander.from_checkpoint(tiny_ckpt)
    assert d.default_steps == 2  # the schedule's
    x = torch.rand(1, 3, 16, 16)
    assert not torch.allclose(d.deband_batch(x, steps=1), d.deband_batch(x, steps=4))
    rec = save_tiny_checkpoint(tmp_path / "rec.ckpt", extra_hparams={"deband_steps": 5})
    d5 = Debander.from_checkpoint(rec)
    assert d5.default_steps == 5 and "5 steps" in d5.describe()
    assert torch.allclose(d5.deband_batch(x), d5.deband_batch(x, steps=5))
    with pytest.raises(ConfigError):
        d.deband_batch(x, steps=0)


def test_bfloat16_runs_and_stays_close(tiny_ckpt) -> None:  # noqa: F811
    x = torch.rand(1, 3, 32, 32)
    a = Debander.from_checkpoint(tiny_ckpt, dtype="float32").deband_batch(x)
    b = Debander.from_checkpoint(tiny_ckpt, dtype="bfloat16").deband_batch(x)
    assert b.dtype == torch.float32 and (a - b).abs().max() < 2e-2


def test_bad_inputs(debander: Debander, tmp_path) -> None:
    with pytest.raises(DataError):
        debander.deband("not an image")
    with pytest.raises(DataError):
        debander.deband(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(DataError):
        Debander.from_checkpoint(tmp_path / "missing.ckpt")
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError, match="cannot load"):
        Debander.from_checkpoint(bad)
    with pytest.raises(ConfigError):
        Debander.from_checkpoint(tmp_path / "x.ckpt", device="nonsense")


def test_contour_pass_after_the_network(tmp_path) -> None:
    from tests.inference.fixtures import save_tiny_checkpoint

    # an identity network, so what changes is the contour pass alone: plateaus 240 px wide, 5 codes apart
    ckpt = save_tiny_checkpoint(tmp_path / "identity.ckpt", identity=True)
    clean = torch.linspace(90, 120, 1440, dtype=torch.float64).div(255).view(1, 1, 1, -1).expand(1, 3, 48, -1)
    banded = (torch.round(clean * 255 / 5) * 5 / 255).float()
    on = Debander.from_checkpoint(ckpt, device="cpu")
    off = Debander.from_checkpoint(ckpt, device="cpu", contour=False)
    assert on.contour is not None and off.contour is None
    assert on.contour.gate == "learned"
    rules = Debander.from_checkpoint(ckpt, device="cpu", contour_gate="rules")
    assert rules.contour.gate == "rules" and "contour interpolation (hand rules)" in rules.describe()
    with pytest.raises(ConfigError, match="not found"):  # a gate file is loaded at once, not at the first frame
        Debander.from_checkpoint(ckpt, device="cpu", contour_gate=str(tmp_path / "missing.pt"))
    assert "then contour interpolation" in on.describe() and "then contour" not in off.describe()
    inner = (..., slice(300, 1140))
    err_off = (off.deband_batch(banded) - clean).abs()[inner].mean().item() * 255
    err_on = (on.deband_batch(banded) - clean).abs()[inner].mean().item() * 255
    assert err_off > 1.0 and err_on < 0.3 * err_off
    # tiled, the pass still sees the whole image (a band is wider than a tile)
    tiled = on.deband_batch(banded, tile=256, overlap=32)
    assert (tiled - clean).abs()[inner].mean().item() * 255 < 0.3 * err_off


def test_clipped_samples_stay_clipped(debander: Debander) -> None:
    from src.inference.debander import keep_clipped

    x = torch.rand(1, 3, 40, 56) * 0.8 + 0.1
    x[:, 0, :10] = 1.0  # a clipped red highlight beside texture
    x[:, :, 30:] = 0.0  # crushed black
    out = debander.deband_batch(x, steps=1)
    clipped = (x == 0) | (x == 1)
    assert torch.equal(out[clipped], x[clipped])
    # everything else is the network's
    net = torch.full_like(x, 0.5)
    kept = keep_clipped(x, net.clone())
    assert torch.equal(kept[~clipped], net[~clipped]) and torch.equal(kept[clipped], x[clipped])


def test_flat_graphics_without_bands_are_held_and_bands_are_not() -> None:
    """keep_unbanded: flat areas beside strong edges, with no band step near, stay within half a code of the
    input; a banded ramp (steps of a few codes) and noisy texture keep the network's output bit for bit."""
    from src.inference.debander import keep_unbanded

    # flat graphics: two flat colours and a dark outline with an antialiased rim, 120 x 200 px
    x = torch.empty(1, 3, 120, 200)
    x[..., :100] = torch.tensor([0.2, 0.4, 0.8])[:, None, None]
    x[..., 100:] = torch.tensor([0.9, 0.6, 0.3])[:, None, None]
    x[..., 98:102] = 0.05
    x[..., 97] = x[..., 96] - 3 / 255  # the rim: small steps right beside the edge
    x = (x * 255).round() / 255
    net = x + torch.linspace(-4, 4, 200) / 255  # the network tints the flat areas by up to 4 codes
    held = keep_unbanded(x, net)
    assert float((held - x).abs().max()) * 255 <= 0.5 + 1e-4
    # a banded ramp: plateaus 5 codes apart, 40 px wide, within the reach of every sample
    ramp = (torch.linspace(90, 130, 200).view(1, 1, 1, -1).expand(1, 3, 120, -1) / 5).round() * 5 / 255
    assert keep_unbanded(ramp, net) is net
    # a plateau 480 px wide between them: held only in its middle, far from both band steps, and smoothly
    wide = ramp.clone()
    wide[..., 60:140] = wide[..., 60:61]
    wide = torch.cat([wide[..., :100], wide[..., 100:101].expand(-1, -1, -1, 400), wide[..., 100:]], -1)
    out = keep_unbanded(wide, wide + 3 / 255)
    moved = (out - wide)[0, 0, 60] * 255
    assert float(moved[:60].min()) > 2.99 and float(moved[-60:].min()) > 2.99  # near the band steps
    assert abs(float(moved[350]) - 0.5) < 1e-3  # the middle, 250 px from either step
    assert float(moved.diff().abs().max()) < 0.5  # the hold fades in: no new step
    # noisy texture (every step small): untouched
    g = torch.Generator().manual_seed(0)
    tex = (torch.rand(1, 3, 64, 64, generator=g) * 20 + 100).round() / 255
    assert torch.equal(keep_unbanded(tex, tex + 0.01), tex + 0.01)


@pytest.mark.slow
def test_compiled_network_matches_eager_at_two_sizes(tmp_path):
    """--compile: inductor builds a graph per frame size (dynamic shapes fail to lower for this UNet)."""
    ckpt = save_tiny_checkpoint(tmp_path / "tiny.ckpt", steps=1)
    eager = Debander.from_checkpoint(ckpt, device="cpu", dtype="float32", contour=False)
    compiled = Debander.from_checkpoint(ckpt, device="cpu", dtype="float32", compile=True, contour=False)
    g = torch.Generator().manual_seed(0)
    for h, w in ((40, 56), (33, 70)):
        x = torch.rand(1, 3, h, w, generator=g)
        torch.testing.assert_close(compiled.deband_batch(x, tile=0), eager.deband_batch(x, tile=0), atol=1e-4, rtol=0)
