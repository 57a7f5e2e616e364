"""Small local filters written as element-wise maxima of shifted views.

They give the same numbers as ``F.max_pool2d`` and are 10-20x faster on CPUs, where max pooling at stride 1
takes a slow path (a 3 x 3 maximum over a 1080p plane: 2 ms against 47 ms on 2 cores).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["max2", "max3"]


def max2(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 2)`` for ``(..., H, W)`` with even H and W."""
    m = torch.maximum(x[..., 0::2, :], x[..., 1::2, :])
    return torch.maximum(m[..., 0::2], m[..., 1::2])


def max3(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(x, 3, stride=1, padding=1)``: the maximum over each pixel's 3 x 3 neighbourhood of
    ``(B, C, H, W)`` (or ``(C, H, W)``), the border padded with -inf."""
    p = F.pad(x, (1, 1, 1, 1), value=float("-inf"))
    m = torch.maximum(torch.maximum(p[..., :-2], p[..., 1:-1]), p[..., 2:])
    return torch.maximum(torch.maximum(m[..., :-2, :], m[..., 1:-1, :]), m[..., 2:, :])
