"""The stored pixels and rescale of each slice of a derived DICOM series: the integer type
(:func:`output_dtype`), the padding value (:func:`padding_value`), each slice's
(slope, intercept) (:func:`slice_pair`) and its rounded, clipped values (:func:`stored_slices`).
Used by :mod:`.dicom_write` (which re-exports them); the rules are in its docstring."""

from __future__ import annotations

import logging

import numpy as np

from ..value_ops import safe_cast
from .dicom_derive import nearest_source
from .dicom_ds import ds_number
from .dicom_series import DicomSeries
from .dicom_values import (
    Pair,
    fitted_pair,
    grid_span,
    holding_dtype,
    int_tag,
    keep_off_padding,
    kept_range,
    padding_range,
    pair_holds,
    shifted_pair,
)

log = logging.getLogger(__name__)


def padding_value(
    values: np.ndarray, series: DicomSeries, dtype: np.dtype | None = None
) -> int | None:
    """The stored value the output's padding pixels (NaN in ``values``) are written as, or
    None without ``PixelPaddingValue``. The source's value, except where a Modality LUT is
    dropped: the output's stored values are then modality values, so the source's stored
    padding value could name real tissue (e.g. 0 mapped to -1000 HU while water reads 0). It
    becomes the LUT's output for it, or an end of the stored type (``dtype``, default
    :func:`output_dtype`), whichever no valid output pixel holds."""
    pad = series.padding
    if pad is None:
        return None
    ppv = series.padding_value  # the value itself, not the range's low end
    if ppv is None:
        return pad[0]
    luts = [s.lut for s in series.slices if s.lut is not None]
    if not luts:
        return ppv
    dt = output_dtype(values, series) if dtype is None else dtype
    info = np.iinfo(dt)
    valid = values[~np.isnan(values)]
    lo, hi = (float(np.rint(valid.min())), float(np.rint(valid.max()))) if valid.size else (1, 0)
    own = int(luts[0].apply(np.array([ppv]))[0])
    for v in (own, int(info.min), int(info.max)):
        if not lo <= v <= hi:
            return v
    log.warning(
        "padding pixels written as %d, a value valid pixels also hold: the output's stored "
        "values span the whole %s range",
        own,
        dt,
    )
    return own


def _rounded(values: np.ndarray, series: DicomSeries, factor: float, k: int) -> np.ndarray:
    """Output slice ``k`` in the stored units of its nearest source slice, rounded (float)."""
    src = series.slices[nearest_source(k, factor, series.n_slices)]
    return np.rint((values[k].astype(np.float64) - src.intercept) / src.slope)


def output_dtype(values: np.ndarray, series: DicomSeries) -> np.dtype:
    """The integer type the derived series is written in: :attr:`DicomSeries.stored_dtype`,
    except for a series whose files differ in signedness or bits (e.g. one signed slice among
    unsigned ones up to 42900): then the narrowest type (16 bits where possible) that holds
    every output value and the padding values, so no slice is clipped to another's range."""
    dt = series.stored_dtype
    if not series.mixed_stored_types:
        return dt
    factor = values.shape[0] / series.n_slices
    lo, hi = np.inf, -np.inf
    for k in range(values.shape[0]):
        v = _rounded(values, series, factor, k)
        v = v[~np.isnan(v)]
        if v.size:
            lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
    for s in series.slices:
        pad = padding_range(s.ds)
        if pad is not None:
            lo, hi = min(lo, pad[0]), max(hi, pad[1])
    signed = int(series.first.get("PixelRepresentation", 0) or 0) == 1
    narrow = holding_dtype(lo, hi, signed) if lo <= hi else None
    out = narrow if narrow is not None and narrow.itemsize <= dt.itemsize else dt
    log.info(
        "%s: the files differ in PixelRepresentation/BitsAllocated/BitsStored "
        "(0028,0103/0100/0101); written as %s (stored values %g..%g)",
        series.source,
        out,
        lo,
        hi,
    )
    return out


def _hull(pairs: list[Pair], stored: tuple[int, int]) -> tuple[float, float, float, float]:
    """``(low, high, low - half step, high + half step)``: the modality values some of the
    rescale ``pairs`` can give the ``stored`` range, and beyond which rounding clips."""
    spans = [(*grid_span(p, stored), abs(p[0]) / 2) for p in pairs]
    lo = min(spans, key=lambda g: g[0])
    hi = max(spans, key=lambda g: g[1])
    return lo[0], hi[1], lo[0] - lo[2], hi[1] + hi[2]


def slice_pair(
    x: np.ndarray,
    k: int,
    factor: float,
    series: DicomSeries,
    full: tuple[int, int],
    kept: tuple[int, int],
) -> Pair:
    """``(slope, intercept)``: the rescale output slice ``k`` (valid modality values ``x``) is
    written with. An in-plane output slice is its source slice's image: that slice's
    (clipped to its grid, as before). Between source slices, the first whose value grid
    holds ``x``: the nearest slice's within the ``kept``
    stored range (the sources' ``BitsStored``); the finest of the two slices it lies between
    within ``kept``; the nearest's value grid with its intercept moved by whole slope steps
    (:func:`.dicom_values.shifted_pair`, within ``kept``: the series keeps its
    ``BitsStored``); the nearest's within the ``full`` range of the written type; else a new
    slope (:func:`.dicom_values.fitted_pair`, within ``kept``), with the nearest slice's
    intercept where it can be one. A series of one rescale tries its own within ``full``
    before a shifted one (written as before: its rescale kept, ``BitsStored`` widened). So
    no slice is clipped to its neighbour's range (a PET slice's slope is sized to its own
    maximum)."""
    n = series.n_slices
    i = nearest_source(k, factor, n)
    own = (series.slices[i].slope, series.slices[i].intercept)
    if factor == 1 or not x.size:
        return own
    lo, hi = float(x.min()), float(x.max())
    if pair_holds(own, lo, hi, kept):
        return own
    t = (k + 0.5) / factor - 0.5
    near = sorted(
        {int(min(max(v, 0), n - 1)) for v in (np.floor(t), np.ceil(t))},
        key=lambda j: abs(series.slices[j].slope),
    )
    for j in near:
        pair = (series.slices[j].slope, series.slices[j].intercept)
        if pair_holds(pair, lo, hi, kept):
            return pair
    uniform = len({(s.slope, s.intercept) for s in series.slices}) == 1
    shifted = shifted_pair(own, lo, hi, kept)
    if (uniform or shifted is None) and pair_holds(own, lo, hi, full):
        return own
    if shifted is None:
        cs = [own[1], *(series.slices[j].intercept for j in near)]
        shifted = fitted_pair(lo, hi, list(dict.fromkeys(cs)), kept)
    return float(ds_number(shifted[0])), float(ds_number(shifted[1]))


def stored_slices(
    values: np.ndarray,
    series: DicomSeries,
    factor: float,
    pad: int | None = None,
    dtype: np.dtype | None = None,
) -> tuple[np.ndarray, list[tuple[float, float]], int]:
    """Stored pixels of each output slice with its rescale (:func:`slice_pair`), NaN
    (padding) as ``pad`` (default :func:`padding_value`); rounded and clipped to ``dtype``
    (default :func:`output_dtype`). Values of a slice between source slices (``factor`` !=
    1) are clipped only to what some source slice's grid can hold (values no source slice
    could hold, e.g. CT ringing below stored 0). A valid pixel never holds a value the slice
    declares as padding (``PixelPaddingValue`` [..``RangeLimit``]): it moves to the nearest
    value outside (:func:`.dicom_values.keep_off_padding`). Returns ``(stored, [(slope,
    intercept)], n_clipped)``."""
    dt = output_dtype(values, series) if dtype is None else np.dtype(dtype)
    info = np.iinfo(dt)
    full = (int(info.min), int(info.max))
    kept = kept_range(dt, [s.ds for s in series.slices])
    hull = _hull([(s.slope, s.intercept) for s in series.slices], full)
    pad = padding_value(values, series, dt) if pad is None else pad
    out = np.empty(values.shape, dt)
    pairs, clipped, moved = [], 0, 0
    for k in range(values.shape[0]):
        src = series.slices[nearest_source(k, factor, series.n_slices)]
        x = values[k].astype(np.float64)
        nan = np.isnan(x)
        if factor != 1:  # beyond every source grid: clipped (rounding ends included)
            clipped += int(((x < hull[2]) | (x > hull[3])).sum())
            np.clip(x, hull[0], hull[1], out=x)
        slope, intercept = slice_pair(x[~nan], k, factor, series, full, kept)
        v = np.rint((x - intercept) / slope)
        clipped += int(((v < info.min) | (v > info.max)).sum())
        own = int_tag(src.ds, "PixelPaddingValue") if src.lut is None else None
        fill = own if own is not None and info.min <= own <= info.max else pad
        safe_cast(v, dt, nan=fill if fill is not None else 0, out=out[k])
        declared = padding_range(src.ds) if own is not None else None
        if declared is None and fill is not None and (src.lut is not None or nan.any()):
            declared = (fill, fill)  # the value the writer tags this slice's padding with
        if declared is not None:
            moved += keep_off_padding(out[k], ~nan, declared)
        pairs.append((slope, intercept))
    if clipped:
        log.warning("%d pixel value(s) clipped to the %s range", clipped, dt)
    if moved:
        log.info("%d valid pixel(s) moved off the padding value(s)", moved)
    return out, pairs, clipped


__all__ = ["output_dtype", "padding_value", "slice_pair", "stored_slices"]
