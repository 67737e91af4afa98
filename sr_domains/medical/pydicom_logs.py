"""pydicom's log records that are not the user's business: the ERROR records, traceback
included, that each failing pixel-data decoding plugin logs (the error raised when none can
decode says why, plugin by plugin), and the same warning repeated for every element of every
file (a misspelt ``SpecificCharacterSet`` logged "Unknown encoding" 54 times per slice)."""

from __future__ import annotations

import contextlib
import functools
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ParamSpec, TypeVar

_P = ParamSpec("_P")
_R = TypeVar("_R")

log = logging.getLogger(__name__)


#: pydicom's logger of the pixel-data decoders: each plugin that fails logs its exception there
#: at ERROR, traceback included (``LOGGER.exception``), before the next plugin is tried.
_DECODER_LOGGER = "pydicom.pixels.decoders.base"


@contextlib.contextmanager
def decoder_failures_at_debug(path: Path) -> Iterator[None]:
    """While the block runs, pydicom's decoder failures in this thread (ERROR records with a
    traceback, one per plugin tried) go to this module's log at DEBUG instead: a plugin that
    cannot decode is not an error when another one can, and when none can, the exception
    raised (and :class:`~sr_domains.errors.InputFileError`, naming the file) says why, plugin by
    plugin. pydicom's warnings pass through."""
    logger = logging.getLogger(_DECODER_LOGGER)
    me = threading.get_ident()
    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        if record.thread != me or record.levelno < logging.ERROR:
            return True
        held.append(record)
        return False

    logger.addFilter(hold)
    try:
        yield
    finally:
        logger.removeFilter(hold)
        for record in held:
            log.debug(
                "%s: a pydicom decoding plugin failed: %s",
                path,
                record.getMessage(),
                exc_info=record.exc_info,
            )


@contextlib.contextmanager
def pydicom_warnings_once() -> Iterator[None]:
    """While the block runs, each distinct warning pydicom logs in this thread passes once;
    its repeats are counted and summed up at INFO when the block ends."""
    logger = logging.getLogger("pydicom")
    me = threading.get_ident()
    seen: Counter[str] = Counter()

    def once(record: logging.LogRecord) -> bool:
        if record.thread != me or record.levelno < logging.WARNING:
            return True
        text = record.getMessage()
        seen[text] += 1
        return seen[text] == 1

    logger.addFilter(once)
    try:
        yield
    finally:
        logger.removeFilter(once)
        for text, n in seen.items():
            if n > 1:
                log.info("pydicom repeated this warning %d more times: %s", n - 1, text)


def warnings_once(func: Callable[_P, _R]) -> Callable[_P, _R]:
    """``func`` run under :func:`pydicom_warnings_once`."""

    @functools.wraps(func)
    def wrapper(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        with pydicom_warnings_once():
            return func(*args, **kwargs)

    return wrapper


__all__ = ["decoder_failures_at_debug", "pydicom_warnings_once", "warnings_once"]
