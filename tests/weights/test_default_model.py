"""The shipped default model (src/weights/default.pt, MODEL_CARD.md): present, small, found as "default",
and it debands."""

from __future__ import annotations

import torch

from src.data.degradations import quantize, quantize_ycbcr
from src.data.sources import smooth_images
from src.inference import weights as weights_mod
from src.inference.debander import Debander
from src.metrics.banding import round_8bit
from src.metrics.collection import make_metric

SHIPPED = weights_mod.PACKAGE_WEIGHTS / "default.pt"


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    m = make_metric("psnr")
    m.update(a.clamp(0, 1), b)
    return float(m.compute())


def _cambi5(x: torch.Tensor) -> float:
    m = make_metric("cambi_mlc5")
    m.update(x.clamp(0, 1))
    return float(m.compute())


def test_default_weights_ship_with_the_package() -> None:
    assert SHIPPED.is_file(), "src/weights/default.pt is missing (see MODEL_CARD.md to rebuild it)"
    assert SHIPPED.stat().st_size <= 20 * 2**20
    assert weights_mod.resolve_weights("default") == SHIPPED
    d = Debander.from_checkpoint("default", device="cpu")
    assert str(SHIPPED) in d.describe()
    assert d.default_steps == 1  # the steps MODEL_CARD.md's numbers are for


def test_default_model_removes_banding_from_smooth_images() -> None:
    """Procedural skies/gradients (not the training seed's), banded in RGB and in YCbCr: PSNR up, and CAMBI of
    the output rounded to 8 bits without dither removes at least 60 % of the banding above the clean floor
    (8-bit clean gradients score about 14 themselves). Dither would hide bands from CAMBI, so none here."""
    d = Debander.from_checkpoint("default", device="cpu", dtype="float32")
    clean = torch.stack(
        [torch.from_numpy(s.to_float()[:192, :192].copy()).permute(2, 0, 1) for s in smooth_images(4, seed=12345)]
    )
    floor = _cambi5(round_8bit(clean))
    for banded in (quantize(clean, 5), quantize_ycbcr(clean, 6, 5)):
        out = d.deband_batch(banded)
        assert out.shape == banded.shape and out.dtype == torch.float32
        gain = _psnr(out, clean) - _psnr(banded, clean)
        assert gain > 1.0, f"PSNR gain {gain:.2f} dB"
        before, after = _cambi5(banded), _cambi5(round_8bit(out))
        assert after - floor < 0.4 * (before - floor), f"CAMBI {before:.2f} -> {after:.2f}, clean {floor:.2f}"


def test_default_model_rebuilds_wide_noise_free_staircases() -> None:
    """Grey ramps rounded to plateaus 5 and 6 codes apart and 256 and 480 px wide, with no noise on them (a
    rendered gradient): the network and the contour pass with its shipped gate take at least 70 % of the
    error away. A gate fitted only on photos and streamed video can learn that steps this regular mean
    little to rebuild, and leave a third of the error (docs/model_history.md, twenty-second round)."""
    from tests.baselines.test_contour import _band, _codes_err, _ramp

    d = Debander.from_checkpoint("default", device="cpu", dtype="float32")
    for h, w, lo, hi, step in ((256, 1536, 100, 130, 5), (512, 1920, 100, 124, 6)):
        clean = _ramp(h, w, lo, hi)
        banded = _band(clean, step).float()
        out = d.deband_batch(banded[None])[0]
        inner = (slice(None), slice(None), slice(300, w - 300))  # away from the ramp's open ends
        before = _codes_err(banded, clean)[inner].mean().item()
        after = _codes_err(out, clean)[inner].mean().item()
        assert after < 0.3 * before, f"{step}-code plateaus: mean error {before:.2f} -> {after:.2f} codes"


def test_deband_cli_uses_the_shipped_weights(tmp_path, capsys) -> None:
    """`deband in.png -o out.png` with no --checkpoint: the shipped model, named on stderr, 8-bit dithered out."""
    import numpy as np
    from PIL import Image

    from src.deband import main

    y, x = np.mgrid[0:48, 0:80] / 79.0
    img = np.stack([0.3 + 0.2 * x, 0.4 + 0.1 * y, 0.6 - 0.2 * x], axis=-1)
    src = tmp_path / "in.png"
    Image.fromarray((np.round(img * 31) * (255 / 31)).round().astype(np.uint8)).save(src)
    before = src.read_bytes()
    out = tmp_path / "out.png"
    assert main([str(src), "-o", str(out)]) == 0
    assert "default.pt" in capsys.readouterr().err
    res = np.asarray(Image.open(out))
    assert res.shape == (48, 80, 3) and res.dtype == np.uint8
    assert src.read_bytes() == before
