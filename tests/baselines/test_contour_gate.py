import numpy as np
import pytest
import torch

from src.baselines.contour import ContourConfig, contour_fill, gate_examples
from src.baselines.contour_gate import DEFAULT_GATE, FEATURES, ContourGate, gate_features, load_gate, save_gate
from src.utils.errors import ConfigError


def _maps(h=6, w=7):
    rng = np.random.default_rng(0)
    m = {k: rng.random((h, w)) * 4 for k in ("lo", "step_up", "step_down", "change", "block_range")}
    m.update({k: rng.random((h, w)) for k in ("cos", "weight", "opposite", "regular", "texture")})
    m.update({k: rng.random((h, w)) for k in ("in_std", "out_std", "in_range")})
    up = rng.random((h, w)) * 10
    up[0, 0] = np.inf  # no border found there
    m.update(dist_up=up, dist_down=rng.random((h, w)) * 10, ratio=rng.random((h, w)), channel=1, block=4)
    return m


def test_gate_features_are_finite_and_ordered():
    f = gate_features(**_maps())
    assert f.shape == (len(FEATURES), 6, 7) and f.dtype == np.float32
    assert np.isfinite(f).all()
    assert (f[FEATURES.index("is Cb")] == 1).all() and (f[FEATURES.index("is luma")] == 0).all()


def test_gate_outputs_a_share_in_0_1():
    gate = ContourGate(width=8, layers=3).eval()
    x = torch.randn(2, len(FEATURES), 9, 11) * 100
    with torch.no_grad():
        w = gate(x, torch.ones(2, 1, 9, 11))
    assert w.shape == (2, 1, 9, 11) and float(w.min()) >= 0 and float(w.max()) <= 1
    # blocks outside the mask do not feed the others: features there are ignored
    mask = torch.zeros(1, 1, 9, 11)
    assert torch.equal(gate(x[:1], mask), gate(torch.zeros_like(x[:1]), mask))


def test_shipped_gate_loads():
    gate = load_gate(str(DEFAULT_GATE))
    assert isinstance(gate, ContourGate) and not gate.training
    assert DEFAULT_GATE.stat().st_size < 200_000


def test_save_and_load_round_trip_and_bad_files(tmp_path):
    gate = ContourGate(width=4, layers=3, dilations=(1, 2))
    path = tmp_path / "gate.pt"
    save_gate(gate, path)
    back = load_gate(str(path))
    assert back.width == 4 and back.layers == 3 and back.dilations == (1, 2)
    for a, b in zip(gate.state_dict().values(), back.state_dict().values()):
        assert torch.equal(a, b)
    with pytest.raises(ConfigError, match="not found"):
        load_gate(str(tmp_path / "missing.pt"))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ConfigError, match="cannot load"):
        load_gate(str(bad))


def test_dilations_widen_what_the_gate_sees():
    """Dilated layers see farther over the block grid at the same cost: a change 6 blocks away reaches the
    centre block through 3 layers with dilations (1, 2, 4), not with plain ones."""
    torch.manual_seed(0)
    x, m = torch.zeros(1, len(FEATURES), 21, 21), torch.ones(1, 1, 21, 21)
    far = x.clone()
    far[0, :, 10, 16] = 5.0
    plain, dilated = ContourGate(4, 4), ContourGate(4, 4, dilations=(1, 2, 4))
    with torch.no_grad():
        assert plain(far, m)[0, 0, 10, 10] == plain(x, m)[0, 0, 10, 10]
        assert dilated(far, m)[0, 0, 10, 10] != dilated(x, m)[0, 0, 10, 10]
    with pytest.raises(ConfigError, match="dilations"):
        ContourGate(4, 4, dilations=(1, 2))


def test_gate_setting_checked_and_rules_run():
    with pytest.raises(ConfigError):
        ContourConfig(gate="")
    x = torch.rand(3, 64, 64)
    for gate in ("rules", "learned"):
        out = contour_fill(x, ContourConfig(gate=gate))
        assert out.shape == x.shape and torch.isfinite(out).all()


def test_gate_examples_target_the_clean_block_means():
    # a banded ramp: the clean ramp's block means are what each block should reach
    ramp = torch.linspace(100 / 255, 130 / 255, 1536)[None, None, :].expand(3, 64, 1536).clone()
    banded = torch.round(ramp * 255 / 5) * 5 / 255  # 6 plateaus of 256 px, 5 codes apart
    ex = gate_examples(banded, banded, ramp)
    assert len(ex) == 3
    f, mask, change, target = ex[0]
    assert f.shape[0] == len(FEATURES) and mask.shape == change.shape == target.shape == f.shape[1:]
    assert mask.any()
    # where the luma has a ramp, moving by the ramp's change brings it closer to the clean means
    assert float(((change - target)[mask] ** 2).mean()) < float((target[mask] ** 2).mean())
