"""Learning-rate schedule: linear warm-up, then cosine decay, counted in optimizer steps."""

from __future__ import annotations

import math

import torch
from torch.optim.lr_scheduler import LambdaLR

from src.utils.errors import ConfigError


def warmup_cosine(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int = 100, min_factor: float = 0.01
) -> LambdaLR:
    """LR factor rising linearly from ~0 to 1 over ``warmup_steps``, then falling along a cosine to
    ``min_factor`` at ``total_steps`` (and staying there).

    The warm-up matters for short CPU runs at a high learning rate: Adam's first updates, taken before its
    second-moment estimates settle, otherwise throw the sin-activated UNet far from the identity it starts at.
    Use with ``model.scheduler_interval=step``.
    """
    if total_steps < 1 or warmup_steps < 0:
        raise ConfigError(
            f"the LR schedule needs total_steps >= 1 and warmup_steps >= 0; "
            f"got total_steps={total_steps}, warmup_steps={warmup_steps}"
        )
    if not 0.0 <= min_factor <= 1.0:
        raise ConfigError(f"the LR schedule's min_factor must be in [0, 1], got {min_factor}")

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        span = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / span)
        return min_factor + (1.0 - min_factor) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)
