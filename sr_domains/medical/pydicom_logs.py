"""pydicom's log records that are not the user's business: the ERROR records, traceback
included, that each failing pixel-data decoding plugin logs (the error raised when none can
decode says why, plugin by plugin)."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

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


__all__ = ["decoder_failures_at_debug"]
