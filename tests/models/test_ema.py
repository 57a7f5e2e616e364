"""The EMA (torch's AveragedModel with a warm-up decay) against the hand-written average it replaced."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from src.models.ema import EMA, upgrade_state_dict


def _reference(init: nn.Module, steps: list[nn.Module], decay: float) -> list[torch.Tensor]:
    """The former implementation: ema = d * ema + (1 - d) * p with d = min(decay, (1 + n) / (10 + n)),
    starting from the initial weights."""
    ema = [p.detach().clone() for p in init.parameters()]
    for n, net in enumerate(steps):
        d = min(decay, (1.0 + n) / (10.0 + n))
        for e, p in zip(ema, net.parameters()):
            e.mul_(d).add_(p.detach(), alpha=1 - d)
    return ema


def test_matches_the_former_average_after_warm_up() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4), nn.Conv2d(4, 3, 1))
    init = copy.deepcopy(net)
    ema = EMA(net, decay=0.99)
    snapshots = []
    for _ in range(60):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.01 * torch.randn_like(p))
        ema.update(net)
        snapshots.append(copy.deepcopy(net))
    ref = _reference(init, snapshots, 0.99)
    for a, b in zip(ema.module.parameters(), ref):
        # the first update copies instead of taking 0.9 of the step; that difference has decayed by
        # prod(d_n) < 1e-6 of the initial gap after 60 updates
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert int(ema.n_averaged) == 60
    assert not ema.module.training and not any(p.requires_grad for p in ema.module.parameters())


def test_old_checkpoints_load() -> None:
    net = nn.Linear(2, 2)
    holder = nn.Module()
    holder.ema = EMA(net, 0.9)
    state = {k.replace("ema.n_averaged", "ema.num_updates"): v for k, v in holder.state_dict().items()}
    assert "ema.num_updates" in state
    holder.load_state_dict(upgrade_state_dict(state))


def test_rejects_bad_decay() -> None:
    with pytest.raises(ValueError, match="decay"):
        EMA(nn.Linear(1, 1), 1.0)


def test_pickles_for_spawned_processes() -> None:
    import pickle

    ema = EMA(nn.Linear(2, 2), 0.9)
    again = pickle.loads(pickle.dumps(ema))
    torch.testing.assert_close(again.module.weight, ema.module.weight)
