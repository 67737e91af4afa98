"""Files as GDAL must be given them: names (:func:`gdal_path`), opening with errors that name
the file (:func:`open_dataset`), and every file a run reads for one input (:func:`raster_inputs`:
a VRT's sources too).

File names as GDAL must receive them:

rasterio hands GDAL a path encoded as UTF-8, and GDAL opens those bytes as they are (POSIX).
Python holds a file name as decoded by the locale: under a non-UTF-8 locale (UTF-8 mode off)
a UTF-8 name is mojibake or lone surrogates (PEP 383), which rasterio cannot encode
(``UnicodeEncodeError``, a traceback that stopped a batch) or encodes to other bytes (file not
found). :func:`gdal_path` gives the text whose UTF-8 bytes are the name's bytes on disk. A name
whose bytes are not UTF-8 (made under another encoding: Latin-1 ``é`` is byte 0xe9) cannot be
given to GDAL at all: such an input, and a GeoTIFF output so named, are refused before any work
(:func:`check_gdal_names`).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ..errors import InputFileError, MissingDependencyError
from ..output_names import check_gdal_name, undecodable
from .gdal_errors import gdal_message

try:
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError
except ImportError as _exc:  # pragma: no cover - exercised without rasterio only
    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc


def gdal_path(path: str | os.PathLike[str], *, output: bool = False) -> str:
    """``path`` as the text rasterio must be given so that GDAL reaches the file Python names.

    Raises:
        InputFileError: the name's bytes are not UTF-8 (GDAL cannot be given them), naming the
            file and whether it is the input or the output.
    """
    raw = undecodable(path)
    if raw:
        what = "output" if output else "input"
        raise InputFileError(
            path,
            f"GDAL cannot be given this {what} file name: {raw!r} in its path is not UTF-8 "
            "(a name in another encoding, such as Latin-1); rename it",
        )
    return os.fsencode(path).decode("utf-8")


def check_gdal_names(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
    """Refuse, before anything is read, a GeoTIFF run whose input (:func:`gdal_path`) or
    output (:func:`~sr_domains.output_names.check_gdal_name`) GDAL cannot be given: the input
    first, as the output often takes its name.

    Raises:
        InputFileError: the input's path is not UTF-8.
        UnsafeOutputError: the output's path is not UTF-8.
    """
    gdal_path(src)
    check_gdal_name(dst)


def open_dataset(path: str | Path, overview_level: int | None = None) -> Any:
    """``rasterio.open`` with errors that name the file (missing, not a raster, corrupt)."""
    p = Path(path)
    InputFileError.check_file(p, "a raster file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            if overview_level is None:
                return rasterio.open(gdal_path(p))
            return rasterio.open(gdal_path(p), overview_level=overview_level)
    except RasterioError as exc:
        raise InputFileError(p, f"not a readable raster ({gdal_message(exc)})") from exc


def raster_inputs(path: str | Path, _seen: frozenset[Path] = frozenset()) -> list[Path]:
    """Every file a run reads for ``path``: the file, and for a GDAL virtual raster (VRT) the
    rasters it references, so that no output ever replaces one of them (an output named like
    a VRT's source replaced that source with ``--overwrite``). Unreadable: the file alone
    (reading it reports the problem); a VRT naming a missing source: :class:`InputFileError`
    naming both."""
    p = Path(path)
    if not is_vrt(p):
        return [p]
    try:
        with open_dataset(p) as ds:
            files = [Path(f) for f in ds.files]
    except (InputFileError, OSError):
        return [p]
    sources = [f for f in files if not str(f).startswith("/vsi") and f != p]
    for f in sources:  # (GDAL's own error would only say the read failed)
        if not os.path.lexists(f):
            raise InputFileError(p, f"reads {f}, which does not exist (a VRT's source raster)")
    out = [p]
    seen = _seen | {p}
    for f in sources:  # a VRT of VRTs: their sources too (once each, no cycles)
        for g in raster_inputs(f, seen) if f not in seen and is_vrt(f) else [f]:
            if g not in out:
                out.append(g)
    return out


def is_vrt(p: Path) -> bool:
    """A GDAL virtual raster, by its name or its first bytes."""
    if p.suffix.lower() == ".vrt":
        return True
    try:
        with open(p, "rb") as fh:
            return fh.read(64).lstrip().startswith(b"<VRTDataset")
    except OSError:
        return False


__all__ = ["check_gdal_names", "gdal_path", "is_vrt", "open_dataset", "raster_inputs"]
