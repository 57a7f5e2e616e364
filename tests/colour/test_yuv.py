"""Y'CbCr <-> RGB: a frame converted to RGB and back comes out (almost) the same."""

from __future__ import annotations

import numpy as np
import pytest
from av.video.frame import VideoFrame

from src.colour.yuv import frame_to_rgb, matrix_name, rgb_to_frame


@pytest.mark.parametrize("bits,matrix,full", [(8, "bt709", False), (10, "bt601", False), (8, "bt2020", True)])
def test_round_trip(bits: int, matrix: str, full: bool) -> None:
    rng = np.random.default_rng(0)
    rgb = np.repeat(np.repeat(rng.random((8, 12, 3), dtype=np.float32), 2, axis=0), 2, axis=1)  # chroma-flat blocks
    frame = rgb_to_frame(rgb, bits, matrix, full, dither="none")
    assert frame.format.name == ("yuv420p" if bits == 8 else "yuv420p10le")
    frame.colorspace = {"bt709": 1, "bt601": 6, "bt2020": 9}[matrix]
    frame.color_range = 2 if full else 1
    assert matrix_name(frame) == matrix
    back = frame_to_rgb(frame)
    tol = 3.0 / (2**bits - 1) * 4  # a few codes after matrix + rounding, clipped gamut corners aside
    inside = (rgb > 0.05).all(axis=2) & (rgb < 0.95).all(axis=2)
    assert np.abs(back - rgb)[inside].max() < tol


def test_unspecified_matrix_follows_height() -> None:
    assert matrix_name(VideoFrame(64, 48, "yuv420p")) == "bt601"
    assert matrix_name(VideoFrame(1280, 720, "yuv420p")) == "bt709"


@pytest.mark.parametrize("full", [False, True])
def test_dither_leaves_black_white_and_neutral_chroma_exact(full: bool) -> None:
    from src.colour.yuv import _read_plane

    # black and white bars around a mid-grey ramp: only the ramp's luma may carry dither noise
    rgb = np.zeros((32, 96, 3), dtype=np.float32)
    rgb[:, 32:64] = np.linspace(0.4, 0.45, 32, dtype=np.float32)[None, :, None]
    rgb[:, 64:] = 1.0
    frame = rgb_to_frame(rgb, 8, "bt709", full, dither="blue-noise")
    y, cb, cr = (_read_plane(p, 8).astype(int) for p in frame.planes)
    black, white = (0, 255) if full else (16, 235)
    assert (y[:, :32] == black).all() and (y[:, 64:] == white).all()
    assert (cb == 128).all() and (cr == 128).all()  # grey everywhere: no chroma noise
    ramp = y[:, 34:62]
    assert len(np.unique(ramp)) >= 3 and (np.diff(ramp, axis=0) != 0).mean() > 0.2  # dithered, triangular
