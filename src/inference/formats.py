"""The files ``deband`` reads and writes, by extension, and its video encoders.

Kept free of torch and PyAV so that the command line can parse its arguments and plan its jobs before the
heavy imports start (see :mod:`src.deband`).
"""

from __future__ import annotations

from src.data.image_io import IMAGE_EXTENSIONS

__all__ = ["IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "VIDEO_CODECS"]

VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".m4v", ".mkv", ".mov", ".webm", ".avi", ".ts", ".mts", ".m2ts")
VIDEO_CODECS = ("libx264", "libx265")
