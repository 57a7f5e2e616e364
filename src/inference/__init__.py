"""Inference: the :class:`Debander` API, tiling, dithering, image and video files.

``Debander`` is imported on first use, so the torch-free modules here (:mod:`src.inference.formats`) load
without torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from src.inference.debander import Debander

__all__ = ["Debander"]


def __getattr__(name: str) -> Any:
    if name == "Debander":
        from src.inference.debander import Debander

        return Debander
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
