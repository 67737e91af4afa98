"""Helpers of :mod:`sr_domains.xarray`: the stored integer grid of a decoded DataArray (one
``scale``/``offset`` per band, as rioxarray keeps a file's per-band ``scales``/``offsets``),
the nodata value checked against the type that holds it, the transform the array's
coordinates give (a strided selection's), the GCPs and coordinates of the upscaled array,
and the noise gate's sample (as :func:`~sr_domains.geo.upscale_geotiff` takes it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ConfigError
from .intensity import IntensityProfile, work_dtype


def _per_band(da: Any, band: Any, n: int, many: Any, one: Any, name: str) -> np.ndarray:
    """``n`` per-band values from the encoding: the tuple ``many`` (rioxarray's ``scales`` /
    ``offsets``, one per file band, picked by the ``band`` coordinate when the array holds a
    selection of them) or the scalar ``one``."""
    if many is None:
        return np.full(n, float(one), np.float64)
    vals = np.asarray(many, np.float64).ravel()
    if vals.size == n:
        return vals
    idx = None if band is None or band not in da.coords else np.asarray(da[band].values)
    if idx is not None and idx.dtype.kind in "iu" and idx.min() >= 1 and idx.max() <= vals.size:
        return vals[idx.astype(int) - 1]
    raise ConfigError(
        f"the DataArray's encoding has {vals.size} per-band {name} for {n} bands and no band "
        f"coordinate of 1-based file band indexes to match them"
    )


def _shown(v: np.ndarray) -> str:
    """One value when every band has it, else the list."""
    return str(float(v[0])) if (v == v[0]).all() else str(v.tolist())


@dataclass(frozen=True)
class StoredGrid:
    """The integer grid a decoded DataArray was read from (rioxarray ``masked=True`` or
    ``mask_and_scale=True``: floats with NaN, ``value = stored * scale + offset`` per band), so
    that the output stays on it and writes back as the input does.

    Attributes:
        dtype: the stored integer dtype.
        scale, offset: per band ``(n,)``, the ``scale_factor``/``add_offset`` (or rioxarray's
            per-band ``scales``/``offsets``) the values were decoded with.
        fill: the stored nodata value (``encoded_nodata``), or None.
    """

    dtype: np.dtype
    scale: np.ndarray
    offset: np.ndarray
    fill: float | None

    @classmethod
    def of(
        cls, da: Any, nodata: float | None = None, band: Any = None, n: int = 1
    ) -> StoredGrid | None:
        """The grid of ``da`` (``n`` bands along dim ``band``), or None when its values are
        what is stored. ``nodata``: a nodata override in decoded units (replaces the encoded
        one; it must lie on the grid, the same stored value in every band)."""
        enc = da.encoding
        stored = enc.get("dtype") or enc.get("rasterio_dtype")
        if stored is None or np.dtype(stored).kind not in "iu" or np.dtype(da.dtype).kind != "f":
            return None
        scale = _per_band(da, band, n, enc.get("scales"), enc.get("scale_factor", 1.0), "scales")
        offset = _per_band(da, band, n, enc.get("offsets"), enc.get("add_offset", 0.0), "offsets")
        if not (np.isfinite(scale).all() and (scale != 0).all() and np.isfinite(offset).all()):
            per = enc.get("scales") is not None or enc.get("offsets") is not None
            raise ConfigError(
                f"the DataArray's encoding has {'scales' if per else 'scale_factor'} "
                f"{_shown(scale)}, {'offsets' if per else 'add_offset'} {_shown(offset)}: "
                "each must be finite and the scales non-zero"
            )
        fill = da.rio.encoded_nodata
        if nodata is not None:
            fills = (float(nodata) - offset) / scale
            if (fills != np.round(fills)).any() or (fills != fills[0]).any():
                raise ConfigError(
                    f"nodata {nodata} is not on the stored grid (scales {scale.tolist()}, "
                    f"offsets {offset.tolist()}): give it in decoded units of a stored value "
                    "shared by every band"
                )
            fill = float(fills[0])
        if fill is not None:
            _check_fill(float(fill), np.dtype(stored), nodata, float(scale[0]), float(offset[0]))
        return cls(np.dtype(stored), scale, offset, None if fill is None else float(fill))

    @property
    def per_band(self) -> bool:
        """True when the bands differ in scale or offset."""
        return bool((self.scale != self.scale[0]).any() or (self.offset != self.offset[0]).any())

    def encode(self, x: Any) -> Any:
        """Decoded ``(n, h, w)`` values (numpy or dask) back to stored units: floats on the
        integer grid (the decoding's float32 round-off undone), NaN kept."""
        if not self.per_band and self.scale[0] == 1.0 and self.offset[0] == 0.0:
            return x
        return np.round((x - self.offset[:, None, None]) / self.scale[:, None, None]).astype(
            np.float32 if self.dtype.itemsize <= 2 else np.float64  # (exact integers)
        )

    def apply(self, res: np.ndarray, up: np.ndarray) -> None:
        """In place: valid values of ``res`` (stored units) rounded to integers within the stored
        dtype's range and off the stored nodata value (the GeoTIFF writer's rules), then
        decoded band by band."""
        from .geo.writer import cast_inplace
        from .value_ops import nudge_from_nodata

        stored = cast_inplace(np.where(up, res, 0).astype(work_dtype(self.dtype)), self.dtype)
        if self.fill is not None:
            nudge_from_nodata(stored, up, self.fill)
        k = slice(None) if self.per_band else slice(0, 1)  # one value for every output band
        dec = stored.astype(np.float64) * self.scale[k, None, None] + self.offset[k, None, None]
        res[up] = dec[up].astype(res.dtype)

    def encoding(self, enc: dict[str, Any], dims: tuple[Any, ...], band: Any) -> dict[str, Any]:
        """The output's encoding from the input's ``enc``: stored dtype and scalar
        ``scale_factor``/``add_offset`` as they were, or, per band, rioxarray's ``scales``/
        ``offsets`` (the file's band metadata) plus arrays along the band axis of ``dims``
        that xarray's CF encoder (which ``rio.to_raster`` uses) applies band by band."""
        keep = ("dtype", "rasterio_dtype", "scale_factor", "add_offset")
        out = {k: v for k, v in enc.items() if k in keep}
        if "scales" in enc or "offsets" in enc:
            out.update(scale_factor=float(self.scale[0]), add_offset=float(self.offset[0]))
        if self.per_band:
            shape = tuple(self.scale.size if d == band else 1 for d in dims)
            out.update(
                scales=tuple(float(v) for v in self.scale),
                offsets=tuple(float(v) for v in self.offset),
                scale_factor=self.scale.reshape(shape),
                add_offset=self.offset.reshape(shape),
            )
        return out


def typed_value(v: float, dtype: np.dtype) -> Any:
    """``v`` as a ``dtype`` scalar: an integer one clipped, not wrapped (a float64 of
    ``2**63 - 1`` is ``2**63``: int64 ``2**63 - 1``, not ``-2**63``)."""
    from .value_ops import safe_cast

    if dtype.kind in "iu":
        return safe_cast(np.array([v], np.float64), dtype)[0]
    return np.array(v).astype(dtype)[()]


def own_nodata(da: Any) -> Any:
    """``da.rio.nodata``; one that rioxarray cannot cast to ``da``'s dtype (a ``_FillValue`` of
    70000 on int16) is refused as a ``ConfigError``, not its ``OverflowError``."""
    try:
        return da.rio.nodata
    except (OverflowError, ValueError) as exc:
        raise ConfigError(
            f"DataArray ({da.dtype}): its own nodata cannot be read ({exc}): write one it holds "
            "(da.rio.write_nodata(...))"
        ) from None


def checked_nodata(given: Any, dtype: np.dtype, override: bool) -> float | None:
    """``given`` (the ``nodata=`` override, else the array's own) as a float, refused when the
    values' ``dtype`` cannot hold it (it would be written as another value; checked exactly,
    before the float: int64 ``2**63 - 1`` holds), as ``upscale_geotiff`` refuses a file's."""
    from .value_ops import nodata_problem

    if given is None:
        return None
    try:
        value = float(given)
    except (TypeError, ValueError):
        raise ConfigError(f"nodata must be a number, got {given!r}") from None
    exact = int(given) if isinstance(given, int | np.integer) else value
    problem = nodata_problem(exact, dtype)
    if problem:
        its = "" if override else "its own "
        raise ConfigError(f"DataArray: {its}{problem}: pass a nodata= that {dtype} holds")
    return value


def _check_fill(
    fill: float, stored: np.dtype, nodata: float | None, scale: float, offset: float
) -> None:
    """Refuse a stored nodata ``fill`` that the ``stored`` dtype cannot hold (the output
    would be written with another value, or not at all), naming the ``nodata`` override it
    came from and the decoded range of the stored type."""
    from .value_ops import nodata_problem

    problem = nodata_problem(fill, stored)
    if problem is None:
        return
    if nodata is None:
        raise ConfigError(f"DataArray: its encoded {problem}: pass a nodata= it holds")
    if scale == 1.0 and offset == 0.0:
        raise ConfigError(f"DataArray (stored as {stored}): {problem}: pass a nodata= it holds")
    info = np.iinfo(stored)
    lo, hi = sorted((info.min * scale + offset, info.max * scale + offset))
    raise ConfigError(
        f"DataArray (stored as {stored}, scale {scale:g}, offset {offset:g}): nodata {nodata:g} "
        f"is stored as {fill:g}, which is not a {stored} value ({info.min}..{info.max}): give "
        f"nodata= in decoded units, a stored value times the scale plus the offset "
        f"({lo:g}..{hi:g})"
    )


def check_grid_known(da: Any, ydim: Any, xdim: Any) -> None:
    """Refuse an array whose pixel size rioxarray cannot tell: one pixel along ``y`` or ``x``,
    with coordinates but no stored transform (``GeoTransform``). rioxarray's transform is then
    the identity, and the output was silently placed at (0, 0) with 1-unit pixels while it
    kept the CRS."""
    from rioxarray.exceptions import OneDimensionalRaster, RioXarrayError

    from .errors import GeometryError

    if (ydim not in da.coords and xdim not in da.coords) or da.rio.get_gcps():
        return
    advice = (
        "give it a transform first (da.rio.write_transform(...)), as rioxarray.open_rasterio does"
    )
    try:
        da.rio.resolution()
    except OneDimensionalRaster:
        one = ydim if da.sizes[ydim] == 1 else xdim
        raise GeometryError(
            f"DataArray: its {one} axis has one pixel, so its pixel size cannot be read from "
            f"the coordinates; {advice}"
        ) from None
    except RioXarrayError as exc:  # (coordinates along one axis only, ...)
        raise GeometryError(f"DataArray: its grid cannot be read ({exc}); {advice}") from None


#: Largest distance, in pixels, of a coordinate from the centre the stored transform gives it
#: for that transform to be kept (below: float round-off; a strided selection is >= 1 pixel),
#: or the coordinates' own precision where that is coarser (float32 coordinates at 7e5 m
#: are 0.06 m apart: a 2.5e-4 degree grid's float32 longitudes step unevenly by 3%).
GRID_TOLERANCE = 0.01


def _precision(*coords: Any) -> float:
    """Twice the spacing of the float values of ``coords`` (their dtype's) at their largest
    magnitude: how far from its pixel centre a stored coordinate may lie (0 for others)."""
    ulps = [
        2 * float(np.finfo(c.dtype).eps) * float(np.abs(np.asarray(c, np.float64)).max())
        for c in coords
        if c.dtype.kind == "f" and c.size
    ]
    return max(ulps, default=0.0)


def _spacing(v: np.ndarray, dim: Any, slack: float = 0.0) -> float | None:
    """The even step of the pixel-centre coordinates ``v`` (None for one pixel), each within
    ``slack`` (their precision) of it; uneven or repeated ones (fancy indexing,
    ``isel(x=[0, 3, 4])``) are refused."""
    from .errors import GeometryError

    if v.size < 2:
        return None
    step = float(v[-1] - v[0]) / (v.size - 1)
    gaps = np.diff(v)
    if step == 0 or (np.abs(gaps - step) > max(GRID_TOLERANCE * abs(step), slack)).any():
        raise GeometryError(
            f"DataArray: its {dim} coordinates are not evenly spaced (steps {gaps.min():g} to "
            f"{gaps.max():g}), so they are no pixel grid: select a regular slice "
            f"(da.isel({dim}=slice(start, stop, step))) or resample first"
        )
    return step


def array_transform(da: Any, ydim: Any, xdim: Any) -> Any:
    """The transform of ``da``'s pixels: rioxarray's (``da.rio.transform()``) when the
    coordinates lie on it, else the one the coordinates give. After a strided selection or a
    ``coarsen`` rioxarray keeps the stored ``GeoTransform`` (the old pixel size: a stride of 2
    came out with half its extent), and after any ``isel`` of a rotated array its old origin
    too; rioxarray cannot recalculate a rotated one, so it is read from the 2-D ``xc``/``yc``.
    Coordinates that are not evenly spaced are refused (``GeometryError``)."""
    from affine import Affine

    t = da.rio.transform()
    rotated = t.b != 0 or t.d != 0
    names = ("yc", "xc") if rotated else (ydim, xdim)
    if not all(n in da.coords and set(da[n].dims) <= {ydim, xdim} for n in names):
        return t
    cy, cx = (np.asarray(da[n].transpose(*(d for d in (ydim, xdim) if d in da[n].dims)).values,
                         np.float64) for n in names)  # fmt: skip
    slack = _precision(*(da[n].variable for n in names))
    if rotated and (cy.ndim != 2 or cx.ndim != 2):
        return t
    h, w = int(da.sizes[ydim]), int(da.sizes[xdim])
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    if not rotated:
        cols, rows = cols[0], rows[:, 0]
    tol = max(GRID_TOLERANCE * min(abs(t.a) + abs(t.d), abs(t.b) + abs(t.e)), slack)
    if not _off(t, cx, cy, cols, rows, tol):
        return t  # (as before: bit for bit what rioxarray gives)
    if not rotated:
        a, e = _spacing(cx, xdim, slack), _spacing(cy, ydim, slack)
        a, e = t.a if a is None else a, t.e if e is None else e
        return Affine(a, 0.0, cx[0] - a / 2, 0.0, e, cy[0] - e / 2)
    # rotated: a window of the stored grid (an integer offset, as rasterio's window transform
    # gives it: exact), else the steps along the first row and column (a strided one)
    col, row = ~t @ (cx[0, 0], cy[0, 0])
    x0, y0 = t @ (round(col - 0.5), round(row - 0.5))
    got = Affine.translation(x0 - t.c, y0 - t.f) @ t
    if not _off(got, cx, cy, cols, rows, tol):
        return got
    a, d = (
        (t.a, t.d)
        if w < 2
        else ((cx[0, -1] - cx[0, 0]) / (w - 1), (cy[0, -1] - cy[0, 0]) / (w - 1))
    )
    b, e = (
        (t.b, t.e)
        if h < 2
        else ((cx[-1, 0] - cx[0, 0]) / (h - 1), (cy[-1, 0] - cy[0, 0]) / (h - 1))
    )
    got = Affine(a, b, cx[0, 0] - (a + b) / 2, d, e, cy[0, 0] - (d + e) / 2)
    if got.determinant == 0 or _off(got, cx, cy, cols, rows, tol):
        from .errors import GeometryError

        raise GeometryError(
            "DataArray: its xc/yc coordinates are not evenly spaced, so they are no pixel "
            "grid: select a regular slice (da.isel(x=slice(start, stop, step))) or resample first"
        )
    return got


def _off(t: Any, cx: np.ndarray, cy: np.ndarray, cols: Any, rows: Any, tol: float) -> bool:
    """True when a pixel-centre coordinate ``cx``/``cy`` lies more than ``tol`` from where
    the transform ``t`` puts it."""
    if cx.ndim == 1:  # (1-D x/y of a rectilinear grid)
        gx, gy = t.a * cols + t.c, t.e * rows + t.f
    else:
        gx, gy = t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f
    return bool(max(np.abs(cx - gx).max(initial=0), np.abs(cy - gy).max(initial=0)) > tol)


def kept_coords(da: Any, drop: set[Any]) -> dict[Any, Any]:
    """The coordinates of ``da`` that depend on none of the dims ``drop`` (the grid mapping is
    left out: it is written anew)."""
    gone = drop | {da.rio.grid_mapping}
    return {k: v.variable for k, v in da.coords.items() if k not in gone and not gone & set(v.dims)}


def grid_coords(t: Any, h: int, w: int, ydim: Any, xdim: Any) -> dict[Any, Any]:
    """Pixel-centre coordinates of an ``h x w`` grid with transform ``t``, as rioxarray reads
    them: 1-D ``y``/``x``, or 2-D ``yc``/``xc`` (dims ``(y, x)``) for a rotated transform."""
    if t.b == 0 and t.d == 0:
        return {ydim: t.f + (np.arange(h) + 0.5) * t.e, xdim: t.c + (np.arange(w) + 0.5) * t.a}
    cols, rows = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    xs, ys = t.a * cols + t.b * rows + t.c, t.d * cols + t.e * rows + t.f
    return {"yc": ((ydim, xdim), ys), "xc": ((ydim, xdim), xs)}


def scaled_gcps(da: Any, s: int) -> list[Any] | None:
    """The GCPs of ``da`` (rioxarray's ``da.rio.get_gcps()``) with pixel and line times
    ``s`` (:func:`~sr_domains.geo.georef.scale_gcps`), or None when it has none."""
    from .geo.georef import scale_gcps

    gcps = da.rio.get_gcps()
    return list(scale_gcps(tuple(gcps), s)) if gcps else None


def noise_sample(x: Any, fitted: IntensityProfile, valid: Any) -> np.ndarray:
    """The central window (:func:`~sr_domains.noise_gate.central_box`) of ``(n, h, w)``
    stored values ``x`` (numpy or dask), normalized, invalid pixels NaN: what
    :func:`~sr_domains.geo.upscale_geotiff` feeds the noise gate."""
    from .noise_gate import central_box, gate_sample

    top, left, th, tw = central_box(*x.shape[1:])
    values = np.asarray(x[:, top : top + th, left : left + tw])
    return gate_sample(values, valid(values), fitted)


__all__ = [
    "StoredGrid",
    "array_transform",
    "checked_nodata",
    "grid_coords",
    "kept_coords",
    "noise_sample",
    "own_nodata",
    "scaled_gcps",
    "typed_value",
]
