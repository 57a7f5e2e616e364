"""Inference: the :class:`Debander` API, tiling, dithering, image and video files."""

from src.inference.debander import Debander

__all__ = ["Debander"]
