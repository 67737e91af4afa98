"""The slice grid a through-plane or isotropic DICOM output is planned and written on.

:attr:`DicomSeries.affine <.dicom_series.DicomSeries.affine>` steps from the first slice's
position to the last's: for positions written with few decimals (0.1 mm) that step carries the
two ends' rounding (1.2429 mm for a 1.25 mm series of 8 slices). New slices are placed on the
least-squares line through all the positions instead (the spacing the reader fits to such a
series, :mod:`.dicom_build`), and along it at the source's stated ``SpacingBetweenSlices``
where that agrees with the positions within what their rounding allows
(:func:`stated_spacing`): the written positions and the written ``SpacingBetweenSlices`` then
say the same. In-plane SR keeps :attr:`DicomSeries.affine` (its slices stay where they were).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

import numpy as np

from .dicom_build import position_rounding
from .dicom_series import DicomSeries, fg_attr
from .geometry import dicom_affine, slice_normal

#: Relative agreement asked of a stated spacing where the positions' rounding allows less.
STATED_RTOL = 1e-4


@dataclass(frozen=True)
class SliceGrid:
    """Where a series' slices lie: ``origin + k * step`` (LPS mm), ``spacing`` = the distance
    between slice planes along the normal, ``stated`` = the source's ``SpacingBetweenSlices``
    when it agrees with the positions (else None)."""

    origin: np.ndarray
    step: np.ndarray
    spacing: float
    stated: float | None
    affine: np.ndarray


def _fitted_line(series: DicomSeries) -> tuple[np.ndarray, np.ndarray]:
    """``(centroid, step)`` of the least-squares line through the slice positions (the
    centroid at the mean index); the series' own step for fewer than 2 slices."""
    pos = np.array([cast(np.ndarray, s.position) for s in series.slices], np.float64)
    if len(pos) < 2:
        return pos[0], np.asarray(series.step, np.float64)
    k = np.arange(len(pos), dtype=np.float64) - (len(pos) - 1) / 2
    mean = pos.mean(axis=0)
    return mean, (k @ (pos - mean)) / float(k @ k)


def spacing_tolerance(series: DicomSeries, spacing: float) -> float:
    """How far a stated spacing may differ from the fitted ``spacing`` and still agree:
    :data:`STATED_RTOL` of it (at least of 1 mm), or the most the least-squares slope can be
    off when every position is off by its rounding (half a unit in the last decimal written,
    :func:`.dicom_build.position_rounding`, along the normal)."""
    n = series.n_slices
    base = STATED_RTOL * max(1.0, abs(spacing))
    if n < 2:
        return base
    half = position_rounding(series.slices) * float(np.abs(slice_normal(series.iop)).sum())
    k = np.arange(n, dtype=np.float64) - (n - 1) / 2
    return max(base, half * float(np.abs(k).sum() / (k @ k)))


def stated_spacing(series: DicomSeries, spacing: float) -> float | None:
    """The source's ``SpacingBetweenSlices`` (an enhanced file's functional groups first, else
    the top-level tag) when it agrees with ``spacing`` (:func:`spacing_tolerance`), else None
    (absent, not a positive number, or contradicted by the positions)."""
    first = series.slices[0]
    stated = fg_attr(first.ds, first.frame_item, "PixelMeasuresSequence", "SpacingBetweenSlices")
    try:
        value = float(stated if stated is not None else first.ds.SpacingBetweenSlices)
    except (AttributeError, TypeError, ValueError):
        return None
    if not (np.isfinite(value) and value > 0):
        return None
    return value if abs(value - spacing) <= spacing_tolerance(series, spacing) else None


def slice_grid(series: DicomSeries) -> SliceGrid:
    """The grid new slices of ``series`` are placed on (module docs): the least-squares line
    through its positions, stepping the stated spacing where that agrees with them."""
    if not series.has_geometry:  # (no positions: the series' own)
        return SliceGrid(
            series.affine[:3, 3], series.step, series.slice_spacing, None, series.affine
        )
    normal = slice_normal(series.iop)
    mean, step = _fitted_line(series)
    along = float(step @ normal)
    stated = stated_spacing(series, abs(along))
    if stated is not None and along:
        step = step * (stated / abs(along))
    origin = mean - (series.n_slices - 1) / 2 * step
    affine = dicom_affine(origin, series.iop, series.pixel_spacing, step)
    return SliceGrid(origin, step, abs(float(step @ normal)), stated, affine)


__all__ = ["STATED_RTOL", "SliceGrid", "slice_grid", "spacing_tolerance", "stated_spacing"]
