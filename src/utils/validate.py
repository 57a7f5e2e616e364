"""Config and argument checks with one-line errors (:class:`~src.utils.errors.ConfigError`), shared by every
module that takes values from Hydra configs or the command line. ``name`` is the value's name as the user
writes it (``data.batch_size``, ``degradation.jpeg.quality``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from src.utils.errors import ConfigError

__all__ = ["check_int", "check_float", "check_prob", "float_range", "int_range"]


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def check_int(name: str, value: Any, lo: int | None = None, hi: int | None = None) -> int:
    """``value`` as an int, which must lie in ``[lo, hi]`` (either bound may be open)."""
    ok = _is_int(value) and (lo is None or value >= lo) and (hi is None or value <= hi)
    if not ok:
        if lo is not None and hi is not None:
            want = f"an integer in [{lo}, {hi}]"
        elif lo is not None:
            want = f"an integer >= {lo}"
        elif hi is not None:
            want = f"an integer <= {hi}"
        else:
            want = "an integer"
        raise ConfigError(f"{name} must be {want}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, lo: float, hi: float) -> float:
    """``value`` as a finite float in ``[lo, hi]``."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating))
    if not ok or not lo <= float(value) <= hi:
        raise ConfigError(f"{name} must be a number in [{lo:g}, {hi:g}], got {value!r}")
    return float(value)


def check_prob(name: str, value: Any) -> float:
    """``value`` as a float in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= float(value) <= 1.0:
        raise ConfigError(f"{name} must be a probability in [0, 1], got {value!r}")
    return float(value)


def int_range(name: str, value: Any, lo: int, hi: int) -> tuple[int, int]:
    """``b`` or ``[a, b]`` -> the inclusive ``(a, b)``, both within ``[lo, hi]``."""
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) != 2:
            raise ConfigError(f"{name} must be an integer or a [min, max] pair, got {list(value)!r}")
        a, b = (check_int(name, v, lo, hi) for v in value)
    else:
        a = b = check_int(name, value, lo, hi)
    if a > b:
        raise ConfigError(f"{name} range [{a}, {b}] has min > max")
    return a, b


def float_range(name: str, value: Any, lo: float, hi: float) -> tuple[float, float]:
    """``x`` or ``[a, b]`` -> ``(a, b)``, both within ``[lo, hi]``."""
    vals = list(value) if isinstance(value, Sequence) and not isinstance(value, str) else [value, value]
    if len(vals) != 2:
        raise ConfigError(f"{name} must be a number or a [min, max] pair, got {value!r}")
    for v in vals:
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= float(v) <= hi:
            raise ConfigError(f"{name} must be within [{lo}, {hi}], got {value!r}")
    a, b = float(vals[0]), float(vals[1])
    if a > b:
        raise ConfigError(f"{name} range [{a}, {b}] has min > max")
    return a, b
