"""Conversions between the image kinds the API accepts and the ``(B, 3, H, W)`` float batches the net takes.

Accepted: torch tensors ``(C, H, W)`` / ``(B, C, H, W)`` in [0, 1]; numpy arrays ``(H, W)`` / ``(H, W, C)``
(uint8, uint16 or float in [0, 1]); PIL images (L, I;16, RGB, RGBA, LA, P, ...). C is 1 (gray), 3 (RGB) or
4 (RGBA). Gray is debanded as RGB (replicated) and returned as the mean of the three result channels;
alpha never goes through the net and is returned bit-exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image

from src.colour.dither import quantize
from src.utils.errors import DataError

__all__ = ["Prepared", "prepare", "finish"]


@dataclass
class Prepared:
    """An input split into what the net sees and what is needed to rebuild the caller's kind.

    Attributes:
        rgb: ``(B, 3, H, W)`` float32 in [0, 1] on the CPU.
        kind: ``tensor``, ``numpy`` or ``pil``.
        channels: channels of the input (1, 3 or 4).
        alpha: the untouched alpha (same kind/dtype as the input) or None.
        meta: what the kind needs to rebuild itself (dtype, device, batch dim, PIL mode and info).
    """

    rgb: torch.Tensor
    kind: str
    channels: int
    alpha: Any = None
    meta: dict[str, Any] = field(default_factory=dict)


def prepare(image: Any) -> Prepared:
    """Split ``image`` into a ``(B, 3, H, W)`` float32 batch plus what :func:`finish` needs."""
    if isinstance(image, torch.Tensor):
        return _prepare_tensor(image)
    if isinstance(image, np.ndarray):
        return _prepare_numpy(image)
    if isinstance(image, Image.Image):
        return _prepare_pil(image)
    raise DataError(f"expected a torch tensor, a numpy array or a PIL image, got {type(image).__name__}")


def finish(p: Prepared, rgb: torch.Tensor, dither: str = "blue-noise", seed: int = 0) -> Any:
    """Rebuild the caller's kind from the restored ``(B, 3, H, W)`` batch (``dither`` applies to 8-bit kinds)."""
    rgb = rgb.float().clamp(0.0, 1.0)
    if p.channels == 1:
        rgb = rgb.mean(dim=1, keepdim=True)  # replicated gray in -> gray out
    if p.kind == "tensor":
        out = rgb.to(device=p.meta["device"], dtype=p.meta["dtype"])
        if p.alpha is not None:
            out = torch.cat([out, p.alpha], dim=1)
        return out if p.meta["batched"] else out[0]
    arr = rgb[0].permute(1, 2, 0).cpu().numpy()  # (H, W, C)
    if p.kind == "numpy":
        dtype = p.meta["dtype"]
        out = _from_float(arr, dtype, dither, seed)
        if p.alpha is not None:
            out = np.concatenate([out, p.alpha], axis=2)
        return out[:, :, 0] if p.meta["squeeze"] else out
    return _finish_pil(p, arr, dither, seed)


# ------------------------------------------------------------------------------------------ tensors
def _prepare_tensor(t: torch.Tensor) -> Prepared:
    batched = t.ndim == 4
    if t.ndim not in (3, 4) or t.shape[-3] not in (1, 3, 4):
        raise DataError(f"expected a (C, H, W) or (B, C, H, W) tensor with C in 1, 3, 4; got {tuple(t.shape)}")
    if not t.is_floating_point():
        raise DataError(f"expected a float tensor in [0, 1], got {t.dtype}")
    x = t if batched else t[None]
    c = x.shape[1]
    alpha = x[:, 3:4] if c == 4 else None
    rgb = x[:, :3] if c >= 3 else x.expand(-1, 3, -1, -1)
    return Prepared(
        rgb.detach().float().cpu().contiguous(),
        "tensor",
        c,
        alpha,
        {"device": t.device, "dtype": t.dtype, "batched": batched},
    )


# ------------------------------------------------------------------------------------------ numpy
def _to_float(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    if a.dtype == np.uint16:
        return a.astype(np.float32) / 65535.0
    if np.issubdtype(a.dtype, np.floating) or a.dtype == np.bool_:
        return np.clip(np.nan_to_num(a.astype(np.float32)), 0.0, 1.0)
    raise DataError(f"expected uint8, uint16 or float samples, got {a.dtype}")


def _from_float(a: np.ndarray, dtype: np.dtype, dither: str, seed: int) -> np.ndarray:
    if dtype == np.uint8:
        return quantize(a, 8, dither, seed)
    if dtype == np.uint16:
        return quantize(a, 16, "none")  # 16 bits: 1/65535 steps are far below visibility
    if dtype == np.bool_:
        return a >= 0.5
    return a.astype(dtype)


def _prepare_numpy(a: np.ndarray) -> Prepared:
    squeeze = a.ndim == 2
    x = a[:, :, None] if squeeze else a
    if x.ndim != 3 or x.shape[2] not in (1, 3, 4) or x.shape[0] == 0 or x.shape[1] == 0:
        raise DataError(f"expected an (H, W) or (H, W, C) array with C in 1, 3, 4; got {a.shape}")
    c = x.shape[2]
    f = _to_float(x[:, :, :3] if c == 4 else x)
    if c == 1:
        f = np.repeat(f, 3, axis=2)
    rgb = torch.from_numpy(np.ascontiguousarray(f)).permute(2, 0, 1)[None].contiguous()
    alpha = x[:, :, 3:4].copy() if c == 4 else None
    return Prepared(rgb, "numpy", c, alpha, {"dtype": a.dtype, "squeeze": squeeze})


# ------------------------------------------------------------------------------------------ PIL
_PIL_16 = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _prepare_pil(im: Image.Image) -> Prepared:
    mode = im.mode
    if mode in _PIL_16:
        a = np.asarray(im)
        a = np.clip(a, 0, 65535).astype(np.uint16) if a.dtype != np.uint16 else a
    elif mode == "F":
        a = np.asarray(im, dtype=np.float32)
    elif mode in ("L", "RGB", "RGBA"):
        a = np.asarray(im)
    elif mode in ("LA", "PA", "La", "RGBa") or (mode == "P" and "transparency" in im.info):
        a = np.asarray(im.convert("RGBA"))
    elif mode == "1":
        a = np.asarray(im.convert("L"))
    else:  # P, CMYK, YCbCr, LAB, HSV...: debanded as RGB, returned as RGB
        a = np.asarray(im.convert("RGB"))
    p = _prepare_numpy(np.asarray(a))
    p.kind = "pil"
    p.meta.update(mode=mode, info=dict(im.info))
    return p


def _finish_pil(p: Prepared, arr: np.ndarray, dither: str, seed: int) -> Image.Image:
    mode = p.meta["mode"]
    if mode in _PIL_16:
        out = Image.fromarray(quantize(arr[:, :, 0], 16, "none"))
        if mode == "I":
            out = out.convert("I")
    elif mode == "F":
        out = Image.fromarray(arr[:, :, 0].astype(np.float32))
    else:
        q = quantize(arr if arr.shape[2] > 1 else arr[:, :, 0], 8, dither, seed)
        if p.alpha is not None:
            q = np.concatenate([q, p.alpha], axis=2)
        out = Image.fromarray(q)
        if mode == "LA":
            out = out.convert("LA")
    # keep the ICC profile, EXIF etc. so a later save() writes them
    out.info.update({k: v for k, v in p.meta["info"].items() if k in ("icc_profile", "exif", "dpi")})
    return out
