"""File names as GDAL must receive them.

rasterio hands GDAL a path encoded as UTF-8, and GDAL opens those bytes as they are (POSIX).
Python holds a file name as decoded by the locale: under a non-UTF-8 locale (UTF-8 mode off)
a UTF-8 name is mojibake or lone surrogates (PEP 383), which rasterio cannot encode
(``UnicodeEncodeError``, a traceback that stopped a batch) or encodes to other bytes (file not
found). :func:`gdal_path` gives the text whose UTF-8 bytes are the name's bytes on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import InputFileError


def gdal_path(path: str | os.PathLike[str], *, output: bool = False) -> str:
    """``path`` as the text rasterio must be given so that GDAL reaches the file Python names.

    Raises:
        InputFileError: the name's bytes are not UTF-8 (GDAL cannot be given them), naming the
            file and whether it is the input or the output.
    """
    raw = os.fsencode(path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        what = "output" if output else "input"
        raise InputFileError(
            path,
            f"GDAL cannot be given this {what} file name: its bytes are not UTF-8 "
            f"({os.fsencode(Path(path).name)!r}); rename it",
        ) from None


__all__ = ["gdal_path"]
