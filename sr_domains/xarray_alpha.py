"""The alpha band and the internal mask of the file a DataArray was read from (rioxarray's
``encoding["source"]``).

rioxarray reads an RGBA raster's alpha band as a fourth band of data and says nothing of its
colour interpretation. Super-resolved as data, it would come back with invented opacities
between 0 and 255 and its transparent pixels would feed the network as if they were valid, so
:func:`check_no_alpha` refuses such a selection before any work, naming the file and the band,
and says how to select the data bands and mask them with the alpha band.

Read with rioxarray's default ``masked=False``, the pixels a file's internal (per-dataset) mask
hides are plain values in the array; they would be upscaled as data, leak into their valid
neighbours and come back unmasked, and an array of the same dtype with no nodata has no way to
carry the mask. :func:`check_mask_read` refuses such an array when the mask hides any of its
pixels, naming the file: read with ``masked=True`` (NaN there) it equals
:func:`~sr_domains.geo.upscale_geotiff`.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

import numpy as np

from .errors import InputFileError


def _alpha_bands(source: str) -> list[int]:
    """1-based alpha bands of the raster at ``source`` ([] when none, or it cannot be read:
    the array's own checks then decide)."""
    try:
        import rasterio
        from rasterio.enums import ColorInterp

        with rasterio.open(source) as ds:
            return [i + 1 for i, ci in enumerate(ds.colorinterp) if ci == ColorInterp.alpha]
    except Exception:  # (no file, moved, another format: nothing to tell)
        return []


def _file_bands(da: Any, band: Any, n: int, count: int) -> list[int] | None:
    """The 1-based file bands ``da``'s ``n`` bands are: the ``band`` coordinate when it holds
    them (rioxarray's; for a 2-D array, its scalar ``band`` coordinate, as ``da.sel(band=4)``
    leaves), all of the file's when the counts agree, else None (not known)."""
    coord = band if band is not None else "band"
    if coord in da.coords:
        idx = np.asarray(da[coord].values).ravel()
        if idx.dtype.kind in "iu" and idx.size == n and idx.min() >= 1 and idx.max() <= count:
            return [int(i) for i in idx]
    return list(range(1, count + 1)) if n == count else None


def check_no_alpha(da: Any, band: Any, n: int) -> None:
    """Refuse ``da`` (``n`` bands along dim ``band``, None for 2-D) when it holds the alpha
    band of the raster it was read from (module docs).

    Raises:
        InputFileError: naming the source file and the alpha band.
    """
    source = getattr(da, "encoding", {}).get("source")
    if not isinstance(source, str) or not source:
        return
    alpha = _alpha_bands(source)
    if not alpha:
        return
    import rasterio

    try:
        with rasterio.open(source) as ds:
            count = ds.count
    except Exception:
        return
    bands = _file_bands(da, band, n, count)
    hit = sorted(set(bands or []) & set(alpha))
    if not hit:
        return
    data = [b for b in (bands or []) if b not in alpha]
    a, dim = hit[0], band if band is not None else "band"
    raise InputFileError(
        source,
        f"band {a} is its alpha band (opacity, not data), which the DataArray holds as data: "
        f"select the data bands and mask them with it, e.g. "
        f"da.sel({dim}={data}).where(da.sel({dim}={a}) > 0) (transparent pixels become NaN, "
        "and NaN again in the output)",
    )


#: Mask values read at once while looking for a hidden pixel.
MASK_STRIP = 2**24


def _window(da: Any, ydim: Any, xdim: Any, ds: Any) -> Any:
    """The window of the raster ``ds`` whose pixels ``da`` holds (rows and columns of the file,
    clipped to it), or None when ``da`` does not map to the file's grid (resampled, strided,
    another transform; a GCP-georeferenced array of another size)."""
    from rasterio.windows import Window

    h, w = int(da.sizes[ydim]), int(da.sizes[xdim])
    if da.rio.get_gcps() or ds.gcps[0]:
        return Window(0, 0, w, h) if (h, w) == (ds.height, ds.width) else None
    t = None
    if h > 1 and w > 1:  # from the coordinates: a strided selection keeps the GeoTransform
        with suppress(Exception):
            t = da.rio.transform(recalc=True)
    t = da.rio.transform() if t is None else t
    ft = ds.transform
    if not np.allclose([t.a, t.b, t.d, t.e], [ft.a, ft.b, ft.d, ft.e], rtol=1e-9, atol=0):
        return None
    col, row = ~ft @ (t.c, t.f)
    c0, r0 = round(col), round(row)
    if abs(col - c0) > 1e-6 or abs(row - r0) > 1e-6:
        return None
    top, left = max(r0, 0), max(c0, 0)
    bottom, right = min(r0 + h, ds.height), min(c0 + w, ds.width)
    return Window(left, top, right - left, bottom - top) if bottom > top and right > left else None


def check_mask_read(da: Any, ydim: Any, xdim: Any) -> None:
    """Refuse ``da`` when it holds the raw values (rioxarray's ``masked=False``: no decoding
    ``dtype`` in its encoding, the file's dtype) of a raster whose internal per-dataset mask
    hides some of its pixels (module docs). Nothing is checked when ``da`` has no source file
    or no longer maps to a window of it; the mask is read in strips, up to its first hidden
    pixel.

    Raises:
        InputFileError: naming the source file.
    """
    enc = getattr(da, "encoding", {})
    source = enc.get("source")
    if not isinstance(source, str) or not source or "dtype" in enc:
        return
    try:
        import rasterio
        from rasterio.enums import MaskFlags
        from rasterio.windows import Window

        with rasterio.open(source) as ds:
            flagged = [
                i + 1
                for i, f in enumerate(ds.mask_flag_enums)
                if MaskFlags.per_dataset in f and MaskFlags.alpha not in f
            ]
            if not flagged or np.dtype(ds.dtypes[flagged[0] - 1]) != np.dtype(da.dtype):
                return
            win = _window(da, ydim, xdim, ds)
            if win is None:
                return
            step = max(1, MASK_STRIP // max(1, int(win.width)))
            for r in range(int(win.row_off), int(win.row_off + win.height), step):
                rows = min(step, int(win.row_off + win.height) - r)
                part = Window(win.col_off, r, win.width, rows)
                if not ds.read_masks(flagged[0], window=part).all():
                    break
            else:
                return
    except Exception:  # (no file, moved, another format: nothing to tell)
        return
    raise InputFileError(
        source,
        "the DataArray was opened without masked=True; the file's internal mask hides some of "
        "its pixels, which would be read as data (upscaled into their valid neighbours and "
        "written back unmasked): open it with rioxarray.open_rasterio(..., masked=True) "
        "(hidden pixels NaN, and NaN in the output)",
    )


__all__ = ["check_mask_read", "check_no_alpha"]
