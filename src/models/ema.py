"""Exponential moving average of a network's weights: torch's ``AveragedModel`` with a warm-up decay, kept as a
submodule so checkpoints save and restore it."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


class WarmupEMA:
    """``multi_avg_fn`` for ``AveragedModel``: EMA whose decay warms up as min(decay, (1 + n) / (10 + n)) after
    n averages, so early averages are not stale (torch's ``get_ema_multi_avg_fn`` keeps ``decay`` from the
    start, which in a run of a few hundred steps would leave the average near the initial weights).
    A class rather than a closure so that the model pickles (``ddp_spawn`` sends it to its processes)."""

    def __init__(self, decay: float) -> None:
        self.decay = decay

    @torch.no_grad()
    def __call__(self, ema_params: list[torch.Tensor], params: list[torch.Tensor], num_averaged: Any) -> None:
        n = int(num_averaged)
        d = min(self.decay, (1.0 + n) / (10.0 + n))
        torch._foreach_lerp_(ema_params, params, 1.0 - d)


class EMA(AveragedModel):
    """EMA copy of ``net`` (``self.module``); :meth:`update` after each optimizer step. The first update copies
    the weights, later ones average with :class:`WarmupEMA`. Buffers follow the trained net."""

    def __init__(self, net: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must be in [0, 1), got {decay}")
        super().__init__(net, multi_avg_fn=WarmupEMA(decay), use_buffers=False)
        self.decay = decay
        self.module.eval()
        self.module.requires_grad_(False)

    def update(self, net: nn.Module) -> None:
        self.update_parameters(net)

    def train(self, mode: bool = True) -> EMA:
        # the averaged copy is never trained: keep it in eval mode whatever the parent does
        super().train(mode)
        self.module.eval()
        return self


def upgrade_state_dict(state: dict[str, torch.Tensor], prefix: str = "ema.") -> dict[str, torch.Tensor]:
    """Checkpoints written before the EMA was an ``AveragedModel`` count its updates in ``num_updates``; the
    same count is ``n_averaged`` now."""
    old = f"{prefix}num_updates"
    if old in state:
        state = {(f"{prefix}n_averaged" if k == old else k): v for k, v in state.items()}
    return state
