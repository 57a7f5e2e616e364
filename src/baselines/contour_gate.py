"""The contour pass's learned gate: how much of each rebuilt ramp to apply, block by block.

Why: the contour pass (:mod:`src.baselines.contour`) proposes a ramp for every flat block with a border
above it and one below it, but not every such block is a band crossing: a codec's flat blocks, a photo's
own gentle shading and the plateaus of a clean gradient look alike. Hand rules (borders on opposite sides,
steps up and down of similar size, a plateau some blocks wide) decided how much of the ramp to apply, and
they cost as much on codec-made plateaus as they gained on bit-depth bands. Told by a clean reference which
blocks the ramp brings closer, an oracle choosing per block would take the stream set's smooth-region PSNR
from 41.33 to 42.96 dB (docs/model_history.md, nineteenth round).

This small CNN makes that choice from what the pass knows at each block (:data:`FEATURES`: the proposed
change, the distances and steps to the two borders, the directions to them, the hand rules' own weights,
the block's range and flatness in the input and the output, its neighbourhood), over the block grid. Its
layers are dilated (1, 2, 4, 8 blocks apart), so at the cost of a 9 x 9 view it sees 31 x 31 blocks: 248 px
of luma, most of a wide band's plateau and its borders. It is fitted by ``python -m src.train_gate`` to the
error against clean references over the project's degradations (bit-depth reduction, JPEG, H.264,
streamed-video banding and clean images) on the training photos, and its weights ship as
``src/weights/contour_gate.pt`` (46 kB).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from src.baselines.guided import box_mean
from src.utils.errors import ConfigError

__all__ = ["FEATURES", "ContourGate", "DEFAULT_GATE", "gate_features", "load_gate"]

#: the shipped weights
DEFAULT_GATE = Path(__file__).resolve().parent.parent / "weights" / "contour_gate.pt"

#: the per-block inputs, in channel order (distances in 4 px units, values in codes)
FEATURES = (
    "|ramp - block|",
    "log(1 + distance up)",
    "log(1 + distance down)",
    "log(1 + plateau width)",
    "position across the plateau",
    "step up",
    "step down",
    "step ratio",
    "cosine between the borders' directions",
    "hand rules' weight",
    "opposite-sides rule",
    "step-ratio rule",
    "is luma",
    "is Cb",
    "block range",
    "texture weight",
    "input block std",
    "output block std",
    "input block range",
    "block value / 255",
    "hand rules' weight, 5 x 5 mean",
    "block values' 5 x 5 std",
)


class ContourGate(nn.Module):
    """``forward(features (B, len(FEATURES), h, w), mask (B, 1, h, w)) -> (B, 1, h, w)`` in [0, 1]: the share
    of each block's ramp to apply. ``mask`` marks the blocks with a ramp; features elsewhere are ignored."""

    def __init__(self, width: int = 16, layers: int = 5, dilations: tuple[int, ...] | None = None) -> None:
        super().__init__()
        n = len(FEATURES)
        dil = tuple(dilations) if dilations is not None else (1,) * (layers - 1)
        if len(dil) != layers - 1:
            raise ConfigError(f"contour gate: {layers} layers need {layers - 1} dilations; got {dil}")
        # the training set's feature means and stds, stored with the weights
        self.register_buffer("mean", torch.zeros(n))
        self.register_buffer("std", torch.ones(n))
        mods: list[nn.Module] = []
        for i, d in enumerate(dil):
            mods += [nn.Conv2d(n + 1 if i == 0 else width, width, 3, padding=d, dilation=d), nn.SiLU()]
        mods.append(nn.Conv2d(width, 1, 1))
        self.net = nn.Sequential(*mods)
        self.width, self.layers, self.dilations = width, layers, dil

    def forward(self, features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = (features - self.mean[:, None, None]) / self.std[:, None, None] * mask
        return torch.sigmoid(self.net(torch.cat([x, mask], 1)))


def _mean5(x: np.ndarray) -> np.ndarray:
    """The mean over each block's 5 x 5 neighbourhood, edges replicated."""
    return box_mean(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))[None, None], 2)[0, 0].numpy()


def gate_features(
    *,
    lo: np.ndarray,
    dist_up: np.ndarray,
    dist_down: np.ndarray,
    step_up: np.ndarray,
    step_down: np.ndarray,
    ratio: np.ndarray,
    cos: np.ndarray,
    change: np.ndarray,
    weight: np.ndarray,
    opposite: np.ndarray,
    regular: np.ndarray,
    channel: int,
    block: int,
    block_range: np.ndarray,
    texture: np.ndarray,
    in_std: np.ndarray,
    out_std: np.ndarray,
    in_range: np.ndarray,
) -> np.ndarray:
    """The :data:`FEATURES` of every block, ``(len(FEATURES), h, w)`` float32, from the contour pass's block
    maps ``(h, w)`` (distances in blocks of ``block`` px; ``inf`` or ``nan`` where a border is missing, which
    become 0: such blocks are masked out anyway)."""
    scale = block / 4.0
    a, b = dist_up * scale, dist_down * scale
    with np.errstate(invalid="ignore", divide="ignore"):
        position = dist_down / (dist_up + dist_down)
    sq = _mean5(lo * lo) - _mean5(lo) ** 2
    cols = (
        np.abs(change),
        np.log1p(a),
        np.log1p(b),
        np.log1p(a + b),
        position,
        step_up,
        step_down,
        ratio,
        cos,
        weight,
        opposite,
        regular,
        np.full(lo.shape, float(channel == 0)),
        np.full(lo.shape, float(channel == 1)),
        block_range,
        texture,
        in_std,
        out_std,
        in_range,
        lo / 255.0,
        _mean5(weight),
        np.sqrt(np.clip(sq, 0, None)),
    )
    out = np.stack([np.broadcast_to(c, lo.shape) for c in cols]).astype(np.float32)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


@cache
def load_gate(path: str) -> ContourGate:
    """The gate saved at ``path`` by ``python -m src.train_gate`` (cached: loaded once per process)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"contour gate weights not found: {p} (fit them with `python -m src.train_gate`)")
    try:
        ck = torch.load(p, map_location="cpu", weights_only=True)
        gate = ContourGate(int(ck["width"]), int(ck["layers"]), ck.get("dilations"))
        gate.load_state_dict(ck["state_dict"])
    except Exception as e:  # noqa: BLE001 - a truncated or foreign file: one clear line
        raise ConfigError(f"cannot load contour gate weights {p}: {e}") from e
    return gate.eval()


def save_gate(gate: ContourGate, path: str | Path, note: str = "") -> None:
    """Write ``gate`` for :func:`load_gate` (atomically: a temporary file renamed over ``path``)."""
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    ck = {"width": gate.width, "layers": gate.layers, "dilations": list(gate.dilations), "note": note}
    torch.save({**ck, "state_dict": gate.state_dict()}, tmp)
    tmp.replace(p)
