"""Stored value grids of DICOM images: the integer type a derived series is written in, and
the padding values (``PixelPaddingValue`` [..``PixelPaddingRangeLimit``]) valid pixels keep
off. Works on pydicom datasets only (no series objects), so every medical module may use it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..value_ops import nudge_from_nodata

log = logging.getLogger(__name__)

#: Output types in order of preference per width: 16 bits unless a source is 32-bit.
_WIDTHS = (2, 4)


def int_tag(ds: Any, key: str, pixels: Any = None) -> int | None:
    """An integer-valued stored-value tag (VR US or SS: padding, real world value mapping
    range) as the pixel decoder reads stored values: its low ``BitsStored`` bits in the
    signedness of ``PixelRepresentation`` of ``pixels`` (the image; default ``ds``). So a
    ``PixelPaddingValue`` written as US 63536 in a signed 16-bit image reads -2000, as its
    padding pixels do. pydicom may hold the value as int or, for an ambiguous VR, as raw
    bytes; without ``PixelRepresentation`` an int is taken as it is."""
    if key not in ds:
        return None
    img = ds if pixels is None else pixels
    v = ds[key].value
    if isinstance(v, (bytes, bytearray)):
        if len(v) < 2:
            return None
        v = int(np.frombuffer(bytes(v[:2]), "<u2")[0])
    elif "PixelRepresentation" not in img:
        try:
            return int(v)
        except (TypeError, ValueError):
            return None
    try:
        n = int(v)
    except (TypeError, ValueError):
        return None
    signed = int(img.get("PixelRepresentation", 0) or 0) == 1
    bits = int(img.get("BitsStored", 0) or img.get("BitsAllocated", 16) or 16)
    n &= (1 << bits) - 1
    return n - (1 << bits) if signed and n >> (bits - 1) else n


def declared_range(ds: Any) -> tuple[int, int]:
    """The stored values an image can hold: ``PixelRepresentation`` (signedness) and
    ``BitsStored`` (``BitsAllocated`` when absent)."""
    signed = int(ds.get("PixelRepresentation", 0) or 0) == 1
    return bits_range(signed, int(ds.get("BitsStored", 0) or ds.get("BitsAllocated", 16) or 16))


def bits_range(signed: bool, bits: int) -> tuple[int, int]:
    """The stored values ``bits`` bits hold in two's complement (``signed``) or unsigned."""
    return (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)


def kept_range(dtype: np.dtype, sources: Any) -> tuple[int, int]:
    """The stored values :func:`kept_bits_stored` keeps the sources' ``BitsStored`` for: its
    range in ``dtype``'s signedness when all sources have the same ``BitsStored`` narrower
    than ``dtype``, else ``dtype``'s whole range."""
    info = np.iinfo(dtype)
    bits = {int(ds.get("BitsStored", 0) or 0) for ds in sources}
    if len(bits) != 1 or not 0 < (b := bits.pop()) < info.bits:
        return int(info.min), int(info.max)
    return (-(1 << (b - 1)), (1 << (b - 1)) - 1) if info.kind == "i" else (0, (1 << b) - 1)


def kept_bits_stored(stored: np.ndarray, sources: Any) -> int:
    """``BitsStored`` for the written ``stored`` values: the sources' own (12 in 16-bit words)
    when they all have the same one and every written value fits in its range (as the
    default value envelope keeps them), else the full width of ``stored``'s type."""
    full = stored.dtype.itemsize * 8
    lo, hi = kept_range(stored.dtype, sources)
    if stored.size == 0 or (lo, hi) == (np.iinfo(stored.dtype).min, np.iinfo(stored.dtype).max):
        return full
    b = int(hi - lo).bit_length()
    return b if lo <= int(stored.min()) and int(stored.max()) <= hi else full


Pair = tuple[float, float]  # (RescaleSlope, RescaleIntercept)


def grid_span(pair: Pair, stored: tuple[int, int]) -> tuple[float, float]:
    """The modality values a rescale ``pair`` gives the ``stored`` range (low, high)."""
    a, b = (pair[1] + pair[0] * v for v in stored)
    return min(a, b), max(a, b)


def pair_holds(pair: Pair, lo: float, hi: float, stored: tuple[int, int]) -> bool:
    """Whether modality values ``lo..hi``, rounded to the value grid of ``pair``, fall in the
    ``stored`` range."""
    a, b = (float(np.rint((v - pair[1]) / pair[0])) for v in (lo, hi))
    return stored[0] <= min(a, b) and max(a, b) <= stored[1]


def shifted_pair(pair: Pair, lo: float, hi: float, stored: tuple[int, int]) -> Pair | None:
    """``pair`` with its intercept moved by the fewest whole slope steps so that its value
    grid (the same values: ``intercept + slope * n``) holds ``lo..hi`` in the ``stored``
    range; None when the range is wider than the grid's."""
    s, c = pair
    a, b = sorted(float(np.rint((v - c) / s)) for v in (lo, hi))
    first, last = b - stored[1], a - stored[0]  # the steps m it may move: first..last
    if first > last:
        return None
    m = min(max(0.0, first), last)
    return s, c + m * s


def fitted_pair(lo: float, hi: float, intercepts: Sequence[float], stored: tuple[int, int]) -> Pair:
    """A rescale pair whose value grid holds modality values ``lo..hi`` in the ``stored``
    range: the first of ``intercepts`` (then ``floor(lo)``) that can be the intercept, with
    the finest slope (6 significant digits, rounded up) that reaches both ends."""
    tmin, tmax = stored
    for c in (*intercepts, float(np.floor(lo))):
        need = []
        if hi > c:
            if tmax <= 0:
                continue
            need.append((hi - c) / tmax)
        if lo < c:
            if tmin >= 0:
                continue
            need.append((lo - c) / tmin)
        s = max(need, default=0.0)
        return (float(f"{s * (1 + 1e-5):.6g}") if s > 0 else 1.0), float(c)
    raise ValueError(f"no rescale holds {lo}..{hi} in stored {tmin}..{tmax}")


def remap_real_world(
    ds: Any,
    old: Pair,
    new: Pair,
    stored: tuple[int, int],
    label: str = "image",
    source: Any = None,
) -> int:
    """In place: a ``RealWorldValueMappingSequence`` of ``ds`` (an image or a frame's
    functional group item) re-expressed for stored values written with the rescale ``new``
    instead of ``old`` (it maps stored values): a linear item's slope and intercept and its
    first/last mapped values, within ``stored`` (the written image's ``BitsStored`` range in
    its signedness); an item that mapped the whole stored range of the ``source`` image
    (default ``ds``) maps the whole of ``stored``. An item with a table
    (``RealWorldValueLUTData``) no longer applies and is removed (a warning naming
    ``label``). Returns how many were."""
    if "RealWorldValueMappingSequence" not in ds:
        return 0
    (s0, c0), (s1, c1) = old, new
    src = ds if source is None else source
    whole = declared_range(src) if "PixelRepresentation" in src else None
    keys = ("RealWorldValueFirstValueMapped", "RealWorldValueLastValueMapped")
    kept, dropped = [], 0
    for it in ds.RealWorldValueMappingSequence:
        if "RealWorldValueLUTData" in it or "RealWorldValueSlope" not in it:
            dropped += 1
            continue
        a, b = float(it.RealWorldValueSlope), float(it.get("RealWorldValueIntercept", 0) or 0)
        it.RealWorldValueSlope = a * s1 / s0
        it.RealWorldValueIntercept = a * (c1 - c0) / s0 + b
        ends = tuple(int_tag(it, key, src) for key in keys)
        for key, v, end in zip(keys, ends, stored):
            if v is None:
                continue
            if ends == whole:
                n = end
            else:
                n = int(np.clip(np.rint((c0 + s0 * v - c1) / s1), *stored))
            it.add_new(it[key].tag, "SS" if stored[0] < 0 else "US", n)
        kept.append(it)
    if dropped:
        log.warning(
            "%s: %d RealWorldValueMappingSequence item(s) with a table dropped from an output "
            "slice written with another rescale (they no longer map its stored values)",
            label,
            dropped,
        )
        ds.RealWorldValueMappingSequence = kept
        if not kept:
            del ds.RealWorldValueMappingSequence
    return dropped


def stored_kind(ds: Any) -> tuple[int, int, int]:
    """``(PixelRepresentation, BitsAllocated, BitsStored)`` of an image."""
    alloc = int(ds.get("BitsAllocated", 16) or 16)
    return (int(ds.get("PixelRepresentation", 0) or 0), alloc, int(ds.get("BitsStored", alloc)))


def holding_dtype(lo: float, hi: float, signed_first: bool, min_bytes: int = 2) -> np.dtype | None:
    """The narrowest integer type of at least ``min_bytes`` (16 or 32 bits; the first image's
    signedness first at each width) that holds ``lo..hi``; None when no such type does."""
    kinds = ("i", "u") if signed_first else ("u", "i")
    for size in (s for s in _WIDTHS if s >= min_bytes):
        for kind in kinds:
            info = np.iinfo(f"{kind}{size}")
            if info.min <= lo and hi <= info.max:
                return np.dtype(f"{kind}{size}")
    return None


def series_range(datasets: Sequence[Any], tables: Sequence[np.ndarray] = ()) -> tuple[int, int]:
    """The stored values a series can hold: the union of its images'
    ``PixelRepresentation``/``BitsStored`` ranges and the outputs of its Modality LUTs."""
    ranges = [declared_range(ds) for ds in datasets]
    ranges += [(int(t.min()), int(t.max())) for t in tables if t.size]
    return min(r[0] for r in ranges), max(r[1] for r in ranges)


def series_dtype(datasets: Sequence[Any], tables: Sequence[np.ndarray] = ()) -> np.dtype:
    """The integer type that holds the stored values every image of a series may have (the
    union of their ``PixelRepresentation``/``BitsStored`` ranges) and every Modality LUT
    output in ``tables``: 16 bits unless a source is 32-bit or 16 bits cannot hold the union
    (e.g. signed and unsigned 16-bit images in one series: 32-bit signed). When not even 32
    bits hold it, 32-bit with the first image's signedness (values are then checked as they
    are written)."""
    lo, hi = series_range(datasets, tables)
    signed = int(datasets[0].get("PixelRepresentation", 0) or 0) == 1
    wide = any(int(ds.get("BitsAllocated", 16) or 16) > 16 for ds in datasets)
    dt = holding_dtype(lo, hi, signed, 4 if wide else 2)
    return dt if dt is not None else np.dtype("i4" if signed else "u4")


def padding_range(ds: Any) -> tuple[int, int] | None:
    """The stored values an image marks as padding: ``PixelPaddingValue`` up to
    ``PixelPaddingRangeLimit`` when present (inclusive), or None."""
    ppv = int_tag(ds, "PixelPaddingValue")
    if ppv is None:
        return None
    lim = int_tag(ds, "PixelPaddingRangeLimit")
    return (ppv, ppv) if lim is None else (min(ppv, lim), max(ppv, lim))


def retag_padding(ds: Any, signed: bool, source: Any = None) -> None:
    """Give ``PixelPaddingValue``/``PixelPaddingRangeLimit`` (values of the ``source`` image,
    default ``ds``: :func:`int_tag`) the VR of the written pixels' signedness (SS or US)
    where their value fits it (the source's may have been the other, e.g. US 63536 for -2000
    in a signed image)."""
    lo, hi = (-(1 << 15), (1 << 15) - 1) if signed else (0, (1 << 16) - 1)
    for key in ("PixelPaddingValue", "PixelPaddingRangeLimit"):
        v = int_tag(ds, key, source)
        if v is not None and lo <= v <= hi:
            ds.add_new(ds[key].tag, "SS" if signed else "US", v)  # (no stale-VR warning)


def keep_off_padding(out: np.ndarray, valid: np.ndarray, pad: tuple[int, int]) -> int:
    """In place: valid pixels of the integer image ``out`` that hold a padding value (``pad``,
    inclusive) move to the nearest value outside the range that ``out``'s type holds, so a
    reader never takes them for padding (one value: the shared nodata nudge, one unit).
    Returns how many moved."""
    lo, hi = pad
    hit = valid & (out >= lo) & (out <= hi)
    n = int(hit.sum())
    if not n:
        return 0
    if lo == hi:
        nudge_from_nodata(out, valid, lo)
        return n
    info = np.iinfo(out.dtype)
    below, above = lo - 1, hi + 1
    vals = out[hit].astype(np.int64)
    if below < info.min and above > info.max:
        raise ValueError(f"the padding range {lo}..{hi} spans every {out.dtype} value")
    to_above = below < info.min or (above <= info.max and (hi - vals) < (vals - lo))
    out[hit] = np.where(to_above, above, below).astype(out.dtype)
    return n


__all__ = [
    "Pair",
    "bits_range",
    "declared_range",
    "fitted_pair",
    "grid_span",
    "holding_dtype",
    "int_tag",
    "keep_off_padding",
    "kept_bits_stored",
    "kept_range",
    "padding_range",
    "pair_holds",
    "remap_real_world",
    "retag_padding",
    "series_dtype",
    "shifted_pair",
    "stored_kind",
]
