"""One torch thread for the inference tests: tiny tensors gain nothing from more, and on a busy 2-core
machine a multi-threaded small convolution can stall for tens of milliseconds (measured: a tiled run of
the tiny net took 18 s with 2 threads vs 0.2 s with 1)."""

from __future__ import annotations

import pytest

from src.utils.threads import one_torch_thread


@pytest.fixture(autouse=True)
def _one_torch_thread():
    with one_torch_thread():
        yield
