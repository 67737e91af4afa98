"""One writer per destination (rule 3 of :mod:`sr_domains.io_safety`): the ``flock`` held on
``.NAME.sr-lock`` beside an output while it is written."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from .errors import OutputBusyError
from .output_checks import PathArg
from .output_names import name_key

try:  # POSIX only; elsewhere destinations are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

LOCK_TAG = ".sr-lock"


def lock_path(dst: PathArg) -> Path:
    """``.NAME.sr-lock`` beside ``dst`` (``NAME``: :func:`~sr_domains.output_names.name_key`)."""
    dst = Path(dst)
    return dst.parent / f".{name_key(dst)}{LOCK_TAG}"


@contextlib.contextmanager
def destination_lock(dst: PathArg) -> Iterator[None]:
    """Hold the exclusive lock of ``dst`` (rule 3); :class:`OutputBusyError` if another process
    holds it. The parent folder must exist."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    lock = lock_path(dst)
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as exc:  # name the output, not our lock file
            raise OSError(
                exc.errno, f"cannot write in {lock.parent} ({exc.strerror})", str(dst)
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputBusyError(dst) from None
        # The previous holder may have removed the lock file between our open and flock.
        try:
            current = os.stat(lock).st_ino
        except FileNotFoundError:
            current = None
        if current == os.fstat(fd).st_ino:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            os.unlink(lock)
        os.close(fd)


__all__ = ["LOCK_TAG", "destination_lock", "lock_path"]
