"""Run an image-to-image function tile by tile with overlap and smooth blending, in bounded memory.

The INDI sampler is run on each tile independently from t = 1 to 0: the network is a local operator
(convolutions only, no global attention in the shipped configs), so a tile restores its interior as
the whole image would; only a border band of roughly the receptive field differs. Overlapping tiles are
blended with a raised-cosine ramp that is 0 at a tile's edge and 1 past the overlap, so those border
bands get (almost) no weight and no seam is visible. Image borders get no ramp: nothing overlaps there.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = ["tile_starts", "blend_ramp", "run_tiled"]

TileFn = Callable[[torch.Tensor], torch.Tensor]


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``[0, size)`` with at least ``overlap`` overlap.

    The last tile is aligned to the end; the strides are spread evenly so every overlap is about equal.
    """
    if size <= tile:
        return [0]
    stride = tile - overlap
    n = math.ceil((size - tile) / stride) + 1
    # even spacing: starts 0 .. size - tile in n steps (each step <= stride, so overlaps >= overlap)
    return [round(i * (size - tile) / (n - 1)) for i in range(n)]


def blend_ramp(length: int, ramp_before: int, ramp_after: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """1D blending weights ``(length,)``: raised-cosine ramps of the given lengths at each end, 1 between.

    Weights stay > 0 (the ramp is sampled at pixel centres), so a pixel covered by one tile only is kept.
    """
    w = torch.ones(length, dtype=torch.float32, device=device)
    for n, flip in ((ramp_before, False), (ramp_after, True)):
        n = min(n, length)
        if n <= 0:
            continue
        d = (torch.arange(n, dtype=torch.float32, device=device) + 0.5) / n  # (0, 1)
        r = 0.5 - 0.5 * torch.cos(math.pi * d)
        if flip:
            w[length - n :] = torch.minimum(w[length - n :], r.flip(0))
        else:
            w[:n] = torch.minimum(w[:n], r)
    return w


def run_tiled(
    fn: TileFn, x: torch.Tensor, tile: int, overlap: int = 32, callback: Callable[[int, int], None] | None = None
) -> torch.Tensor:
    """Apply ``fn`` to ``x`` ``(B, C, H, W)`` in ``tile`` x ``tile`` tiles overlapping by ``overlap`` pixels.

    ``fn`` maps ``(B, C, h, w)`` -> ``(B, C', h, w)``. The output ``(B, C', H, W)`` (float32, on ``x``'s device)
    is the weight-normalised blend of the tile outputs. ``callback(done, total)`` is called per tile.
    An image no larger than ``tile`` is processed in one call.
    """
    if tile <= 0:
        raise ValueError(f"tile must be > 0, got {tile}")
    overlap = max(0, min(overlap, tile // 2))
    b, _, h, w = x.shape
    ys, xs = tile_starts(h, tile, overlap), tile_starts(w, tile, overlap)
    if len(ys) == 1 and len(xs) == 1:
        out = fn(x)
        if callback is not None:
            callback(1, 1)
        return out.float()

    out: torch.Tensor | None = None
    wsum = torch.zeros(1, 1, h, w, dtype=torch.float32, device=x.device)
    total, done = len(ys) * len(xs), 0
    for iy, y0 in enumerate(ys):
        th = min(tile, h - y0)
        # ramp only where a neighbouring tile overlaps: by the actual overlap with it
        wy = blend_ramp(
            th, ys[iy - 1] + tile - y0 if iy > 0 else 0, y0 + th - ys[iy + 1] if iy + 1 < len(ys) else 0, x.device
        )
        for ix, x0 in enumerate(xs):
            tw = min(tile, w - x0)
            wx = blend_ramp(
                tw, xs[ix - 1] + tile - x0 if ix > 0 else 0, x0 + tw - xs[ix + 1] if ix + 1 < len(xs) else 0, x.device
            )
            pred = fn(x[:, :, y0 : y0 + th, x0 : x0 + tw]).float()
            if out is None:
                out = torch.zeros(b, pred.shape[1], h, w, dtype=torch.float32, device=x.device)
            weight = (wy[:, None] * wx[None, :])[None, None]
            out[:, :, y0 : y0 + th, x0 : x0 + tw] += pred * weight
            wsum[:, :, y0 : y0 + th, x0 : x0 + tw] += weight
            done += 1
            if callback is not None:
                callback(done, total)
    assert out is not None
    return out.div_(wsum)
