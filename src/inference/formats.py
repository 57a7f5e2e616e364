"""The files ``deband`` reads and writes, by extension, its video encoders, and the image size above which
it tiles.

Kept free of torch and PyAV so that the command line can parse its arguments and plan its jobs before the
heavy imports start (see :mod:`src.deband`).
"""

from __future__ import annotations

from src.data.image_io import IMAGE_EXTENSIONS

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "VIDEO_CODECS", "AUTO_TILE", "AUTO_TILE_PIXELS"]

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi", ".ts", ".mts", ".m2ts")
VIDEO_CODECS = ("libx264", "libx265")

#: ``tile=None`` tiles images above this many pixels (per image of the batch) with AUTO_TILE tiles:
#: an untiled pass of the recipe UNet adds ~0.2 kB per pixel (measured: 1080p +0.35 GB), so 8K would need
#: ~7 GB; with 768 px tiles a 4K image peaks at ~0.75 GB RSS in total.
AUTO_TILE_PIXELS = 2_400_000  # a 1080p frame (2.07 MP) runs in one piece
AUTO_TILE = 768
