"""Figures that make banding visible: contrast-stretched crops around the most banded window of an image,
side by side for several outputs of the same input (used by :mod:`src.eval` and the quality benchmark).

Only torch, numpy and (lazily) matplotlib: nothing here imports the model or the training stack.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from src.metrics.cambi import cambi, rgb_to_luma_codes, round_rgb

__all__ = ["cambi_heatmap", "stretch", "most_banded_window", "crop_window", "save_panels", "save_crop_panel"]


def cambi_heatmap(img: torch.Tensor, **kw: Any) -> np.ndarray:
    """CAMBI's per-pixel banding map ``(H, W)`` of one RGB image ``(3, H, W)`` in [0, 1], taken on the image
    rounded to 8 bits without dither like every banding score; ``kw`` go to :func:`~src.metrics.cambi.cambi`."""
    _, heat = cambi(rgb_to_luma_codes(round_rgb(img.detach().cpu(), 8)), return_heatmap=True, **kw)
    return heat.numpy()


def stretch(img: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Contrast-stretch ``img`` with the 1-99 % range of ``ref`` (both ``(3, H, W)``), so banding shows."""
    lo, hi = torch.quantile(ref.float().flatten(), torch.tensor([0.01, 0.99])).tolist()
    if hi - lo < 4 / 255:
        mid = (hi + lo) / 2
        lo, hi = mid - 2 / 255, mid + 2 / 255
    return ((img - lo) / (hi - lo)).clamp(0, 1)


def most_banded_window(heat: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left corner of the ``size`` x ``size`` window with the most banding in ``heat``."""
    h, w = heat.shape
    size_h, size_w = min(size, h), min(size, w)
    pooled = F.avg_pool2d(torch.from_numpy(heat)[None, None].float(), (size_h, size_w), stride=max(1, size // 4))
    idx = int(pooled.flatten().argmax())
    pw = pooled.shape[-1]
    stride = max(1, size // 4)
    return (idx // pw) * stride, (idx % pw) * stride


def crop_window(img: torch.Tensor, window: tuple[int, int], size: int) -> torch.Tensor:
    """The ``size`` x ``size`` crop (smaller at the borders) of ``(3, H, W)`` at top-left ``window``."""
    y, x = window
    return img[:, y : y + size, x : x + size]


def save_panels(
    panels: Sequence[tuple[str, torch.Tensor]],
    size: int,
    path: Path,
    *,
    window: tuple[int, int] | None = None,
    ref: torch.Tensor | None = None,
    plain: bool = True,
    heatmaps: bool = False,
    heat_kw: dict[str, Any] | None = None,
    title: str | None = None,
) -> Path:
    """One column per ``(name, (3, H, W) image)`` of the same scene, the first being the banded input; rows: the
    crop (if ``plain``), the crop contrast-stretched with ``ref``'s 1-99 % range (default: the first panel's),
    then (if ``heatmaps``) each image's CAMBI heatmap on a shared scale.

    The crop is ``size`` x ``size`` at ``window`` (top-left), by default the most banded window of the first
    panel's CAMBI heatmap (``heat_kw`` go to :func:`cambi_heatmap`). Writes a PNG to ``path``; returns it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    heat_kw = heat_kw or {}
    heats = [cambi_heatmap(img, **heat_kw) for _, img in panels] if heatmaps else []
    if window is None:
        window = most_banded_window(heats[0] if heats else cambi_heatmap(panels[0][1], **heat_kw), size)
    ref_crop = crop_window(ref if ref is not None else panels[0][1], window, size)
    rows = int(plain) + 1 + int(heatmaps)
    fig, axes = plt.subplots(
        rows, len(panels), figsize=(3.0 * len(panels), 3.0 * rows + 0.3 * bool(title)), squeeze=False
    )
    vmax = max([float(h.max()) for h in heats] + [1e-6])
    for j, (name, img) in enumerate(panels):
        crop = crop_window(img.detach().cpu().float(), window, size)
        r = 0
        if plain:
            axes[r][j].imshow(crop.permute(1, 2, 0).numpy(), interpolation="nearest")
            axes[r][j].set_title(name, fontsize=9)
            r += 1
        axes[r][j].imshow(stretch(crop, ref_crop).permute(1, 2, 0).numpy(), interpolation="nearest")
        # on its own line: long method names would run into the neighbouring panel's title
        axes[r][j].set_title(f"{name}\ncontrast-stretched", fontsize=9)
        if heatmaps:
            y, x = window
            im = axes[r + 1][j].imshow(heats[j][y : y + size, x : x + size], cmap="magma", vmin=0, vmax=vmax)
            mlc = heat_kw.get("max_log_contrast", 2)
            axes[r + 1][j].set_title(f"CAMBI{f' mlc{mlc}' if mlc != 2 else ''} heatmap, {name}", fontsize=9)
            fig.colorbar(im, ax=axes[r + 1][j], fraction=0.046)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def save_crop_panel(
    banded: torch.Tensor, restored: torch.Tensor, clean: torch.Tensor | None, steps: int, size: int, path: Path
) -> Path:
    """banded | restored | clean, the same contrast-stretched (to the clean crop's range when there is one), and
    their CAMBI heatmaps (max_log_contrast 5, which also sees the 4-code steps of 6-bit bands), around the
    input's worst band."""
    panels = [("banded", banded), (f"restored ({steps} steps)", restored)]
    if clean is not None:
        panels.append(("clean", clean))
    return save_panels(panels, size, path, ref=clean, heatmaps=True, heat_kw={"max_log_contrast": 5})
