"""keep_freed_memory: a large block freed by one frame is reused by the next, not faulted in again; prefault
maps the first frame's memory in ahead, from another thread."""

from __future__ import annotations

import subprocess
import sys

import pytest

from src.utils import malloc

_CHILD = """
import ctypes, resource, sys
from src.utils.malloc import keep_freed_memory, prefault
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]
if sys.argv[1] in ("keep", "prefault"):
    assert keep_freed_memory() and keep_freed_memory()  # set once, then remembered
def frame():
    # a 200 MB activation, every page touched, as torch's CPU allocator does it (numpy would ask for huge pages)
    p = libc.malloc(200 << 20)
    ctypes.memset(p, 1, 200 << 20)
    libc.free(p)
if sys.argv[1] == "prefault":
    prefault(220 << 20).join()  # on another thread, as deband does it during its imports
else:
    frame()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
frame()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults_of_second_frame(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", _CHILD, mode], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_freed_memory_is_reused_instead_of_faulted_in_again() -> None:
    pages = (200 << 20) // 4096
    assert _faults_of_second_frame("default") > pages // 2  # glibc unmaps it on free: every page again
    assert _faults_of_second_frame("keep") < pages // 20


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt: Linux only")
def test_prefault_maps_the_first_frames_memory_in_ahead() -> None:
    """Memory faulted in and freed by prefault's thread serves the main thread's first frame."""
    assert _faults_of_second_frame("prefault") < (200 << 20) // 4096 // 20


def test_prefault_does_nothing_without_kept_memory(monkeypatch) -> None:
    monkeypatch.setattr(malloc, "_done", False)
    assert malloc.prefault(1 << 20) is None


def test_off_linux_nothing_changes(monkeypatch) -> None:
    monkeypatch.setattr(malloc, "_done", None)
    monkeypatch.setattr(sys, "platform", "darwin")
    assert malloc.keep_freed_memory() is False
