"""CPU thread policy: how many torch threads a run uses, and single-threaded sections for small work."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psutil

__all__ = [
    "auto_threads",
    "one_torch_thread",
    "set_torch_threads",
    "start_cpu_sample",
    "threads_per_job",
    "usable_cpus",
]

#: (monotonic time, per-CPU times, this process's CPU seconds) when start_cpu_sample() was called
_sample: tuple[float, list[Any], float] | None = None


def start_cpu_sample() -> None:
    """Start measuring the machine's CPU use now; a later :func:`auto_threads` reads it instead of sleeping.

    ``deband`` calls it before it imports torch, so the second or so of imports is the sample and choosing
    the thread count costs no time. This module imports torch only inside its functions, for that reason.
    """
    global _sample
    _sample = (time.monotonic(), psutil.cpu_times(percpu=True), _own_cpu_seconds())


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


def _busy_seconds(t: Any) -> tuple[float, float]:
    """(busy, total) seconds of one CPU's ``psutil`` times; guest time is already counted in user time."""
    total = sum(t) - getattr(t, "guest", 0.0) - getattr(t, "guest_nice", 0.0)
    return total - t.idle - getattr(t, "iowait", 0.0), total


def _busy_since_sample(cpus: list[int], min_s: float) -> float | None:
    """Cores' worth of CPU use of *other* processes on ``cpus`` since :func:`start_cpu_sample` (this process's
    own use taken out), or None when no sample was started at least ``min_s`` seconds ago."""
    if _sample is None or time.monotonic() - _sample[0] < min_s:
        return None
    t0, before, own0 = _sample
    after, wall = psutil.cpu_times(percpu=True), time.monotonic() - t0
    busy = 0.0
    for i in cpus:
        if i < len(before) and i < len(after):
            b0, n0 = _busy_seconds(before[i])
            b1, n1 = _busy_seconds(after[i])
            busy += (b1 - b0) / max(n1 - n0, 1e-9)
    return max(0.0, busy - (_own_cpu_seconds() - own0) / max(wall, 1e-9))


def usable_cpus() -> list[int]:
    """The CPUs this process may run on (its affinity on Linux, else all of them)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(psutil.cpu_count() or 1))


def set_torch_threads(n: int | None = None) -> int:
    """Set torch's intra-op threads to ``n``, or to :func:`auto_threads` when ``n`` is None or 0; returns it."""
    import torch

    n = int(n) if n else auto_threads()
    torch.set_num_threads(n)
    return n


def threads_per_job(n_jobs: int) -> int:
    """Threads for each of ``n_jobs`` parallel jobs (<= 0: one per core), so jobs x threads <= cores."""
    cores = os.cpu_count() or 1
    n_jobs = cores if n_jobs <= 0 else min(n_jobs, cores)
    return max(1, cores // n_jobs)


def auto_threads(sample_s: float = 0.1) -> int:
    """Torch CPU threads for this run: the cores not busy right now, at least 1.

    Busy cores are read from the CPU use of other processes since :func:`start_cpu_sample` when it was called
    at least ``sample_s`` seconds ago (this process's own use taken out), else from the whole machine's use
    over ``sample_s`` seconds (this process sleeps meanwhile); not from the 1-minute load average, which still
    counts a previous run for a minute after it ended: `deband` called once per file in a shell loop would
    otherwise drop to 1 thread from the second file on, at half the speed. Cores that other processes keep
    busy are left to them: an intra-op thread that gets descheduled stalls the whole operation (measured on a
    2-core machine at load ~3, a 96 x 256 image took 3 s with 2 threads and 0.1 s with 1, and a 720p step
    0.92 s with 2 threads and 0.65 s with 1).
    """
    import torch

    mine = usable_cpus()
    cores = len(mine)
    busy = _busy_since_sample(mine, sample_s)
    if busy is None:
        per_cpu = psutil.cpu_percent(interval=sample_s, percpu=True)
        busy = sum(per_cpu[i] for i in mine if i < len(per_cpu)) / 100.0
    return max(1, min(torch.get_num_threads(), cores, int(cores - busy + 0.5)))


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """Temporarily set ``torch.set_num_threads(1)`` (restored on exit; switching costs < 1 us).

    Data items are small, so extra intra-op threads buy nothing. On a 2-core machine where another
    process is busy, a multi-threaded ``clamp``/``round``/``interpolate`` of a single patch stalls
    for ~10 ms waiting for a descheduled thread (measured: 16 validation items took 0.64 s with 2
    threads vs 0.02 s with 1). DataLoader workers already use one thread; this covers
    ``num_workers=0`` and setup. Call it from the main thread only (the setting is process-wide).
    """
    import torch

    n = torch.get_num_threads()
    if n == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)
