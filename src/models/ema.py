"""Exponential moving average of a network's weights, kept as a submodule so checkpoints save and restore it."""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA(nn.Module):
    """EMA copy of ``net``; the decay warms up as min(decay, (1 + n) / (10 + n)) so early averages are not stale."""

    def __init__(self, net: nn.Module, decay: float = 0.999) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(net).eval()
        self.module.requires_grad_(False)
        self.register_buffer("num_updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        n = int(self.num_updates)
        d = min(self.decay, (1.0 + n) / (10.0 + n))
        for p_ema, p in zip(self.module.parameters(), net.parameters()):
            p_ema.lerp_(p.detach(), 1.0 - d)
        for b_ema, b in zip(self.module.buffers(), net.buffers()):
            b_ema.copy_(b)
        self.num_updates += 1

    def forward(self, *args, **kwargs):  # noqa: ANN002, ANN003
        return self.module(*args, **kwargs)

    def train(self, mode: bool = True) -> EMA:
        # the averaged copy is never trained: keep it in eval mode whatever the parent does
        super().train(mode)
        self.module.eval()
        return self
