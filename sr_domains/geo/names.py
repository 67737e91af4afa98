"""Which files the GeoTIFF domain takes and how its outputs are named (no rasterio, no other
module of this package: the adapter, the writer and the resume checks all ask it)."""

from __future__ import annotations

from pathlib import Path

from ..options import output_name

SUFFIXES = (".tif", ".tiff")
#: Other rasters GDAL reads that an input may be, alone or in a folder batch: JPEG 2000
#: (Sentinel-2 bands) and GDAL virtual rasters (band stacks, mosaics). The output is a GeoTIFF
#: all the same, named ``.tif``.
RASTER_SUFFIXES = (".jp2", ".j2k", ".vrt")
#: What a folder batch of the GeoTIFF domain takes.
BATCH_SUFFIXES = SUFFIXES + RASTER_SUFFIXES
#: The first bytes of a classic or BigTIFF file, either byte order.
TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
JP2_MAGIC = (b"\x00\x00\x00\x0cjP  \r\n\x87\n", b"\xff\x4f\xff\x51")  # JP2 box, codestream


def starts_like_tiff(path: Path) -> bool:
    """A file that starts like a TIFF (a user's own file of another kind never does)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(4) in TIFF_MAGIC
    except OSError:
        return False


def geotiff_output_name(src: Path, suffix: str) -> str:
    """The output name of ``src`` in an output folder: its own name (``suffix`` before the
    extension) for a TIFF, ``NAME + suffix + .tif`` for another raster (``B04.jp2`` ->
    ``B04.tif``): the output is a GeoTIFF and the next tool trusts the name."""
    src = Path(src)
    if src.suffix.lower() in SUFFIXES or starts_like_tiff(src):
        return output_name(src.name, suffix)
    return output_name(src.stem + ".tif", suffix)


__all__ = [
    "BATCH_SUFFIXES",
    "JP2_MAGIC",
    "RASTER_SUFFIXES",
    "SUFFIXES",
    "TIFF_MAGIC",
    "geotiff_output_name",
    "starts_like_tiff",
]
