"""The ``sr-domains`` script's standard streams: what they cannot encode goes out escaped.

A path or a metadata text that the console's encoding cannot hold (an ASCII or cp1252 console,
the C locale with UTF-8 mode off) failed the command with a traceback after its outputs were
written. Only the script's own process changes its streams (:func:`~sr_domains.cli.console`).
"""

from __future__ import annotations

import codecs
from typing import Any

#: Name of the codec error handler the script's streams use.
CONSOLE_ERRORS = "sr_domains.console"


def console_escape(err: UnicodeError) -> tuple[bytes, int]:
    """Codec error handler: a file name's undecodable bytes (lone surrogates, PEP 383) go out
    as the bytes they were; any other character the stream cannot encode as a backslash
    escape (``\\xe9``, ``\\u65e5``)."""
    if not isinstance(err, UnicodeEncodeError):
        raise err
    out = bytearray()
    for ch in err.object[err.start : err.end]:
        code = ord(ch)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(code - 0xDC00)
        else:
            out += ch.encode("ascii", "backslashreplace")
    return bytes(out), err.end


def escape_unencodable(*streams: Any) -> None:
    """Give each text stream that would raise on an unencodable character (``strict``, or
    ``surrogateescape`` for characters that are not escaped bytes) :func:`console_escape`."""
    codecs.register_error(CONSOLE_ERRORS, console_escape)
    for stream in streams:
        errors = getattr(stream, "errors", "strict")
        if errors in ("strict", "surrogateescape") and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=CONSOLE_ERRORS)


__all__ = ["CONSOLE_ERRORS", "console_escape", "escape_unencodable"]
