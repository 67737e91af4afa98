"""Process-wide settings that a block of code overrides for its duration, on any thread.

Some settings are one per process, not one per thread, such as GDAL's block cache (not
torch's CPU thread count: with OpenMP each thread has its own as well). A block that saves the
value on entry and restores it on exit leaks when blocks end in another order than they
started (two threads' jobs, two interleaved generators): the first to start saves the original
value and the second saves the first's; the first ends and restores the original while the
second still runs; the second ends and restores the first's value, for good.
:class:`SharedSetting` keeps the running blocks in one list: the block that ends last restores
the value found before the first, one that ends before a later one hands its saved value to
that one, and a nested block still restores what was in effect when it started.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedSetting(Generic[T]):
    """One process-wide setting read with ``get`` and written with ``put`` (module docs)."""

    def __init__(self, get: Callable[[], T], put: Callable[[T], None]) -> None:
        self._get, self._put = get, put
        self._lock = threading.Lock()
        self._running: list[list[T]] = []  # [value before the block, the block's value]

    def get(self) -> T:
        """The value in effect."""
        return self._get()

    @contextmanager
    def override(self, value: T | Callable[[T], T]) -> Iterator[None]:
        """Run a block with the setting at ``value`` (or ``value(current)``, decided under the
        lock) and put back what the module docs say after it."""
        with self._lock:
            before = self._get()
            new = value(before) if callable(value) else value
            entry = [before, new]
            self._running.append(entry)
            if new != before:
                self._put(new)
        try:
            yield
        finally:
            with self._lock:
                i = next(k for k, e in enumerate(self._running) if e is entry)
                del self._running[i]
                if i < len(self._running):  # a later block runs on: it restores this one's
                    self._running[i][0] = entry[0]
                elif self._get() != entry[0]:
                    self._put(entry[0])


__all__ = ["SharedSetting"]
