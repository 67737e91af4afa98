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
:func:`~sr_domains.geo.upscale_geotiff`. The same goes for the data bands of a file with an
alpha band (``da.sel(band=[1, 2, 3])`` of an RGBA file) when the alpha is 0 at some of their
pixels (``upscale_geotiff`` masks them), and for such bands read with ``masked=True`` from a
file whose alpha GDAL does not read as the mask (other than 2 or 4 bands). A window of the
file, strided or not, is checked on the pixels it holds. Hidden pixels that hold the nodata
in effect (or NaN) in every band are no data: the nodata carries the mask, and the array is
accepted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import InputFileError

logger = logging.getLogger(__name__)


def _alpha_bands(source: str) -> list[int]:
    """1-based alpha bands of the raster at ``source`` ([] when none, or it cannot be read:
    the array's own checks then decide)."""
    import rasterio
    from rasterio.enums import ColorInterp

    try:
        with rasterio.open(source) as ds:
            return [i + 1 for i, ci in enumerate(ds.colorinterp) if ci == ColorInterp.alpha]
    except OSError as exc:  # (no file, moved, unreadable: nothing to tell)
        logger.debug("alpha band of %s not read: %s", source, exc)
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
    except OSError as exc:  # (moved meanwhile)
        logger.debug("alpha band of %s not checked: %s", source, exc)
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


def _step(v: tuple[float, float], f: tuple[float, float]) -> int | None:
    """How many file pixel steps ``f`` the array's step ``v`` spans (a whole number >= 1), or
    None (resampled, flipped, another grid)."""
    i = 0 if abs(f[0]) >= abs(f[1]) else 1
    k = round(v[i] / f[i])
    close = np.allclose(v, (k * f[0], k * f[1]), rtol=1e-9, atol=1e-9 * abs(f[i]))
    return k if k >= 1 and close else None


def _pixels(
    da: Any, ydim: Any, xdim: Any, ds: Any
) -> tuple[np.ndarray, np.ndarray, int, int] | None:
    """The rows and columns of the raster ``ds`` that ``da``'s pixels are (a window of it,
    strided or not; those inside the file) and the array's row and column of the first of
    them, or None when ``da`` does not map to the file's grid (resampled, coarsened, another
    transform; a GCP-georeferenced array of another size)."""
    from .xarray_grid import array_transform

    h, w = int(da.sizes[ydim]), int(da.sizes[xdim])
    if da.rio.get_gcps() or ds.gcps[0]:
        same = (h, w) == (ds.height, ds.width)
        return (np.arange(h), np.arange(w), 0, 0) if same else None
    t, ft = array_transform(da, ydim, xdim), ds.transform
    kx, ky = _step((t.a, t.d), (ft.a, ft.d)), _step((t.b, t.e), (ft.b, ft.e))
    col, row = ~ft @ (t @ (0.5, 0.5))  # (the first pixel's centre)
    c0, r0 = round(col - 0.5), round(row - 0.5)
    if kx is None or ky is None or abs(col - 0.5 - c0) > 1e-6 or abs(row - 0.5 - r0) > 1e-6:
        return None
    rows, cols = r0 + ky * np.arange(h), c0 + kx * np.arange(w)
    iy, ix = (
        np.flatnonzero((rows >= 0) & (rows < ds.height)),
        np.flatnonzero((cols >= 0) & (cols < ds.width)),
    )
    if not (iy.size and ix.size):
        return None
    return rows[iy], cols[ix], int(iy[0]), int(ix[0])


def _hides(
    hidden: Any,
    cells: tuple[np.ndarray, np.ndarray, int, int],
    carried: Callable[[slice, slice], np.ndarray] | None,
) -> bool:
    """True when ``hidden(window)`` (True where the file hides a pixel) is True at one of the
    pixels ``rows`` x ``cols`` of ``cells`` (evenly spaced; the array's from row ``i0``,
    column ``j0``) where ``carried(array_rows, array_cols)`` is not (the array's values hold
    the nodata there); read in strips, up to the first one."""
    from rasterio.windows import Window

    rows, cols, i0, j0 = cells
    ky = int(rows[1] - rows[0]) if rows.size > 1 else 1
    kx = int(cols[1] - cols[0]) if cols.size > 1 else 1
    width = int(cols[-1] - cols[0]) + 1
    n = max(1, MASK_STRIP // (width * ky))  # array rows per strip
    for i in range(0, rows.size, n):
        part = rows[i : i + n]
        win = Window(int(cols[0]), int(part[0]), width, int(part[-1] - part[0]) + 1)
        hit = hidden(win)[::ky, ::kx]
        if not hit.any():
            continue
        if carried is None:
            return True
        held = carried(slice(i0 + i, i0 + i + part.size), slice(j0, j0 + cols.size))
        if not held[hit].all():
            return True
    return False


def check_mask_read(
    da: Any,
    ydim: Any,
    xdim: Any,
    values: Any = None,
    invalid: Callable[[np.ndarray], np.ndarray] | None = None,
) -> None:
    """Refuse ``da`` when pixels that its source raster hides are data in it (module docs):
    read raw (rioxarray's ``masked=False``: no decoding ``dtype`` in its encoding, the file's
    dtype) from a raster whose internal per-dataset mask or alpha band (value 0) hides some of
    the pixels it holds, or read with ``masked=True`` from one whose alpha GDAL does not read as
    the mask (not 2 or 4 bands). Nothing is checked when ``da`` has no source file or no
    longer maps to its pixel grid (a strided window still does). Hidden pixels where every
    band of ``values`` (``da``'s ``(band, y, x)`` values as upscaled, numpy or dask) is
    ``invalid`` (holds the nodata in effect, or NaN) are no data: the nodata carries the mask.

    Raises:
        InputFileError: naming the source file (and the alpha band).
    """
    carried = None
    if values is not None and invalid is not None:

        def carried(ys: slice, xs: slice) -> np.ndarray:
            held = np.asarray(invalid(np.asarray(values[:, ys, xs])))
            return np.asarray(held.all(axis=0))

    enc = getattr(da, "encoding", {})
    source = enc.get("source")
    if not isinstance(source, str) or not source:
        return
    import rasterio
    from rasterio.enums import MaskFlags

    try:
        with rasterio.open(source) as ds:
            raw = "dtype" not in enc and np.dtype(ds.dtypes[0]) == np.dtype(da.dtype)
            flags = ds.mask_flag_enums
            flagged = [
                i + 1
                for i, f in enumerate(flags)
                if MaskFlags.per_dataset in f and MaskFlags.alpha not in f
            ]
            alpha = _alpha_bands(source)
            first = next((i for i in range(ds.count) if i + 1 not in alpha), 0)  # a data band
            gdal_alpha = bool(alpha) and MaskFlags.alpha in flags[first]
            use_mask = raw and bool(flagged)
            use_alpha = bool(alpha) and (raw or ("dtype" in enc and not gdal_alpha))
            if not (use_mask or use_alpha):
                return
            cells = _pixels(da, ydim, xdim, ds)
            if cells is None:
                return
            if use_mask and _hides(
                lambda w: ds.read_masks(flagged[0], window=w) == 0, cells, carried
            ):
                why = None
            elif use_alpha and _hides(lambda w: ds.read(alpha[0], window=w) == 0, cells, carried):
                why = alpha[0]
            else:
                return
    except OSError as exc:  # (no file, moved, unreadable: nothing to tell; any other error is
        # raised, never taken for an accepted array)
        logger.debug("mask and alpha of %s not checked: %s", source, exc)
        return
    if why is None:
        raise InputFileError(
            source,
            "the DataArray was opened without masked=True; the file's internal mask hides some "
            "of its pixels, which would be read as data (upscaled into their valid neighbours "
            "and written back unmasked): open it with rioxarray.open_rasterio(..., masked=True) "
            "(hidden pixels NaN, and NaN in the output), or give each of them the nodata "
            "value (nodata= or da.rio.write_nodata)",
        )
    opened = "without masked=True" if raw else "with masked=True, which does not apply it here"
    reopen = (
        "open it with rioxarray.open_rasterio(..., masked=True) (transparent pixels NaN, and "
        "NaN in the output) or "
        if gdal_alpha
        else ""
    )
    raise InputFileError(
        source,
        f"band {why} is its alpha band and it hides (alpha 0) some of the DataArray's pixels, "
        f"which the array holds as data (opened {opened}): they would be upscaled into their "
        f"valid neighbours and written back opaque: {reopen}mask the data bands with it, e.g. "
        f"rgb.where(rioxarray.open_rasterio(path).sel(band={why}) > 0)",
    )


__all__ = ["check_mask_read", "check_no_alpha"]
