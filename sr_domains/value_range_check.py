"""The warning when a user's value range (``--value-range LO,HI``,
:attr:`ValueOptions.value_range <sr_domains.value_domain.ValueOptions.value_range>`) contradicts
the input: valid input values outside it.

A value range declares the *physical* range of the data, so a valid input value outside it
says the range (or its units) is wrong: the output would be clamped to it there without a word
(a DEM of -50..3000 m with ``--value-range -100,200`` came back 99.7 % at 200). The range is
still applied, since the user asked; the warning names the file, the range and the share of
sampled valid values outside it, up front (the dry run says it too for a GeoTIFF). Judged on the
sample the run reads anyway (a GeoTIFF's :meth:`~sr_domains.geo.reader.RasterSource.sample`, a
NIfTI file's scan sample, a DICOM series' volume, strided), so a rare outlier may go unseen.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from .value_domain import ValueOptions

log = logging.getLogger(__name__)

#: The values a range is compared with, per domain (in the warning: check the units).
UNITS = {
    "geotiff": "a GeoTIFF's stored values, before any band scale/offset",
    "nifti": "NIfTI physical values, after scl_slope/scl_inter",
    "dicom": "DICOM modality values, after RescaleSlope/RescaleIntercept",
}

#: Most values compared (a larger array is strided first: a DICOM volume held in memory).
MAX_VALUES = 8 * 2**20


def range_text(value_range: tuple[float | None, float | None]) -> str:
    """``-100,200`` / ``0,`` / ``,1``: a range as ``--value-range`` takes it."""
    return ",".join("" if v is None else f"{v:g}" for v in value_range)


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
        domain: ``"geotiff"``, ``"nifti"`` or ``"dicom"`` (the units named, :data:`UNITS`).

    Returns:
        How many sampled valid values lie outside the range (0: no warning).
    """
    if options is None or not options.clamp or options.value_range is None:
        return 0
    lo, hi = options.value_range
    flat = np.asarray(values).reshape(-1)
    step = max(1, -(-flat.size // MAX_VALUES))
    flat = flat[::step]
    ok = np.isfinite(flat)
    if valid is not None:
        ok &= np.asarray(valid).reshape(-1)[::step]
    v = flat[ok]
    below = int(np.count_nonzero(v < lo)) if lo is not None else 0
    above = int(np.count_nonzero(v > hi)) if hi is not None else 0
    outside = below + above
    if outside:
        log.warning(
            "%s: --value-range %s contradicts the data: %.3g%% of the sampled valid values "
            "(%d of %d; data %.6g..%.6g) lie outside it and are clamped to it. A physical "
            "range holds every valid value, so the range or its units are wrong (it is in %s); "
            "widen it, or leave it out",
            where,
            range_text(options.value_range),
            100.0 * outside / v.size,
            outside,
            v.size,
            float(v.min()),
            float(v.max()),
            UNITS[domain],
        )
    return outside


__all__ = ["MAX_VALUES", "UNITS", "range_text", "warn_outside_range"]
