import pytest
import torch

from src.models.lr_schedule import warmup_cosine
from src.utils.errors import ConfigError


def _lrs(n: int, **kwargs) -> list[float]:
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = warmup_cosine(opt, **kwargs)
    out = []
    for _ in range(n):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warms_up_then_decays_to_the_floor():
    lrs = _lrs(120, total_steps=100, warmup_steps=10, min_factor=0.05)
    assert lrs[0] == pytest.approx(1 / 11)
    assert all(a < b for a, b in zip(lrs[:10], lrs[1:11]))  # rising during the warm-up
    assert lrs[10] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:99], lrs[11:100]))  # then never rising
    assert lrs[55] == pytest.approx(0.05 + 0.95 * 0.5)  # half-way down the cosine
    assert lrs[100:] == pytest.approx([0.05] * 20)  # and flat at the floor after the end


def test_no_warmup():
    assert _lrs(1, total_steps=10, warmup_steps=0)[0] == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs", [{"total_steps": 0}, {"total_steps": 10, "warmup_steps": -1}, {"total_steps": 10, "min_factor": 2.0}]
)
def test_bad_values(kwargs):
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    with pytest.raises(ConfigError):
        warmup_cosine(opt, **kwargs)
