import math

import pytest
import torch

from src.models.indi import INDISchedule
from src.utils.errors import ConfigError


def _images(b: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    clean = torch.rand(b, 3, 8, 9, generator=g)
    banded = (clean * 15).round() / 15
    return clean, banded


def test_path_endpoints_and_midpoint():
    clean, banded = _images()
    s = INDISchedule()
    assert torch.equal(s.train_pair(clean, banded, torch.zeros(2)), clean)
    assert torch.equal(s.train_pair(clean, banded, torch.ones(2)), banded)
    mid = s.train_pair(clean, banded, torch.full((2,), 0.25))
    assert torch.allclose(mid, 0.75 * clean + 0.25 * banded)


def test_path_uses_each_samples_own_t():
    clean, banded = _images()
    x = INDISchedule().train_pair(clean, banded, torch.tensor([0.0, 1.0]))
    assert torch.equal(x[0], clean[0]) and torch.equal(x[1], banded[1])


@pytest.mark.parametrize("steps", [1, 2, 3, 8, 30])
def test_oracle_returns_clean_for_every_n(steps):
    clean, banded = _images()
    s = INDISchedule(steps=steps)
    out = s.sample(lambda x, t: clean, banded)
    assert torch.allclose(out, clean, atol=1e-6)


def test_one_step_is_regression():
    clean, banded = _images()
    s = INDISchedule(steps=1)
    seen = []

    def f(x, t):
        seen.append(t.clone())
        return x * 0.5 + 0.1

    out = s.sample(f, banded)
    assert torch.allclose(out, banded * 0.5 + 0.1)
    assert len(seen) == 1 and torch.all(seen[0] == 1.0)


def test_step_formula():
    s = INDISchedule()
    x = torch.full((1, 3, 2, 2), 0.8)
    pred = torch.full((1, 3, 2, 2), 0.2)
    # d / t = 0.25 / 0.5 = 0.5
    out = s.step(x, pred, 0.5, 0.25)
    assert torch.allclose(out, torch.full_like(x, 0.5))
    with pytest.raises(ValueError):
        s.step(x, pred, 0.25, 0.5)


def test_sampler_visits_the_grid_and_works_on_a_batch():
    clean, banded = _images(b=4)
    ts = []
    s = INDISchedule(steps=4)
    s.sample(lambda x, t: (ts.append(t[0].item()), clean)[1], banded)
    assert ts == pytest.approx([1.0, 0.75, 0.5, 0.25])


def test_custom_grid():
    s = INDISchedule(grid=[1.0, 0.6, 0.1, 0.0])
    assert s.timesteps().tolist() == pytest.approx([1.0, 0.6, 0.1, 0.0])
    clean, banded = _images()
    assert torch.allclose(s.sample(lambda x, t: clean, banded), clean, atol=1e-6)
    with pytest.raises(ConfigError):
        INDISchedule(grid=[1.0, 0.5])
    with pytest.raises(ConfigError):
        INDISchedule(grid=[0.0, 0.5, 1.0])


def test_t_sampling_point_mass_and_range():
    s = INDISchedule(t_one_weight=0.5)
    g = torch.Generator().manual_seed(0)
    t = s.sample_t(60000, generator=g)
    assert t.min() > 0 and t.max() <= 1
    assert (t == 1).float().mean().item() == pytest.approx(1 / 3, abs=0.01)
    rest = t[t < 1]
    assert rest.mean().item() == pytest.approx(0.5, abs=0.01)
    assert torch.all(INDISchedule(t_one_weight=math.inf).sample_t(100) == 1)
    assert (INDISchedule(t_one_weight=0).sample_t(1000) == 1).sum() == 0


def test_path_noise_and_determinism():
    clean, banded = _images()
    for kind in ("constant", "sqrt"):
        s = INDISchedule(steps=5, noise=kind, eps0=0.01)
        g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
        x1 = s.train_pair(clean, banded, torch.full((2,), 0.5), generator=g1)
        x2 = s.train_pair(clean, banded, torch.full((2,), 0.5), generator=g2)
        assert torch.equal(x1, x2) and not torch.equal(x1, 0.5 * clean + 0.5 * banded)
        f = lambda x, t: x * 0.9  # noqa: E731
        a, b = s.sample(f, banded, seed=1), s.sample(f, banded, seed=1)
        assert torch.equal(a, b)
        assert not torch.equal(a, s.sample(f, banded, seed=2))
    # noise at t = 0 vanishes: the clean endpoint stays exact
    s = INDISchedule(noise="constant", eps0=0.1)
    assert torch.equal(s.train_pair(clean, banded, torch.zeros(2)), clean)
    assert s.eps(torch.tensor([0.25])).item() == pytest.approx(0.1)
    assert INDISchedule(noise="sqrt", eps0=0.1).eps(torch.tensor([0.25])).item() == pytest.approx(0.2)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"steps": 0},
        {"steps": -3},
        {"steps": 2.5},
        {"noise": "gauss"},
        {"t_one_weight": -1},
        {"eps0": -0.1},
        {"grid": "cosine"},
    ],
)
def test_bad_config_values(kwargs):
    with pytest.raises(ConfigError):
        INDISchedule(**kwargs)


def test_max_change_bounds_every_iterate_and_spares_the_oracle():
    clean, banded = _images()
    # quantization to 4 bits moves no pixel further than 1/30: the oracle path stays inside the bound
    s = INDISchedule(steps=8, max_change=1 / 30 + 1e-6)
    assert torch.allclose(s.sample(lambda x, t: clean, banded), clean, atol=1e-6)
    # a network that keeps pushing the same way is stopped at the bound instead of compounding
    seen = []

    def drifting(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        seen.append((x - banded).abs().max().item())
        return x + 0.05

    out = INDISchedule(steps=30, max_change=0.02).sample(drifting, banded)
    assert (out - banded).abs().max().item() == pytest.approx(0.02, abs=1e-6)
    assert max(seen) <= 0.02 + 1e-6
    with pytest.raises(ConfigError):
        INDISchedule(max_change=0.0)
