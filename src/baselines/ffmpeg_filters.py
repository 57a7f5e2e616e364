"""Classical debanding baselines: ffmpeg's ``deband`` and ``gradfun`` filters, run through PyAV's libavfilter.

PyAV bundles libavfilter, so these run without an ffmpeg binary on the machine.
"""

from __future__ import annotations

import fractions
from typing import TYPE_CHECKING

import av
import numpy as np
from av.filter import Graph

if TYPE_CHECKING:
    import torch

FILTERS = {"deband": "", "gradfun": ""}


def ffmpeg_filter(images: torch.Tensor, name: str, args: str | None = None) -> torch.Tensor:
    """Apply ffmpeg filter ``name`` (e.g. ``deband``, ``gradfun``) to ``(B, 3, H, W)`` or ``(3, H, W)`` in [0, 1].

    Frames go through the filter as 8-bit RGB (the filters' usual input); the result has the same shape.
    """
    import torch  # here, not above: filter_rgb8 alone runs without torch's ~1 s import

    single = images.ndim == 3
    batch = images[None] if single else images
    outs = []
    for img in batch:
        rgb = (img.detach().float().clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        outs.append(
            torch.from_numpy(
                filter_rgb8(np.ascontiguousarray(rgb), name, FILTERS.get(name, "") if args is None else args)
            )
            .permute(2, 0, 1)
            .float()
            / 255.0
        )
    out = torch.stack(outs).to(images.device)
    return out[0] if single else out


def filter_rgb8(rgb: np.ndarray, name: str, args: str = "") -> np.ndarray:
    """ffmpeg filter ``name`` with ``args`` on one ``(H, W, 3)`` uint8 RGB frame -> ``(H, W, 3)`` uint8."""
    h, w, _ = rgb.shape
    graph = Graph()
    src = graph.add_buffer(width=w, height=h, format="rgb24", time_base=fractions.Fraction(1, 25))
    flt = graph.add(name, args)
    fmt = graph.add("format", "rgb24")
    sink = graph.add("buffersink")
    src.link_to(flt)
    flt.link_to(fmt)
    fmt.link_to(sink)
    graph.configure()
    src.push(av.VideoFrame.from_ndarray(rgb, format="rgb24"))
    return sink.pull().to_ndarray(format="rgb24")
