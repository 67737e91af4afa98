"""Facts about an input's values that decide its value rules (:mod:`sr_domains.value_domain`):
per-band minima and magnitudes, and what counts as zero.

Float data that went through resampling carries round-off residues where it was exactly
zero (``1e-16`` from MONAI's ``Spacing``, ``-1e-12`` from a resampler's weights): values within
:data:`ZERO_TOLERANCE` times the data's magnitude count as zero, so one such pixel neither
turns the non-negativity rule off (:func:`residue_floor`) nor hides a zero background
(:func:`zero_facts`, :func:`pin_hits`). Integer data is exact. The magnitude is the
:data:`MAGNITUDE_PERCENTILE` th percentile of the nonzero magnitudes
(:func:`robust_magnitude`), not the largest: one failed-fit voxel of ``1e9`` in a T2 map
would otherwise make every tissue value "zero", and read a signed field map as non-negative.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: Float data: values within this fraction of the magnitude (:func:`robust_magnitude`) count
#: as zero for the non-negativity and zero-background rules: what float32 round-off can leave
#: of an exact zero (two machine epsilons, 2.4e-7), e.g. the 1e-16 residues MONAI's
#: ``Spacing`` leaves in zero padding.
ZERO_TOLERANCE = float(2 * np.finfo(np.float32).eps)
#: The percentile of the finite nonzero magnitudes that :data:`ZERO_TOLERANCE` is relative to
#: (up to 1 % of outliers leave it alone).
MAGNITUDE_PERCENTILE = 99.0


#: Magnitudes below this fraction of the largest are round-off residues, not data (float64
#: round-off of an exact zero: ``1e-16``; a resampler's ``-1e-12``), left out of the
#: magnitude: in a sparse map they can outnumber the data.
DATA_FRACTION = 1e-10


def robust_magnitude(values: np.ndarray, largest: float | None = None) -> float:
    """The :data:`MAGNITUDE_PERCENTILE` th percentile of the magnitudes of the finite
    ``values`` at or above :data:`DATA_FRACTION` of the largest one (``largest`` when the
    values are a sample; 0 when there are none): up to 1 % of outliers (a failed fit of
    ``1e9`` among tissue values of 100) and any number of round-off residues leave it alone."""
    v = np.abs(np.asarray(values, np.float64).ravel())
    v = v[np.isfinite(v) & (v > 0)]
    top = float(v.max()) if v.size else 0.0
    top = max(top, float(largest)) if largest is not None and np.isfinite(largest) else top
    data = v[v >= DATA_FRACTION * top]
    return float(np.percentile(data, MAGNITUDE_PERCENTILE)) if data.size else top


def band_extremes(
    values: np.ndarray, valid: np.ndarray | None = None, robust: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Exact minimum and magnitude (:func:`robust_magnitude` of float data; the largest
    magnitude for integers, or with ``robust=False``) of the valid, finite values of each band
    of ``(C, ...)`` (NaN and 0 for a band without any)."""
    v = np.asarray(values)
    ok = np.isfinite(v) if v.dtype.kind == "f" else np.ones(v.shape, bool)
    if valid is not None:
        ok &= np.broadcast_to(np.asarray(valid, bool), v.shape)
    mins, mags = np.full(v.shape[0], np.nan), np.zeros(v.shape[0])
    for k in range(v.shape[0]):
        if ok[k].any():
            vals = v[k][ok[k]]
            mins[k] = float(vals.min())
            top = max(abs(mins[k]), abs(float(vals.max())))
            # (integer data is exact: its magnitude decides nothing, the largest will do)
            mags[k] = robust_magnitude(vals, top) if robust and v.dtype.kind == "f" else top
    return mins, mags


def residue_floor(
    mins: Sequence[float] | np.ndarray, magnitudes: Sequence[float] | np.ndarray, floating: bool
) -> np.ndarray:
    """Band minima for :func:`build_rules` with float round-off below zero read as 0: a
    minimum within :data:`ZERO_TOLERANCE` times the band's magnitude below 0 (e.g.
    ``-1e-12`` left by a resampler in a reflectance band) keeps the band non-negative.
    Integer data is exact."""
    m = np.asarray(mins, np.float64).copy()
    if floating:
        tol = ZERO_TOLERANCE * np.asarray(magnitudes, np.float64)
        m[(m < 0) & (m >= -tol)] = 0.0
    return m


def band_minimum(values: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
    """Exact minimum of the valid, finite values of each band of ``(C, ...)`` (NaN if none)."""
    v = np.asarray(values)
    ok = np.isfinite(v) if v.dtype.kind == "f" else np.ones(v.shape, bool)
    if valid is not None:
        ok &= np.broadcast_to(np.asarray(valid, bool), v.shape)
    out = np.full(v.shape[0], np.nan)
    for k in range(v.shape[0]):
        if ok[k].any():
            out[k] = float(v[k][ok[k]].min())
    return out


@dataclass(frozen=True)
class ZeroFacts:
    """What the value rules need to know about zero in one band or volume (:func:`zero_facts`).

    Attributes:
        minimum: exact minimum of the finite values (NaN if none).
        tol: values within ``tol`` of 0 count as 0 (0 for integer data).
        background: non-negative data (down to ``-tol``) with values at 0 (within ``tol``).
    """

    minimum: float
    tol: float
    background: bool

    @property
    def non_negative_minimum(self) -> float:
        """The minimum for :func:`build_rules`: 0 when it is a residue within ``tol`` below 0."""
        return 0.0 if -self.tol <= self.minimum < 0 else self.minimum

    @classmethod
    def from_stats(
        cls, lo: float, hi: float, min_abs: float, floating: bool, magnitude: float | None = None
    ) -> ZeroFacts:
        """From the minimum, maximum and smallest magnitude of the finite values (one
        streaming pass, e.g. :meth:`sr_domains.medical.nifti_io.NiftiSource.scan`) and their
        :func:`robust_magnitude` (of a sample; default: the largest magnitude)."""
        if not np.isfinite(lo):
            return cls(float("nan"), 0.0, False)
        mag = max(abs(lo), abs(hi)) if magnitude is None else magnitude
        tol = ZERO_TOLERANCE * mag if floating else 0.0
        return cls(float(lo), tol, bool(lo >= -tol and min_abs <= tol))


def zero_facts(values: np.ndarray, floating: bool | None = None) -> ZeroFacts:
    """Minimum, zero tolerance (:data:`ZERO_TOLERANCE` of the :func:`robust_magnitude` for
    float data, exact for integers) and whether there is a zero background. ``floating``:
    whether round-off residues can occur (default: a float dtype; False for float arrays
    holding an integer value grid, e.g. rescaled DICOM)."""
    v = np.asarray(values)
    floating = v.dtype.kind == "f" if floating is None else floating
    finite = v[np.isfinite(v)] if v.dtype.kind == "f" else v.ravel()
    if finite.size == 0:
        return ZeroFacts(float("nan"), 0.0, False)
    lo, hi = float(finite.min()), float(finite.max())
    mag = robust_magnitude(finite) if floating else None
    return ZeroFacts.from_stats(lo, hi, float(np.abs(finite).min()), floating, mag)


def pin_hits(values: np.ndarray, v: float, tol: float = 0.0) -> np.ndarray:
    """Where ``values`` hold the pinned value ``v`` (within ``tol``)."""
    return values == v if tol == 0 else np.abs(values - v) <= tol


__all__ = [
    "DATA_FRACTION",
    "MAGNITUDE_PERCENTILE",
    "ZERO_TOLERANCE",
    "ZeroFacts",
    "band_extremes",
    "band_minimum",
    "pin_hits",
    "residue_floor",
    "robust_magnitude",
    "zero_facts",
]
