"""Run small torch CPU work single-threaded."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch

__all__ = ["one_torch_thread"]


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Temporarily set ``torch.set_num_threads(1)`` (restored on exit; switching costs < 1 us).

    Data items are small, so extra intra-op threads buy nothing. On a 2-core machine where another
    process is busy, a multi-threaded ``clamp``/``round``/``interpolate`` of a single patch stalls
    for ~10 ms waiting for a descheduled thread (measured: 16 validation items took 0.64 s with 2
    threads vs 0.02 s with 1). DataLoader workers already use one thread; this covers
    ``num_workers=0`` and setup. Call it from the main thread only (the setting is process-wide).
    """
    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
