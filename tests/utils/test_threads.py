"""Thread policy: auto_threads (the cores other processes are not using right now), per-job threads."""

import collections
import os
import time

import psutil
import pytest
import torch

from src.utils import threads
from src.utils.threads import auto_threads, set_torch_threads, start_cpu_sample, threads_per_job


@pytest.fixture
def my_cpus(monkeypatch) -> list[int]:
    """Pretend this process may run on CPUs 0 and 1 of a 4-CPU machine, with torch allowed 8 threads."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
    monkeypatch.setattr(threads, "_sample", None)  # no sample started: auto_threads samples itself
    return [0, 1]


def _use(monkeypatch, per_cpu: list[float]) -> None:
    monkeypatch.setattr(psutil, "cpu_percent", lambda interval, percpu: list(per_cpu))


@pytest.mark.parametrize(
    "per_cpu,expected",
    [
        ([0.0, 0.0, 0.0, 0.0], 2),  # idle: both of this process's cores
        ([20.0, 15.0, 100.0, 100.0], 2),  # other CPUs busy, but not ours; light use of ours is not a busy core
        ([100.0, 0.0, 0.0, 0.0], 1),  # another process holds one of our cores
        ([60.0, 50.0, 0.0, 0.0], 1),  # about one core's worth of use spread over both
        ([100.0, 100.0, 0.0, 0.0], 1),  # both busy: still at least one thread
    ],
)
def test_auto_threads_counts_only_busy_cores_of_this_process(monkeypatch, my_cpus, per_cpu, expected):
    _use(monkeypatch, per_cpu)
    assert auto_threads() == expected


def test_auto_threads_ignores_the_load_average(monkeypatch, my_cpus):
    """A previous run lingers in the 1-minute load average; an idle machine now still gets every core."""
    monkeypatch.setattr(os, "getloadavg", lambda: (2.0, 2.0, 2.0))
    _use(monkeypatch, [0.0, 0.0, 0.0, 0.0])
    assert auto_threads() == 2


def test_auto_threads_never_exceeds_torch_threads(monkeypatch, my_cpus):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    _use(monkeypatch, [0.0, 0.0, 0.0, 0.0])
    assert auto_threads() == 1


_Times = collections.namedtuple("scputimes", "user system idle iowait")


def _cpu(busy: float, idle: float):
    """psutil's per-CPU times with ``busy`` seconds of user time and ``idle`` seconds idle."""
    return _Times(busy, 0.0, idle, 0.0)


@pytest.mark.parametrize(
    "others,expected",
    [
        (0.0, 2),  # only this process ran (its import took one core): both cores are free
        (1.0, 1),  # another process kept one of our cores busy all along
        (0.3, 2),  # light use by others is not a busy core
    ],
)
def test_auto_threads_reads_a_started_sample_without_sleeping(monkeypatch, my_cpus, others, expected):
    """Over 1 s since start_cpu_sample, this process used 1 CPU second (importing) and others ``others``
    cores' worth on our two CPUs; CPUs 2 and 3 (not ours) were fully busy."""
    clock = iter([100.0, 101.0, 101.0])
    monkeypatch.setattr(time, "monotonic", lambda: next(clock))
    own = iter([5.0, 6.0])
    monkeypatch.setattr(threads, "_own_cpu_seconds", lambda: next(own))
    before = [_cpu(0, 0), _cpu(0, 0), _cpu(0, 0), _cpu(0, 0)]
    mine = 1.0 + others  # busy seconds on CPUs 0 and 1 together
    after = [_cpu(mine / 2, 1 - mine / 2), _cpu(mine / 2, 1 - mine / 2), _cpu(1, 0), _cpu(1, 0)]
    snaps = iter([before, after])
    monkeypatch.setattr(psutil, "cpu_times", lambda percpu: next(snaps))
    monkeypatch.setattr(psutil, "cpu_percent", lambda **kw: pytest.fail("slept to sample"))
    start_cpu_sample()
    assert auto_threads(sample_s=0.1) == expected


def test_auto_threads_samples_itself_when_the_started_sample_is_too_recent(monkeypatch, my_cpus):
    start_cpu_sample()
    _use(monkeypatch, [100.0, 0.0, 0.0, 0.0])
    assert auto_threads(sample_s=60.0) == 1


def test_auto_threads_on_this_machine_is_in_range():
    n = auto_threads(sample_s=0.05)
    assert 1 <= n <= min(torch.get_num_threads(), len(os.sched_getaffinity(0)))


@pytest.mark.parametrize("n_jobs,cores,expected", [(-1, 4, 1), (2, 4, 2), (3, 4, 1), (8, 4, 1), (1, 2, 2)])
def test_threads_per_job_keeps_jobs_times_threads_within_the_cores(monkeypatch, n_jobs, cores, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    assert threads_per_job(n_jobs) == expected


def test_set_torch_threads_explicit_or_automatic(monkeypatch):
    before = torch.get_num_threads()
    try:
        assert set_torch_threads(1) == 1 and torch.get_num_threads() == 1
        monkeypatch.setattr("src.utils.threads.auto_threads", lambda: 1)
        assert set_torch_threads(None) == 1
    finally:
        torch.set_num_threads(before)
