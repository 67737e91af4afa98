"""GDAL's own reason for a failed read or write, for error messages that name the file."""

from __future__ import annotations

try:
    from rasterio.errors import RasterioError
except ImportError as _exc:  # pragma: no cover - exercised without rasterio only
    from ..errors import MissingDependencyError

    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc

try:  # GDAL errors rasterio raises as they are (a creation option GDAL refuses while copying)
    from rasterio._err import CPLE_BaseError
except ImportError:  # pragma: no cover (another rasterio layout)
    CPLE_BaseError = RasterioError  # type: ignore[assignment,misc,unused-ignore]

#: What a GDAL read, write or copy raises through rasterio.
GDAL_ERRORS: tuple[type[Exception], ...] = (RasterioError, CPLE_BaseError)


def gdal_message(exc: BaseException) -> str:
    """GDAL's reason for ``exc``: rasterio raises "Read failed. See previous exception" with
    the real reasons chained under it (the failing block, then the codec's error)."""
    chain: list[str] = []
    e: BaseException | None = exc
    for _ in range(16):  # (a chain is short; this also ends a cycle)
        if e is None:
            break
        text = " ".join(str(e).split())
        if text and "see previous exception" not in text.lower() and text not in chain:
            chain.append(text)
        e = e.__cause__ or e.__context__
    if not chain:
        return type(exc).__name__
    msg = chain[0] if len(chain) == 1 else f"{chain[0]} ({chain[-1]})"
    return msg[:300]
