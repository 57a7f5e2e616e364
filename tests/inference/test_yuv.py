"""Y'CbCr <-> RGB: a frame converted to RGB and back comes out (almost) the same."""

from __future__ import annotations

import numpy as np
import pytest
from av.video.frame import VideoFrame

from src.inference.yuv import frame_to_rgb, matrix_name, rgb_to_frame


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
