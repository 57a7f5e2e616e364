"""The shared config checks: values pass through, bad ones stop with one line naming the key."""

from __future__ import annotations

import numpy as np
import pytest

from src.utils.errors import ConfigError
from src.utils.validate import check_int, check_prob, float_range, int_range


def test_check_int_bounds_and_messages() -> None:
    assert check_int("a", 3, 1) == 3
    assert check_int("a", np.int64(4), 0, 10) == 4
    with pytest.raises(ConfigError, match=r"^data.batch_size must be an integer >= 1, got 0$"):
        check_int("data.batch_size", 0, 1)
    with pytest.raises(ConfigError, match=r"must be an integer in \[0, 10\], got 11"):
        check_int("model.net.blend_levels", 11, 0, 10)
    for bad in (True, 2.0, "3", None):
        with pytest.raises(ConfigError, match="must be an integer"):
            check_int("x", bad, 0)


def test_probabilities_and_ranges() -> None:
    assert check_prob("p", 1) == 1.0
    with pytest.raises(ConfigError, match=r"p must be a probability in \[0, 1\], got 1.5"):
        check_prob("p", 1.5)
    assert int_range("bits", 6, 1, 8) == (6, 6)
    assert int_range("bits", [5, 7], 1, 8) == (5, 7)
    with pytest.raises(ConfigError, match="has min > max"):
        int_range("bits", [7, 5], 1, 8)
    with pytest.raises(ConfigError, match=r"must be an integer or a \[min, max\] pair"):
        int_range("bits", [1, 2, 3], 1, 8)
    assert float_range("sigma", [0.0, 0.01], 0.0, 1.0) == (0.0, 0.01)
    with pytest.raises(ConfigError, match=r"must be within \[0.0, 1.0\]"):
        float_range("sigma", 2.0, 0.0, 1.0)
