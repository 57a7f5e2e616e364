"""Finding the default weights, and the export formats (.pt, .onnx) giving the same results."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import torch

from src.export import main as export_main
from src.inference import weights as weights_mod
from src.inference.debander import Debander
from src.utils.errors import DataError
from tests.inference.fixtures import save_tiny_checkpoint, tiny_ckpt  # noqa: F401 - fixture


def test_default_finds_the_newest_best_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(weights_mod, "PACKAGE_WEIGHTS", tmp_path / "no-weights")
    monkeypatch.delenv("INDI_ROOT", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataError, match="experiment=fft_indi"):
        weights_mod.resolve_weights("default")
    old = tmp_path / "logs/train/runs/2024-01-01_00-00-00/checkpoints/best-epoch003.ckpt"
    new = tmp_path / "logs/train/runs/2024-01-02_00-00-00/checkpoints/best-epoch007.ckpt"
    for p in (old, new):
        p.parent.mkdir(parents=True)
        save_tiny_checkpoint(p)
    os.utime(old, (time.time() - 100, time.time() - 100))
    assert weights_mod.resolve_weights("default") == new
    assert str(new) in Debander.from_checkpoint("default").describe()
    shipped = tmp_path / "pkg"
    shipped.mkdir()
    save_tiny_checkpoint(shipped / "default.ckpt")
    monkeypatch.setattr(weights_mod, "PACKAGE_WEIGHTS", shipped)
    assert weights_mod.resolve_weights(None) == shipped / "default.ckpt"


def test_export_pt_matches_checkpoint(tiny_ckpt, tmp_path: Path) -> None:  # noqa: F811
    out = tmp_path / "model.pt"
    assert export_main([str(tiny_ckpt), "-o", str(out), "--deband-steps", "3"]) == 0
    blob = torch.load(out, weights_only=True)  # plain data: loads without pickled code
    assert blob["format"] == "indi-deband" and blob["deband_steps"] == 3
    a, b = Debander.from_checkpoint(tiny_ckpt), Debander.from_checkpoint(out)
    assert b.default_steps == 3 and b.weights.kind == "export"
    x = torch.rand(1, 3, 24, 40)
    assert torch.equal(a.deband_batch(x, steps=2), b.deband_batch(x, steps=2))
    assert export_main([str(tiny_ckpt), "-o", str(out)]) == 1  # exists, no --overwrite


def test_export_half_stores_float16_and_loads_into_float32(tiny_ckpt, tmp_path: Path) -> None:  # noqa: F811
    full, half = tmp_path / "full.pt", tmp_path / "half.pt"
    assert export_main([str(tiny_ckpt), "-o", str(full)]) == 0
    assert export_main([str(tiny_ckpt), "-o", str(half), "--half"]) == 0
    blob = torch.load(half, weights_only=True)
    floats = [v for v in blob["state_dict"].values() if v.is_floating_point()]
    assert floats and all(v.dtype == torch.float16 for v in floats)
    assert half.stat().st_size < 0.75 * full.stat().st_size
    a, b = Debander.from_checkpoint(full, dtype="float32"), Debander.from_checkpoint(half, dtype="float32")
    assert all(p.dtype == torch.float32 for p in b.weights.net.parameters())
    x = torch.rand(1, 3, 24, 40)
    assert torch.allclose(a.deband_batch(x, steps=2), b.deband_batch(x, steps=2), atol=2e-3)
    assert export_main([str(tiny_ckpt), "-o", str(tmp_path / "m.onnx"), "--half"]) == 1  # .pt only


def test_export_refuses_foreign_targets(tmp_path: Path) -> None:
    blob = {
        "format": "indi-deband",
        "version": 1,
        "net": {"_target_": "os.system", "command": "true"},
        "state_dict": {},
        "indi": {},
        "deband_steps": None,
    }
    p = tmp_path / "evil.pt"
    torch.save(blob, p)
    with pytest.raises(DataError, match="refusing"):
        Debander.from_checkpoint(p)


def test_export_onnx_matches_torch(tiny_ckpt, tmp_path: Path) -> None:  # noqa: F811
    pytest.importorskip("onnxscript")
    pytest.importorskip("onnxruntime")
    out = tmp_path / "model.onnx"
    assert export_main([str(tiny_ckpt), "-o", str(out)]) == 0
    a, b = Debander.from_checkpoint(tiny_ckpt, dtype="float32"), Debander.from_checkpoint(out)
    assert b.weights.kind == "onnx" and b.default_steps == a.default_steps
    for shape in ((1, 3, 24, 40), (2, 3, 13, 7)):  # sizes that are not multiples of the UNet's 2
        x = torch.rand(*shape)
        assert (a.deband_batch(x) - b.deband_batch(x)).abs().max() < 1e-4


def test_build_net_calls_flat_configs_directly_and_hands_nested_ones_to_hydra() -> None:
    cfg = {"_target_": "src.models.unet.UNet", "width": 8, "depth": 1, "blend_levels": 2, "blend_guided": [[4, 1e-4]]}
    plain = weights_mod.build_net(cfg)
    flagged = weights_mod.build_net({**cfg, "_convert_": "all"})  # an instantiation flag: Hydra's rules
    assert type(plain) is type(flagged)
    assert plain.state_dict().keys() == flagged.state_dict().keys()
    # a nested object outside the package is refused too, before anything is built
    with pytest.raises(DataError, match="refusing to build network 'os.system'"):
        weights_mod.build_net({**cfg, "global_branch": {"_target_": "os.system", "command": "true"}})
    with pytest.raises(DataError, match="refusing"):
        weights_mod.build_net({"width": 8})  # no target at all


def test_loading_the_default_model_imports_no_config_or_video_libraries() -> None:
    """Hydra, OmegaConf and PyAV cost 0.2 s of every image run's start-up; inference needs none of them."""
    import subprocess
    import sys

    code = (
        "import sys; from src.inference.debander import Debander; Debander.from_checkpoint('default'); "
        "bad = [m for m in ('hydra', 'omegaconf', 'av') if m in sys.modules]; assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2])
