"""The Python API: ``Debander.from_checkpoint("default").deband(image)``.

>>> d = Debander.from_checkpoint("model.pt")          # or a .ckpt, a .onnx, or "default"
>>> out = d.deband(pil_image)                         # same kind back: PIL / numpy / torch
>>> out = d.deband(array_uint16, steps=4, tile=512)   # fewer steps = faster; tiles bound the memory
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext
from typing import Any

import torch
import torch.nn.functional as F

from src.baselines.contour import ContourConfig, contour_fill
from src.inference.convert import finish, prepare
from src.inference.device import pick_device, pick_dtype
from src.inference.formats import AUTO_TILE, AUTO_TILE_PIXELS
from src.inference.tiling import run_tiled
from src.inference.weights import LoadedWeights, load_weights
from src.utils.errors import ConfigError
from src.utils.threads import one_torch_thread
from src.utils.validate import check_int

__all__ = ["Debander", "AUTO_TILE", "AUTO_TILE_PIXELS", "keep_clipped", "keep_unbanded"]

#: inputs below this many pixels (batch included) run on one torch thread
SMALL_PIXELS = 256 * 256
#: :func:`keep_unbanded`: a step between neighbours of more than this many 8-bit codes (in any RGB channel) is
#: an edge, not a band's step, and so are the small steps within ``UNBANDED_RIM`` px of it (its antialiased rim);
#: a band's steps are within ``UNBANDED_REACH`` 8 px blocks of every sample the network may move
UNBANDED_EDGE_CODES = 24.0
UNBANDED_RIM = 3
UNBANDED_REACH = 6

Progress = Callable[[int, int], None]


class Debander:
    """Debands images with an INDI model.

    Args:
        weights: the loaded network and schedule (see :func:`~src.inference.weights.load_weights`).
        device: where the network runs.
        dtype: float32, or bfloat16 (autocast: the net's convolutions in bf16, the image and the INDI
            updates stay float32 because bf16's 8-bit mantissa would itself re-create banding).
        compile: wrap the network in ``torch.compile`` (a graph per input size: slow first call per size).
        channels_last: convert the network to NHWC memory layout. The project's UNet already keeps itself in
            NHWC unless built with ``channels_last: false`` (see its docstring), so this matters only for
            networks trained with it off.
        contour: after the network, contour interpolation over the whole image
            (:mod:`src.baselines.contour`) rebuilds the ramps under bands wider than the network sees; None
            leaves the network's output as it is.
    """

    def __init__(
        self,
        weights: LoadedWeights,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        compile: bool = False,
        channels_last: bool = False,
        contour: ContourConfig | None = None,
    ) -> None:
        self.weights = weights
        self.contour = contour
        self.device = torch.device(device)
        self.dtype = dtype
        self.channels_last = channels_last and isinstance(weights.net, torch.nn.Module)
        net = weights.net
        if isinstance(net, torch.nn.Module):
            net = net.to(self.device)
            if self.channels_last:
                net = net.to(memory_format=torch.channels_last)
            if compile:
                net = torch.compile(net, dynamic=False)
        elif compile or dtype != torch.float32 or self.device.type != "cpu":
            raise ConfigError("ONNX models run on the CPU in float32 without --compile; use a .pt/.ckpt for those")
        self.net = net

    @classmethod
    def from_checkpoint(
        cls,
        path: str | os.PathLike | None = "default",
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        compile: bool = False,
        contour: bool = True,
        contour_gate: str = "learned",
    ) -> Debander:
        """Load a Lightning ``.ckpt`` (its EMA weights), an exported ``.pt``/``.onnx``, or ``"default"``.

        ``device``: None/"auto" picks cuda, then mps, then cpu. ``dtype``: None picks bfloat16 on CUDA and on
        CPUs with native bf16 (AVX512-BF16/AMX), float32 elsewhere. ``contour``: run the wide-band contour
        interpolation after the network (default; see the class). ``contour_gate``: how that pass chooses
        which plateaus to ramp, ``"learned"`` (the shipped gate), ``"rules"`` (the hand rules alone) or the
        path of a gate fitted by ``python -m src.train_gate`` (loaded here, so a bad file fails at once).
        """
        onnx = str(path).lower().endswith(".onnx")
        # checked before loading: a bad device/dtype fails fast
        dev = torch.device("cpu") if onnx and device is None else pick_device(device)
        # onnxruntime's CPU provider runs the graph in its own precision, float32
        dt = pick_dtype(dtype or "float32", dev) if onnx else pick_dtype(dtype, dev)
        cfg = ContourConfig(gate=contour_gate) if contour else None
        return cls(load_weights(path, device="cpu"), dev, dt, compile=compile, contour=cfg)

    # ---------------------------------------------------------------------------------------------- info
    @property
    def default_steps(self) -> int:
        """The checkpoint's recommended ``deband_steps`` if it has one, else its schedule's steps."""
        return self.weights.default_steps

    def describe(self) -> str:
        """One line naming the weights, as the CLI prints it."""
        w = self.weights
        what = {"lightning": "Lightning checkpoint, EMA weights", "export": "exported model", "onnx": "ONNX model"}[
            w.kind
        ]
        net = w.net
        size = (
            f", {sum(p.numel() for p in net.parameters()) / 1e6:.2f} M parameters"
            if isinstance(net, torch.nn.Module)
            else ""
        )
        dtype = str(self.dtype).removeprefix("torch.")
        n = torch.get_num_threads()
        where = f"cpu, {n} thread{'s' if n != 1 else ''}" if self.device.type == "cpu" else str(self.device)
        steps = self.default_steps
        post = ""
        if self.contour is not None:
            gate = {"learned": "", "rules": " (hand rules)"}.get(self.contour.gate, f" (gate {self.contour.gate})")
            post = "; then contour interpolation" + gate
        return (
            f"using weights: {w.source} ({what}{size}; {steps} step{'s' if steps != 1 else ''} by default; "
            f"{where}, {dtype}{post})"
        )

    # ---------------------------------------------------------------------------------------------- API
    def deband(
        self,
        image: Any,
        steps: int | None = None,
        tile: int | None = None,
        overlap: int = 32,
        seed: int = 0,
        dither: str = "blue-noise",
        callback: Progress | None = None,
    ) -> Any:
        """Deband ``image`` and return the same kind.

        Args:
            image: tensor ``(3, H, W)``/``(B, 3, H, W)`` in [0, 1] (1 or 4 channels work too), numpy
                ``(H, W)``/``(H, W, 1|3|4)`` uint8/uint16/float, or a PIL image. Gray is processed as RGB and
                returned gray; alpha is returned untouched.
            steps: INDI steps (default :attr:`default_steps`); fewer is faster.
            tile: tile size in pixels; None = automatic (tiles only images above ~2.4 MP), 0 = never tile.
            overlap: overlap of neighbouring tiles in pixels (blended with a raised-cosine ramp).
            seed: seed of the path noise (only for schedules with noise) and of TPDF dithering.
            dither: for 8-bit results (uint8 arrays, 8-bit PIL images): ``blue-noise``, ``tpdf`` or ``none``.
            callback: ``callback(done, total)`` after each tile.
        """
        p = prepare(image)
        out = self.deband_batch(p.rgb, steps=steps, tile=tile, overlap=overlap, seed=seed, callback=callback)
        return finish(p, out, dither=dither, seed=seed)

    def deband_batch(
        self,
        x: torch.Tensor,
        steps: int | None = None,
        tile: int | None = None,
        overlap: int = 32,
        seed: int = 0,
        callback: Progress | None = None,
        contour: bool = True,
    ) -> torch.Tensor:
        """The core: ``(B, 3, H, W)`` float in [0, 1] -> ``(B, 3, H, W)`` float32 in [0, 1] on the CPU: the
        network (tiled when large), then the contour interpolation over the whole image when it is on
        (``contour=False`` skips it for this call: video runs it per frame itself, see
        :class:`~src.baselines.contour.ContourTracker`)."""
        if x.ndim != 4 or x.shape[1] != 3:
            raise ConfigError(f"deband_batch expects (B, 3, H, W), got {tuple(x.shape)}")
        if steps is not None:
            check_int("steps", steps, 1)
        if tile is not None and tile < 0:
            raise ConfigError(f"tile must be >= 0, got {tile}")
        if overlap < 0:
            raise ConfigError(f"overlap must be >= 0, got {overlap}")
        # None keeps the schedule's own grid (an explicit grid is not the same as N uniform steps)
        steps = steps if steps is not None else self.weights.deband_steps
        h, w = x.shape[-2:]
        if tile is None:
            tile = AUTO_TILE if h * w > AUTO_TILE_PIXELS else 0

        def restore(part: torch.Tensor) -> torch.Tensor:
            # every tile runs the whole sampler from t = 1 to 0 (the net is local; see tiling.py)
            # contiguous NCHW: images arrive as (H, W, C) arrays seen through a permute, and the blend head's
            # pyramids run 10% slower on that memory order (1080p, 2 cores)
            part = part.to(self.device, torch.float32).contiguous()
            out = self.weights.schedule.sample(self._net_fn, part, steps=steps, seed=seed)
            return out.clamp_(0.0, 1.0).float().cpu()

        # tiny inputs gain nothing from more threads and can stall waiting for one on a busy machine
        threads = one_torch_thread() if x.shape[0] * h * w < SMALL_PIXELS else nullcontext()
        with torch.inference_mode(), threads:
            if tile == 0:
                out = restore(x)
                if callback is not None:
                    callback(1, 1)
            else:
                out = run_tiled(restore, x, tile, overlap, callback=callback)
            out = keep_unbanded(x, out)
        # whole-image pass: a band can be wider than a tile
        if contour and self.contour is not None:
            out = contour_fill(out, self.contour, x)
        return keep_clipped(x, out)

    def _net_fn(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """One network evaluation in the configured layout and dtype; the result is float32 NCHW."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast(self.device.type, dtype=self.dtype) if self.dtype != torch.float32 else nullcontext()
        with ctx:
            out = self.net(x, t)
        return out.float().contiguous()


def keep_clipped(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out`` with every sample that is at 0 or 1 in ``x`` (both ``(B, 3, H, W)``, ``x`` in [0, 1]) set back
    to it (a new tensor).

    A clipped highlight or crushed shadow holds no gradient to rebuild, and the network's smooth candidates
    reach up to about 32 px: beside moving texture they moved clipped samples a little differently in every
    video frame.
    """
    xs = x.to(out.device, out.dtype)
    # floor is 1 only where x is 1 and ceil 0 only where x is 0: one clamp does both ends
    return out.clamp(min=xs.floor(), max=xs.ceil())


def keep_unbanded(x: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``out`` held within half an 8-bit code of ``x`` (both ``(B, 3, H, W)`` in [0, 1]) wherever ``x`` shows no
    band step nearby; ``out`` itself (the same tensor) where every sample has one.

    A band's step is a difference of 0.5 to :data:`UNBANDED_EDGE_CODES` codes between neighbours, more than
    :data:`UNBANDED_RIM` px from a larger one (an edge and its antialiased rim). Where none lies within about
    :data:`UNBANDED_REACH` 8 px blocks, the picture is flat without banding (flat graphics, a letterbox, a user
    interface) or all edges: there is nothing to deband, and the network's smooth candidates, which reach about
    32 px across edges, would only tint flat areas beside them. The hold fades in over a few blocks: no seam.
    """
    b, _, h, w = x.shape
    if h < 2 or w < 2:
        return out
    xs = x.to(out.device, torch.float32)
    # the largest step to the right or below, over the channels, in codes
    step = F.pad((xs[..., :, 1:] - xs[..., :, :-1]).abs_().amax(1), (0, 1))
    step = torch.maximum(step, F.pad((xs[..., 1:, :] - xs[..., :-1, :]).abs_().amax(1), (0, 0, 0, 1))).mul_(255.0)
    edge = step > UNBANDED_EDGE_CODES
    rim = edge.clone()  # the edges grown by UNBANDED_RIM px (shifted ORs: cheaper than pooling at full size)
    for axis in (-1, -2):
        grown = rim.clone()
        for s in range(1, min(UNBANDED_RIM, rim.shape[axis] - 1) + 1):
            grown.narrow(axis, s, grown.shape[axis] - s).logical_or_(rim.narrow(axis, 0, rim.shape[axis] - s))
            grown.narrow(axis, 0, grown.shape[axis] - s).logical_or_(rim.narrow(axis, s, rim.shape[axis] - s))
        rim = grown
    band = (step >= 0.5) & ~rim
    ph, pw = (-h) % 8, (-w) % 8
    blocks = F.pad(band, (0, pw, 0, ph)).view(b, (h + ph) // 8, 8, (w + pw) // 8, 8).any(4).any(2)
    r = UNBANDED_REACH
    near = F.max_pool2d(blocks[:, None].float(), 2 * r + 1, 1, r)
    weight = F.avg_pool2d(near, 5, 1, 2, count_include_pad=False)
    low = (weight < 1).flatten(0, 1).any(0)
    if not bool(low.any()):
        return out
    # only the blocks the hold reaches (and one more for the upsampling's spread) are worked at full size
    rows, cols = low.any(1).nonzero()[:, 0], low.any(0).nonzero()[:, 0]
    y0, y1 = max(int(rows[0]) - 1, 0), int(rows[-1]) + 2
    x0, x1 = max(int(cols[0]) - 1, 0), int(cols[-1]) + 2
    # outside these blocks the weight is 1, so upsampling the crop alone gives the same values
    weight = F.interpolate(weight[..., y0:y1, x0:x1], scale_factor=8, mode="bilinear")
    part = (..., slice(y0 * 8, min(y1 * 8, h)), slice(x0 * 8, min(x1 * 8, w)))
    o, xp = out[part], xs[part]
    weight = weight[..., : o.shape[-2], : o.shape[-1]]
    held = torch.minimum(torch.maximum(o, xp - 0.5 / 255.0), xp + 0.5 / 255.0)
    res = out.clone()
    res[part] = torch.where(weight >= 1, o, torch.lerp(held, o, weight))
    return res
