"""A file's name as outputs record it (provenance, resume checks).

Python decodes a file name with the locale's encoding: under a non-UTF-8 locale (UTF-8 mode
off) a UTF-8 name is held as lone surrogates (PEP 383) or mojibake, and GDAL cannot store
those in a tag. Recorded as its bytes decoded as UTF-8, a name reads the same under every
locale: an output made under one is recognised as the input's under another.
"""

from __future__ import annotations

import os
from pathlib import Path


def recorded_name(path: str | os.PathLike[str]) -> str:
    """The name of ``path`` (its last part) as its bytes decoded as UTF-8; bytes that are not
    UTF-8 stay PEP 383 escapes, as Python's UTF-8 mode holds them."""
    return os.fsencode(Path(path).name).decode("utf-8", "surrogateescape")


__all__ = ["recorded_name"]
