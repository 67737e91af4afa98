"""The warning when a user's value range (``--value-range LO,HI``,
:attr:`ValueOptions.value_range <sr_domains.value_domain.ValueOptions.value_range>`) contradicts
the input: valid input values outside it.

A value range declares the *physical* range of the data, so a valid input value outside it
says the range (or its units) is wrong: the output would be clamped to it there without a word
(a DEM of -50..3000 m with ``--value-range -100,200`` came back 99.7 % at 200). The range is
still applied, since the user asked; the warning names the file, the range and the share of
sampled valid values outside it, up front (the dry run says it too for a GeoTIFF); the array and
MONAI APIs (``values=``) warn the same, naming "the array" or the MetaTensor's file. Judged on
the sample the run reads anyway (a GeoTIFF's :meth:`~sr_domains.geo.reader.RasterSource.sample`,
a NIfTI file's scan sample, a DICOM series' volume, an array or tensor, strided), so a rare
outlier may go unseen.
"""

from __future__ import annotations

import logging
import os
from typing import Any, NamedTuple

import numpy as np

from .value_domain import ValueOptions

log = logging.getLogger(__name__)

#: The values a range is compared with, per domain (in the warning: check the units).
UNITS = {
    "geotiff": "a GeoTIFF's stored values, before any band scale/offset",
    "nifti": "NIfTI physical values, after scl_slope/scl_inter",
    "dicom": "DICOM modality values, after RescaleSlope/RescaleIntercept",
    "array": "the array's own values",
    "monai": "the tensor's values as they reach the transform",
}

#: Most values compared (a larger array is strided first: a DICOM volume held in memory).
MAX_VALUES = 8 * 2**20


def range_text(value_range: tuple[float | None, float | None]) -> str:
    """``-100,200`` / ``0,`` / ``,1``: a range as ``--value-range`` takes it."""
    return ",".join("" if v is None else f"{v:g}" for v in value_range)


class Outside(NamedTuple):
    """What :func:`outside_range` found: how many (``outside``) of the ``n`` valid values lie
    outside the range, and the valid values' ``lo``..``hi`` (NaN without valid values)."""

    outside: int
    n: int
    lo: float
    hi: float


#: Values compared at once (the comparisons' masks stay small beside a DICOM volume).
CHUNK = 2**20


def _bound(b: float | None, dtype: np.dtype) -> Any:
    """``b`` at the precision of float ``values`` (a float32 sample holds 76.8 as 76.800003:
    a float64 range end of 76.8 is no contradiction), else as a float."""
    if b is None or dtype.kind != "f":
        return None if b is None else float(b)
    with np.errstate(over="ignore"):  # (1e39 as float32: inf)
        return np.asarray(b, np.float64).astype(dtype)[()]


def outside_range(
    values: np.ndarray,
    valid: np.ndarray | None,
    value_range: tuple[float | None, float | None],
) -> Outside:
    """How many valid ``values`` lie outside ``value_range`` (arguments as in
    :func:`warn_outside_range`), compared at the values' own precision, a chunk at a time
    (no copy of the valid values; a larger array than :data:`MAX_VALUES` is strided)."""
    flat = np.asarray(values).reshape(-1)
    step = max(1, -(-flat.size // MAX_VALUES))
    flat = flat[::step]
    ok_all = None if valid is None else np.asarray(valid).reshape(-1)[::step]
    lo, hi = (_bound(b, flat.dtype) for b in value_range)
    count = n = 0
    vmin, vmax = np.inf, -np.inf
    for i in range(0, flat.size, CHUNK):
        part = flat[i : i + CHUNK]
        ok = np.isfinite(part)
        if ok_all is not None:
            ok &= ok_all[i : i + CHUNK]
        k = int(np.count_nonzero(ok))
        if not k:
            continue
        n += k
        if lo is not None:
            count += int(np.count_nonzero((part < lo) & ok))
        if hi is not None:
            count += int(np.count_nonzero((part > hi) & ok))
        vmin = min(vmin, float(part.min(where=ok, initial=part[ok.argmax()])))
        vmax = max(vmax, float(part.max(where=ok, initial=part[ok.argmax()])))
    return Outside(count, n, vmin if n else np.nan, vmax if n else np.nan)


def warn_outside_range(
    where: str | os.PathLike[str],
    values: np.ndarray,
    valid: np.ndarray | None,
    options: ValueOptions | None,
    domain: str,
) -> int:
    """Warn (naming ``where``) when valid ``values`` lie outside ``options.value_range``.

    Args:
        where: the input, as the warning names it.
        values: a sample of the input in the units the range is in (any shape).
        valid: which of ``values`` are valid (same shape), or None: the finite ones.
            Non-finite values are never counted.
        options: the user's value options; nothing happens without a range or with
            ``clamp=False`` (the range is not applied then).
        domain: ``"geotiff"``, ``"nifti"``, ``"dicom"``, ``"array"`` (:func:`upscale_array`)
            or ``"monai"`` (``SuperResolution``): the units named, :data:`UNITS`.

    Returns:
        How many sampled valid values lie outside the range (0: no warning).
    """
    if options is None or not options.clamp or options.value_range is None:
        return 0
    found = outside_range(values, valid, options.value_range)
    if found.outside:
        log.warning(
            "%s: --value-range %s contradicts the data: %.3g%% of the sampled valid values "
            "(%d of %d; data %.6g..%.6g) lie outside it and are clamped to it. A physical "
            "range holds every valid value, so the range or its units are wrong (it is in %s); "
            "widen it, or leave it out",
            where,
            range_text(options.value_range),
            100.0 * found.outside / found.n,
            found.outside,
            found.n,
            found.lo,
            found.hi,
            UNITS[domain],
        )
    return found.outside


__all__ = [
    "MAX_VALUES",
    "UNITS",
    "Outside",
    "outside_range",
    "range_text",
    "warn_outside_range",
]
