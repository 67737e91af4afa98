"""Check and sort the slices of one DICOM series into a :class:`DicomSeries`: byte-identical
copies dropped, the same Rows/Columns, ImageOrientationPatient and PixelSpacing (the odd image
out named), no duplicate positions, uniform spacing (a gap that is a multiple of the spacing is
reported as missing slices), slices on a straight line. Read by :mod:`.dicom_read`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..errors import InputFileError
from .dicom_series import DicomSeries, DicomSlice, fg_attr
from .geometry import slice_normal

log = logging.getLogger(__name__)

#: Relative tolerance on slice gaps (fraction of the median gap).
GAP_RTOL = 0.02
#: Absolute tolerance (mm) on positions, orientations and spacings.
ATOL = 1e-3


def _same(slices: list[DicomSlice], what: str, get: Any, tol: float) -> None:
    """Refuse a series whose slices differ in ``what``, naming a slice of the minority (a
    localizer among the axial slices is the odd one, whichever file sorts first)."""

    def equal(a: Any, b: Any) -> bool:
        return (a is None and b is None) or (
            a is not None
            and b is not None
            and np.shape(a) == np.shape(b)
            and np.allclose(a, b, rtol=0, atol=tol)
        )

    values = [get(s) for s in slices]
    if all(equal(values[0], v) for v in values[1:]):
        return
    counts = [sum(equal(v, w) for w in values) for v in values]
    common = values[int(np.argmax(counts))]
    odd = next(i for i, v in enumerate(values) if not equal(v, common))
    agree = max(counts)
    raise InputFileError(
        slices[odd].path,
        f"inconsistent {what} in the series: {slices[odd].label} has {_fmt(values[odd])}, "
        f"{agree} other image(s) have {_fmt(common)}",
    )


def _fmt(v: Any) -> str:
    if v is None:
        return "none"
    return "[" + ", ".join(f"{x:.6g}" for x in np.ravel(v)) + "]" if np.ndim(v) else str(v)


def _drop_copies(slices: list[DicomSlice]) -> list[DicomSlice]:
    """Without byte-identical copies of a file (same SOPInstanceUID, same bytes: ``IM1 (1).dcm``
    beside ``IM1.dcm``), which are logged; a same-UID file that differs is kept (and then
    refused as a duplicate position)."""
    from ..io_safety import sha256_file

    first: dict[tuple[str, int | None], DicomSlice] = {}
    kept = []
    for s in slices:
        sop = str(s.ds.get("SOPInstanceUID", "") or "")
        key = (sop, s.frame)
        other = first.get(key)
        if sop and other is not None and sha256_file(other.path) == sha256_file(s.path):
            log.warning("%s: an exact copy of %s; skipped", s.label, other.label)
            continue
        first.setdefault(key, s)
        kept.append(s)
    return kept


def build_series(source: Path, uid: str, slices: list[DicomSlice]) -> DicomSeries:
    """Check and sort the slices of one series (see module docs)."""
    slices = _drop_copies(slices)
    ds0 = slices[0].ds
    rc = lambda s: (int(s.ds.Rows), int(s.ds.Columns))  # noqa: E731
    _same(slices, "Rows/Columns", lambda s: np.array(rc(s)), 0)
    enhanced = "PerFrameFunctionalGroupsSequence" in ds0
    rows, cols = rc(slices[0])
    geo = [s.position is not None and s.iop is not None for s in slices]
    head = (source, uid, slices, rows, cols)
    if len(slices) == 1 and not geo[0]:
        sp = slices[0].pixel_spacing
        ps = sp if sp is not None and len(sp) == 2 else np.ones(2)
        log.info("%s: no ImagePositionPatient/Orientation; treated as a 2-D image", slices[0].label)
        iop = np.array([1.0, 0, 0, 0, 1.0, 0])
        flat = np.array([0, 0, 1.0])
        return DicomSeries(*head, iop, ps, flat, has_geometry=False, enhanced=enhanced)
    missing = [s.label for s, ok in zip(slices, geo) if not ok]
    if missing:
        bad = next(s for s, ok in zip(slices, geo) if not ok)
        raise InputFileError(
            bad.path,
            "missing ImagePositionPatient/ImageOrientationPatient, cannot place "
            f"slice(s): {', '.join(missing[:5])}",
        )
    for s in slices:
        if s.pixel_spacing is None or len(s.pixel_spacing) != 2 or min(s.pixel_spacing) <= 0:
            raise InputFileError(s.path, f"{s.frame_note}missing or invalid PixelSpacing")
        if s.iop is None or s.iop.shape != (6,) or s.position is None or s.position.shape != (3,):
            raise InputFileError(s.path, f"{s.frame_note}malformed ImagePosition/Orientation")
    _same(slices, "ImageOrientationPatient", lambda s: s.iop, 1e-4)
    _same(slices, "PixelSpacing", lambda s: s.pixel_spacing, ATOL)
    normal = slice_normal(cast(np.ndarray, slices[0].iop))  # (all checked above)
    slices = sorted(slices, key=lambda s: float(s.position @ normal))
    step = _check_positions(source, slices, normal, ds0)
    iop, ps = cast(np.ndarray, slices[0].iop), cast(np.ndarray, slices[0].pixel_spacing)
    return DicomSeries(source, uid, slices, rows, cols, iop, ps, step, enhanced=enhanced)


def _check_positions(
    source: Path, slices: list[DicomSlice], normal: np.ndarray, ds0: Any
) -> np.ndarray:
    """Uniform spacing along the normal; returns the IPP step vector between slices."""
    if len(slices) == 1:  # no neighbour: the declared spacing (or thickness) of the slice
        item = slices[0].frame_item
        thick = (
            fg_attr(ds0, item, "PixelMeasuresSequence", "SpacingBetweenSlices")
            or fg_attr(ds0, item, "PixelMeasuresSequence", "SliceThickness")
            or ds0.get("SpacingBetweenSlices")
            or ds0.get("SliceThickness")
            or 1.0
        )
        return float(thick) * normal
    pos = np.array([s.position for s in slices])
    d = pos @ normal
    gaps = np.diff(d)
    dup = np.flatnonzero(gaps < ATOL)
    if dup.size:
        i = int(dup[0])
        raise InputFileError(
            slices[i + 1].path,
            f"{slices[i].label} and {slices[i + 1].label} share the position "
            f"{_fmt(slices[i].position)} ({dup.size} duplicate(s); multi-echo/temporal series "
            "must be split first)",
        )
    med = float(np.median(gaps))
    bad = np.flatnonzero(np.abs(gaps - med) > max(GAP_RTOL * med, ATOL))
    if bad.size:
        i = int(bad[0])
        ratio = gaps[i] / med
        a, b = slices[i], slices[i + 1]
        if abs(ratio - round(ratio)) < 0.1 and round(ratio) >= 2:
            what = f"{round(ratio) - 1} missing slice(s)"
        else:
            what = "non-uniform slice spacing"
        raise InputFileError(
            source,
            f"{what}: gap of {gaps[i]:.4g} mm between {a.label} (at {d[i]:.4g} mm) and "
            f"{b.label} (at {d[i + 1]:.4g} mm), expected {med:.4g} mm"
            + (f"; {bad.size} irregular gap(s) in all" if bad.size > 1 else ""),
        )
    step = (pos[-1] - pos[0]) / (len(pos) - 1)
    resid = np.linalg.norm(pos - (pos[0] + np.arange(len(pos))[:, None] * step), axis=1)
    if resid.max() > max(GAP_RTOL * med, ATOL):
        i = int(np.argmax(resid))
        raise InputFileError(
            slices[i].path,
            f"{slices[i].frame_note}off the line of slice positions by {resid[i]:.3g} mm",
        )
    return step


__all__ = ["ATOL", "GAP_RTOL", "build_series"]
