"""Thread policy: auto_threads (the cores other processes are not using right now), per-job threads."""

import os

import psutil
import pytest
import torch

from src.utils.threads import auto_threads, set_torch_threads, threads_per_job


@pytest.fixture
def my_cpus(monkeypatch) -> list[int]:
    """Pretend this process may run on CPUs 0 and 1 of a 4-CPU machine, with torch allowed 8 threads."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(torch, "get_num_threads", lambda: 8)
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
