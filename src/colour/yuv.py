"""Y'CbCr video frames <-> RGB floats, done here rather than by swscale so that the matrix and range are the
frame's own and the final quantisation (where banding is decided) is ours: dithered, to 8 or 10 bits.

Chroma is upsampled by repetition and downsampled by averaging the same blocks, so a frame that the net
leaves unchanged comes back exactly (up to rounding); the net itself sees the full-resolution RGB.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from src.colour.dither import HeldQuantizer, quantize

if TYPE_CHECKING:  # PyAV is imported where a frame is made: image runs (the contour pass) do not load it
    from av.video.frame import VideoFrame

__all__ = [
    "frame_to_rgb",
    "rgb_to_frame",
    "matrix_name",
    "matrix_for",
    "is_full_range",
    "rgb_to_ycbcr709",
    "ycbcr709_to_rgb",
]

# (Kr, Kb) of the Y'CbCr matrices; AVColorSpace codes -> matrix
_K = {"bt601": (0.299, 0.114), "bt709": (0.2126, 0.0722), "bt2020": (0.2627, 0.0593)}
_AVCOL_SPC = {1: "bt709", 5: "bt601", 6: "bt601", 9: "bt2020", 10: "bt2020"}
_AVCOL_RANGE_FULL = 2
# planar Y'CbCr layouts read directly: name -> bits
_PLANAR = {
    "yuv420p": 8,
    "yuvj420p": 8,
    "yuv422p": 8,
    "yuvj422p": 8,
    "yuv444p": 8,
    "yuvj444p": 8,
    "yuv420p10le": 10,
    "yuv422p10le": 10,
    "yuv444p10le": 10,
    "yuv420p12le": 12,
    "yuv444p12le": 12,
    "yuv444p16le": 16,
}


def matrix_for(colorspace: int, height: int) -> str:
    """The Y'CbCr matrix of an AVColorSpace code; unspecified follows players: BT.709 from 720 lines up,
    else BT.601."""
    return _AVCOL_SPC.get(int(colorspace), "bt709" if height >= 720 else "bt601")


def is_full_range(color_range: int, pix_fmt: str) -> bool:
    """Full-range (0-255) samples: tagged so, or a legacy ``yuvj*`` pixel format."""
    return int(color_range) == _AVCOL_RANGE_FULL or pix_fmt.startswith("yuvj")


def matrix_name(frame: VideoFrame) -> str:
    """The frame's Y'CbCr matrix (see :func:`matrix_for`)."""
    return matrix_for(frame.colorspace, frame.height)


def frame_to_rgb(frame: VideoFrame) -> np.ndarray:
    """A decoded frame -> ``(H, W, 3)`` float32 RGB in [0, 1] (Y'CbCr via the frame's matrix and range)."""
    name = frame.format.name
    if name.startswith(("rgb", "bgr", "gbr", "argb", "abgr", "gray")) and name not in _PLANAR:
        return frame.to_ndarray(format="rgb48le").astype(np.float32) / 65535.0
    full = is_full_range(frame.color_range, frame.format.name)
    kr, kb = _K[matrix_name(frame)]
    if name not in _PLANAR:  # nv12, p010, yuv410p...: same matrix, widened to 16-bit 4:4:4 by swscale
        frame = frame.reformat(format="yuv444p16le")
        name = "yuv444p16le"
    bits = _PLANAR[name]
    h, w = frame.height, frame.width
    y, cb, cr = (_read_plane(p, bits) for p in frame.planes[:3])
    y, cb, cr = y.astype(np.float32), cb.astype(np.float32), cr.astype(np.float32)
    scale = float(1 << (bits - 8))
    if full:
        top = float((1 << bits) - 1)
        y, cb, cr = y / top, (cb - 128 * scale) / top, (cr - 128 * scale) / top
    else:
        y, cb, cr = (y / scale - 16.0) / 219.0, (cb / scale - 128.0) / 224.0, (cr / scale - 128.0) / 224.0
    cb, cr = _upsample(cb, h, w), _upsample(cr, h, w)
    r = y + 2.0 * (1.0 - kr) * cr
    b = y + 2.0 * (1.0 - kb) * cb
    g = (y - kr * r - kb * b) / (1.0 - kr - kb)
    return np.clip(np.stack([r, g, b], axis=2), 0.0, 1.0)


def rgb_to_frame(
    rgb: np.ndarray,
    bits: int,
    matrix: str,
    full_range: bool,
    dither: str = "blue-noise",
    seed: int = 0,
    quantizer: HeldQuantizer | None = None,
) -> VideoFrame:
    """``(H, W, 3)`` float RGB -> a 4:2:0 frame (``yuv420p`` or ``yuv420p10le``), dithered before rounding.

    H and W must be even (4:2:0). ``quantizer``: a video's :class:`~src.colour.dither.HeldQuantizer`, so
    samples whose value barely changed since the last frame keep their code (plain :func:`quantize` if None).
    """
    kr, kb = _K[matrix]
    kg = 1.0 - kr - kb
    r, g, b = rgb[:, :, 0], rgb[:, :, 1], rgb[:, :, 2]
    y = kr * r + kg * g + kb * b
    cb = _downsample((b - y) / (2.0 * (1.0 - kb)))
    cr = _downsample((r - y) / (2.0 * (1.0 - kr)))
    top = float((1 << bits) - 1)
    # map to [0, 1] codes-space so quantize() can dither: code = value * top
    if full_range:
        planes = [y, cb + 128.0 * (1 << (bits - 8)) / top, cr + 128.0 * (1 << (bits - 8)) / top]
    else:
        s = float(1 << (bits - 8)) / top
        planes = [(16.0 + 219.0 * y) * s, (128.0 + 224.0 * cb) * s, (128.0 + 224.0 * cr) * s]
    from av.video.frame import VideoFrame

    fmt = "yuv420p" if bits == 8 else "yuv420p10le"
    frame = VideoFrame(rgb.shape[1], rgb.shape[0], fmt)
    unit = float(1 << (bits - 8))  # one 8-bit code
    luma_ends = (0.0, top) if full_range else (16.0 * unit, 235.0 * unit)
    for i, (plane, data) in enumerate(zip(frame.planes, planes)):
        # different mask offsets per plane so the luma and chroma noise do not line up; the triangular
        # dither (no plateaus) on the luma only, fading at video black and white, so black bars and neutral
        # grey (chroma exactly at 128) stay exact and cost the encoder nothing
        kw = {"seed": seed + i, "offset": (17 * i, 41 * i), "triangular": i == 0, "ends": luma_ends}
        q = quantize(data, bits, dither, **kw) if quantizer is None else quantizer(i, data, bits, dither, **kw)
        dtype = np.dtype(np.uint8) if bits == 8 else np.dtype("<u2")
        buf = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
        buf[:, : q.shape[1]] = q
    return frame


def _read_plane(plane, bits: int) -> np.ndarray:  # noqa: ANN001 - av.video.plane.VideoPlane
    dtype = np.dtype(np.uint8) if bits == 8 else np.dtype("<u2")
    rows = np.frombuffer(plane, dtype=dtype).reshape(plane.height, plane.line_size // dtype.itemsize)
    return rows[:, : plane.width]


def _upsample(c: np.ndarray, h: int, w: int) -> np.ndarray:
    """Repeat chroma samples up to ``(h, w)`` (factor 1 or 2 per axis, from the plane sizes)."""
    fy, fx = -(-h // c.shape[0]), -(-w // c.shape[1])
    if fy > 1:
        c = np.repeat(c, fy, axis=0)
    if fx > 1:
        c = np.repeat(c, fx, axis=1)
    return c[:h, :w]


def _downsample(c: np.ndarray) -> np.ndarray:
    """2 x 2 block means ``(H, W)`` -> ``(ceil(H/2), ceil(W/2))`` (odd edges replicated)."""
    h, w = c.shape
    if h % 2 or w % 2:
        c = np.pad(c, ((0, h % 2), (0, w % 2)), mode="edge")
    return c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean(axis=(1, 3))


def rgb_to_ycbcr709(rgb: torch.Tensor) -> torch.Tensor:
    """``(..., 3, H, W)`` RGB in [0, 1] -> BT.709 limited-range Y'CbCr as unrounded 8-bit code values
    (``Y = 16 + 219 Y'``, ``Cb/Cr = 128 + 224 (B'/R' - Y') / (2 (1 - Kb/Kr))``), in the input's floating
    dtype (float32 for other dtypes)."""
    kr, kb = _K["bt709"]
    x = rgb if rgb.is_floating_point() else rgb.to(torch.float32)
    r, g, b = x[..., 0, :, :], x[..., 1, :, :], x[..., 2, :, :]
    y = kr * r + (1 - kr - kb) * g + kb * b
    return torch.stack(
        [16 + 219 * y, 128 + 224 * (b - y) / (2 * (1 - kb)), 128 + 224 * (r - y) / (2 * (1 - kr))], dim=-3
    )


def ycbcr709_to_rgb(codes: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_ycbcr709`: ``(..., 3, H, W)`` codes -> RGB in the same dtype, not clamped."""
    kr, kb = _K["bt709"]
    y = (codes[..., 0, :, :] - 16) / 219
    b = y + (codes[..., 1, :, :] - 128) / 224 * (2 * (1 - kb))
    r = y + (codes[..., 2, :, :] - 128) / 224 * (2 * (1 - kr))
    g = (y - kr * r - kb * b) / (1 - kr - kb)
    return torch.stack([r, g, b], dim=-3)
