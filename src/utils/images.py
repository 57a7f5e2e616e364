"""Small image helpers for logging: grids, PNG files, and sending images to whichever loggers are on."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from src.utils.atomic import atomic_output


def make_grid(rows: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """``(R, K, C, H, W)`` in [0, 1] -> one ``(C, R*(H+pad)-pad, K*(W+pad)-pad)`` image, rows of K panels."""
    r, k, c, h, w = rows.shape
    grid = torch.ones(c, r * (h + pad) - pad, k * (w + pad) - pad, dtype=rows.dtype)
    for i in range(r):
        for j in range(k):
            grid[:, i * (h + pad) : i * (h + pad) + h, j * (w + pad) : j * (w + pad) + w] = rows[i, j]
    return grid


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` in [0, 1] -> ``(H, W, C)`` uint8 (``(H, W)`` for one channel)."""
    arr = (img.detach().float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
    return arr[..., 0] if arr.shape[-1] == 1 else arr


def save_png(img: torch.Tensor, path: str | Path) -> Path:
    """Write ``(C, H, W)`` in [0, 1] as an 8-bit PNG, atomically (temp file + rename)."""
    path = Path(path)
    with atomic_output(path) as tmp:
        Image.fromarray(to_uint8(img)).save(tmp, format="PNG")
    return path


def log_image_grid(
    loggers: Sequence, grid: torch.Tensor, path: str | Path, key: str, step: int, caption: str = ""
) -> Path:
    """Save ``grid`` ``(C, H, W)`` to ``path`` and send it to W&B / TensorBoard loggers when present."""
    from lightning.pytorch.loggers import TensorBoardLogger, WandbLogger

    out = save_png(grid, path)
    for lg in loggers:
        if isinstance(lg, WandbLogger):
            lg.log_image(key=key, images=[str(out)], caption=[caption], step=step)
        elif isinstance(lg, TensorBoardLogger):
            lg.experiment.add_image(key, grid.clamp(0, 1), global_step=step)
    return out
