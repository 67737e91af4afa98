"""Array kernels of the value rules (:mod:`sr_domains.value_domain`): local input ranges and
clipping of ``s x s`` output blocks to the bounds of their input pixel."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import DTypeLike


def _block_extreme(blocks: np.ndarray, fn: np.ufunc) -> np.ndarray:
    """``fn``-reduce each ``s x s`` block of a ``(C, n, s, W, s)`` view to ``(C, n, W)``."""
    s = blocks.shape[2]
    cols = blocks[..., 0].copy()
    for j in range(1, s):
        fn(cols, blocks[..., j], out=cols)
    out = cols[:, :, 0].copy()
    for i in range(1, s):
        fn(out, cols[:, :, i], out=out)
    return out


def clip_blocks(blocks: np.ndarray, lo: np.ndarray, hi: np.ndarray, ok: np.ndarray) -> int:
    """Clip each block of ``blocks`` ``(C, n, s, W, s)`` to its input pixel's ``[lo, hi]``
    ``(C, n, W)`` in place; return how many valid (``ok``) values changed.

    Only blocks whose extremes leave the bounds are touched (few, after a good network), so
    this costs about three passes over the output instead of five.
    """

    def offenders(rows: slice) -> np.ndarray:
        part = blocks[:, rows]
        low = _block_extreme(part, np.minimum) < lo[:, rows]
        return low | (_block_extreme(part, np.maximum) > hi[:, rows])

    sample = offenders(slice(None, None, 16))  # every 16th row tells the density
    if np.count_nonzero(sample) > 0.05 * sample.size:  # many offenders: plain full passes
        lo5, hi5 = lo[:, :, None, :, None], hi[:, :, None, :, None]
        all_ok = bool(ok.all())
        changed = 0
        for b in range(blocks.shape[0]):  # band by band: temporaries stay small
            band, o = blocks[b], ok[b]
            below, above = band < lo5[b], band > hi5[b]
            if not all_ok:
                below &= o
                above &= o
            changed += int(np.count_nonzero(below)) + int(np.count_nonzero(above))
            np.clip(band, lo5[b], hi5[b], out=band)
        return changed
    k, r, q = np.nonzero(offenders(slice(None)))
    if not k.size:
        return 0
    sub = blocks[k, r, :, q, :]  # (m, s, s) copies of the offending blocks
    lo_m, hi_m = lo[k, r, q][:, None, None], hi[k, r, q][:, None, None]
    hit = (sub < lo_m) | (sub > hi_m)
    hit &= ok[k, r, 0, q, 0][:, None, None]
    blocks[k, r, :, q, :] = np.clip(sub, lo_m, hi_m)
    return int(np.count_nonzero(hit))


def local_range(x: np.ndarray, ok: np.ndarray, r: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum of the valid pixels of ``x`` ``(C, h, w)`` in each (2r+1)^2
    neighbourhood (separable, band by band: the padded copies are one band's; an empty
    neighbourhood gives ``min > max``); float32, or float64 for float64 ``x``."""
    dt = np.float64 if x.dtype == np.float64 else np.float32
    mn = np.where(ok, x, np.inf).astype(dt, copy=False)
    mx = np.where(ok, x, -np.inf).astype(dt, copy=False)
    for lo, hi in zip(mn, mx):
        for axis in (0, 1):
            n = lo.shape[axis]
            pad = [(0, 0)] * 2
            pad[axis] = (r, r)
            big = np.pad(lo, pad, constant_values=np.inf)
            small = np.pad(hi, pad, constant_values=-np.inf)
            for d in range(2 * r + 1):
                sl = [slice(None)] * 2
                sl[axis] = slice(d, d + n)
                np.minimum(lo, big[tuple(sl)], out=lo)
                np.maximum(hi, small[tuple(sl)], out=hi)
    return mn, mx


def nodata_problem(nodata: float, dtype: np.dtype) -> str | None:
    """Why a ``dtype`` raster cannot hold ``nodata`` (None when it can): it would be written as
    another value. NaN and +-inf are float values (a float raster's nodata may be either)."""
    a_type = f"{'an' if dtype.name.startswith('i') else 'a'} {dtype.name}"  # an int16, a uint8
    if not np.isfinite(nodata):
        shown = "NaN" if np.isnan(nodata) else f"{nodata:g}"
        return None if dtype.kind == "f" else f"nodata {shown} is not {a_type} value"
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        if not info.min <= nodata <= info.max:
            return f"nodata {nodata:g} is not {a_type} value ({info.min}..{info.max})"
        if nodata != int(nodata):
            return f"nodata {nodata:g} is not {a_type} value (not an integer)"
    elif dtype.kind == "f" and abs(nodata) > np.finfo(dtype).max:
        return f"nodata {nodata:g} is out of the {dtype} range"
    return None


def nudge_from_nodata(out: np.ndarray, valid: np.ndarray, nodata: float) -> None:
    """In place: valid pixels equal to ``nodata`` move one unit away from it (an integer
    ``nodata`` is cast clipped, not wrapped: float64 holds int64 ``2**63 - 1`` as ``2**63``)."""
    if np.isnan(nodata):
        return
    dt = out.dtype
    nd = safe_cast(np.array([nodata], np.float64), dt)[0] if dt.kind in "ui" else dt.type(nodata)
    hit = valid & (out == nd)
    if not hit.any():
        return
    if dt.kind in "ui":
        step = 1 if nd < np.iinfo(dt).max else -1
        out[hit] = int(nd) + step
    else:
        direction = np.inf if nd < np.finfo(dt).max else -np.inf
        out[hit] = np.nextafter(nd, np.array(direction, dt))


def _grid(band: np.ndarray, grid: DTypeLike | None) -> np.dtype:
    """The float type a ``band`` pixel is compared in: ``grid`` (the type the output is
    written in) where it is coarser than the band's own (float64 blocks written as float32 or
    float16), else the band's."""
    g = band.dtype if grid is None else np.dtype(grid)
    return g if g.kind == "f" and g.itemsize < band.dtype.itemsize else band.dtype


def reaches(
    band: np.ndarray, v: float, step: float, up: bool, grid: DTypeLike | None = None
) -> bool:
    """Whether any pixel of ``band`` equals the saturation ``v`` or rounds to it (``step`` 1:
    on the integer grid; ``step`` 0: in the float type ``grid`` it is written in, see
    :func:`off_saturation`); ``up``: a low saturation (one pass over the band)."""
    if step:
        at, half = band.dtype.type(v), step / 2
        return bool(band.min() <= at + half) if up else bool(band.max() >= at - half)
    g = _grid(band, grid).type
    at_g = g(band.dtype.type(v))  # (rounding is monotonic: the extreme tells)
    return bool(g(band.min()) <= at_g) if up else bool(g(band.max()) >= at_g)


def chunk_rows(n: int) -> int:
    """Rows of a band :func:`off_saturation` handles at a time: an eighth of its ``n``."""
    return max(1, -(-n // 8))


def _rows(a: np.ndarray, rows: slice, ndim: int) -> np.ndarray:
    """The part of ``a`` (broadcast to an ``ndim``-dimensional band) over the band's ``rows``."""
    return a[rows] if a.ndim == ndim and a.shape[0] > 1 else a


def off_saturation(
    band: np.ndarray,
    kept: np.ndarray,
    v: float,
    step: float,
    up: bool,
    grid: DTypeLike | None = None,
    counted: np.ndarray | None = None,
) -> int:
    """In place: pixels of ``band`` outside ``kept`` (the saturated footprint, and pixels
    that are not valid; broadcast to ``band``) that equal the saturation value ``v``, or on an
    integer grid (``step`` 1) round to it, move one step off it: down, or up for a low
    saturation (``up``). On a float grid (``step`` 0) the comparison and the step are made in
    ``grid``, the float type the output is written in, where it is coarser than ``band``'s
    (a float64 pixel just below 1.0 is 1.0 in float32): such pixels move to the next value
    below (above) the saturation in that type, held exactly by ``band``.
    Returns how many moved (of those in ``counted``, where given: a panel's own columns);
    nothing is read twice when no pixel comes near ``v``. The test runs on an eighth of the
    band's rows at a time (:func:`chunk_rows`; its distance to ``v`` in one buffer), so its
    temporaries are ``itemsize + 1`` bytes per value of such a chunk."""
    if not reaches(band, v, step, up, grid):
        return 0  # (the usual case: one pass over the block)
    ft = band.dtype.type
    at = ft(v)
    if step:
        half = step / 2
        to = at + (step if up else -step)
    else:
        g = _grid(band, grid).type
        at_g = g(at)  # the saturation as the footprint is written
        to = ft(np.nextafter(at_g, g(np.inf if up else -np.inf)))
    n, ndim, size = 0, band.ndim, chunk_rows(band.shape[0])
    for r in range(0, band.shape[0], size):
        rows = slice(r, r + size)
        part = band[rows]
        if step:
            dist = np.subtract(part, at)  # |band - at| <= step / 2, in one buffer
            np.abs(dist, out=dist)
            near = dist <= half
            del dist
        else:
            near = part.astype(g, copy=False) == at_g
        near &= ~_rows(kept, rows, ndim)
        if np.count_nonzero(near):
            c = near if counted is None else near & _rows(counted, rows, ndim)
            n += int(np.count_nonzero(c))
            part[near] = to
    return n


def restore_footprint(
    out: np.ndarray, src: np.ndarray, factors: Sequence[int], bad: np.ndarray | None = None
) -> None:
    """In place: output voxels whose nearest source voxel is in ``bad`` (default: NaN or
    +-inf) get that voxel's value: the footprint is written back exactly, not invented."""
    bad = ~np.isfinite(src) if bad is None else bad
    if not bad.any():
        return
    vals, mask = src, bad
    for a, f in enumerate(factors):
        if f != 1:
            vals, mask = np.repeat(vals, f, axis=a), np.repeat(mask, f, axis=a)
    out[mask] = vals[mask]


def keep_infinite(
    out: np.ndarray, src: np.ndarray, scale: int, usable: np.ndarray | None = None
) -> None:
    """In place: the +-inf pixels of ``src`` ``(C, H, W)`` (those ``usable`` says, where given:
    a pixel masked for another reason stays as it was written) come back unchanged over their
    ``s x s`` footprint in ``out`` ``(C, H*s, W*s)``, as in NIfTI (:func:`restore_footprint`).
    Nothing happens unless both hold floats with the same bands (a model making other bands)."""
    if out.dtype.kind != "f" or src.dtype.kind != "f" or out.shape[0] != src.shape[0]:
        return
    inf = np.isinf(src)
    if usable is not None:
        inf &= usable
    restore_footprint(out, src, (1, scale, scale), inf)


def safe_cast(
    values: np.ndarray, dtype: DTypeLike, *, nan: int = 0, out: np.ndarray | None = None
) -> np.ndarray:
    """Float ``values`` (float32 or float64; consumed: rounded and clipped in place) to the
    integer ``dtype``: rounded half to even, clipped to the type's range (+-inf to its ends),
    NaN as ``nan``; written into ``out`` (``dtype``, ``values``' shape) when given.

    Where the float type cannot hold the type's maximum (float32: ``2**31 - 1`` and
    ``2**32 - 1``; float64: ``2**63 - 1`` and ``2**64 - 1``), it rounds that bound up to a
    power of two, and a value clipped to it is outside the type: C leaves the cast undefined
    (x86 writes ``-2**63`` for int64, 0 for uint64). Values at or above the rounded bound are
    written as the maximum exactly; the others are all below it already. (The minimum, 0 or
    ``-2**(n-1)``, float32 and float64 hold exactly.)
    """
    dt = np.dtype(dtype)
    info = np.iinfo(dt)
    ft = values.dtype.type
    np.rint(values, out=values)
    hi = ft(info.max)
    over = None
    if int(hi) > info.max:  # rounded up: the largest float inside is the one below
        over = values >= hi
        hi = np.nextafter(hi, ft(0))
    np.clip(values, ft(info.min), hi, out=values)
    bad = np.isnan(values)
    has_nan = bool(bad.any())
    if has_nan:
        values[bad] = 0.0
    res = np.empty(values.shape, dt) if out is None else out
    np.copyto(res, values, casting="unsafe")
    if over is not None and over.any():
        res[over] = info.max
    if has_nan and nan:
        res[bad] = nan
    return res


__all__ = [
    "chunk_rows",
    "clip_blocks",
    "keep_infinite",
    "local_range",
    "nodata_problem",
    "nudge_from_nodata",
    "off_saturation",
    "reaches",
    "restore_footprint",
    "safe_cast",
]
