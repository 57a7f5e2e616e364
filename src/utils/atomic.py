"""Writing an output file atomically: a temporary file in the destination folder, renamed when complete.

An interrupted or failed write (Ctrl-C, a decoding error half-way through a video, a full disk) leaves no
half-written output behind, and an existing file is only replaced once the new one is whole.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from src.utils.errors import DataError

__all__ = ["atomic_output", "atomic_write_text", "ensure_writable_dir"]


def ensure_writable_dir(folder: Path) -> None:
    """Create ``folder`` (and parents) if missing; a clear :class:`DataError` if that is impossible."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise DataError(f"cannot create output folder '{folder}': {_reason(e)}") from e
    if not folder.is_dir():
        raise DataError(f"output folder '{folder}' is not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DataError(f"cannot write to output folder '{folder}': permission denied")


@contextmanager
def atomic_output(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` (same extension, so writers pick the right format);
    on success it is renamed onto ``path``, on any exception (KeyboardInterrupt included) it is deleted."""
    ensure_writable_dir(path.parent)
    try:
        fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=f".tmp{path.suffix}")
    except OSError as e:
        raise DataError(f"cannot write '{path}': {_reason(e)}") from e
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp creates 0600; give the result the permissions a plain open() would have
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except OSError as e:
        _unlink(tmp)
        if e.errno in (errno.EACCES, errno.EPERM, errno.ENOSPC, errno.EROFS):
            raise DataError(f"cannot write '{path}': {_reason(e)}") from e
        raise
    except BaseException:
        _unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through :func:`atomic_output`; returns the path."""
    path = Path(path)
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _unlink(p: Path) -> None:
    try:
        p.unlink()
    except OSError:
        pass


def _reason(e: OSError) -> str:
    return e.strerror.lower() if e.strerror else str(e)
