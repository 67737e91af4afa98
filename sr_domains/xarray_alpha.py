"""The alpha band of the file a DataArray was read from (rioxarray's ``encoding["source"]``).

rioxarray reads an RGBA raster's alpha band as a fourth band of data and says nothing of its
colour interpretation. Super-resolved as data, it would come back with invented opacities
between 0 and 255 and its transparent pixels would feed the network as if they were valid, so
:func:`check_no_alpha` refuses such a selection before any work, naming the file and the band,
and says how to select the data bands and mask them with the alpha band.
"""

from __future__ import annotations

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


__all__ = ["check_no_alpha"]
