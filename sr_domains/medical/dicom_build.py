"""Check and sort the slices of one DICOM series into a :class:`DicomSeries`: byte-identical
copies dropped, the same Rows/Columns, ImageOrientationPatient and PixelSpacing (the odd image
out named), no duplicate positions, uniform spacing (each gap within 2 % of the median gap, or,
for positions written with few decimals, of the spacing fitted to them, allowing for that
rounding; a gap that is a multiple of the spacing is reported as missing slices), slices on a
straight line. Read by :mod:`.dicom_read`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..errors import InputFileError
from .dicom_series import DicomSeries, DicomSlice, fg_attr
from .geometry import slice_normal

log = logging.getLogger(__name__)

#: Relative tolerance on slice gaps and positions (fraction of the median gap, or of the fitted
#: spacing, with more where the rounding of the stored positions explains it:
#: :func:`position_rounding`).
GAP_RTOL = 0.02
#: Absolute tolerance (mm) on positions, orientations and spacings.
ATOL = 1e-3
#: What a quoted spacing is, in the refusals.
FITTED = "the spacing fitted to the slice positions"


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
        # without PixelSpacing 1 x 1 is a placeholder: never written, and ``info`` says
        # unknown (dicom_adapter.in_plane_spacing)
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
    """Uniform spacing along the normal; returns the IPP step vector between slices. Read if
    every gap is within :data:`GAP_RTOL` of the median gap and every position that near the
    line between the two ends (the rule of old, for any decimals), or, for positions written
    with so few decimals that their rounding goes beyond that (:func:`position_rounding`), if
    each gap is near the spacing of the least-squares line through the positions and each
    position near that line (tolerance :func:`_slack`)."""
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
    k = np.arange(len(d), dtype=np.float64)
    step = (pos[-1] - pos[0]) / (len(pos) - 1)
    off = np.linalg.norm(pos - (pos[0] + k[:, None] * step), axis=1)
    med = float(np.median(gaps))
    tol = max(GAP_RTOL * med, ATOL)
    wide = np.flatnonzero(np.abs(gaps - med) > tol)
    if not wide.size and off.max() <= tol:
        return step  # the median rule: a series it accepts is read, whatever the decimals
    half = position_rounding(slices)
    spacing, resid = _fit(k, d)
    # rounding along the normal: a gap carries two errors, a residual from the fit up to ~2.7
    slack = _slack(3 * half * float(np.abs(normal).sum()), spacing)
    line = tol
    if slack > _slack(0.0, spacing):  # rounding matters: the fitted spacing, allowing for it
        bad = np.flatnonzero(np.abs(gaps - spacing) > slack)
        if bad.size or np.abs(resid).max() > slack:
            _refuse_spacing(source, slices, d, resid, bad, spacing, slack)
        line = _slack(2 * half * np.sqrt(3), spacing)  # (and the two ends' errors)
    elif wide.size:  # rounding too small to matter (full precision): the median rule alone
        _refuse_spacing(source, slices, d, resid, wide, med, tol, basis="the median gap")
    if off.max() > line:
        i = int(np.argmax(off))
        raise InputFileError(
            slices[i].path,
            f"{slices[i].frame_note}off the line of slice positions by {off[i]:.3g} mm",
        )
    return step


def _fit(k: np.ndarray, d: np.ndarray) -> tuple[float, np.ndarray]:
    """``(spacing, residuals)`` of the least-squares line ``d = a + spacing * k``."""
    b, a = np.polyfit(k, d, 1)
    return float(b), d - (a + b * k)


def _slack(rounding: float, spacing: float) -> float:
    """How far a gap may differ from the fitted spacing, or a position from the fitted line:
    :data:`GAP_RTOL` of the spacing, :data:`ATOL`, or what rounding the stored positions to
    the decimals they were written with can explain (``rounding``, mm), up to a fifth of the
    spacing (a missing slice never hides in it)."""
    return max(GAP_RTOL * spacing, ATOL, min(rounding, 0.2 * spacing))


def position_rounding(slices: list[DicomSlice]) -> float:
    """Half a unit in the last decimal place the ImagePositionPatient values of the series
    were written with: every value written to one decimal (``-301.2``) gives 0.05 mm. The
    writer's precision is what its most precise value shows (``-10.0`` beside ``-9.123456``
    is a round number written to 6 decimals), so a series with any full-precision value gives
    a rounding too small to matter and is judged by the median rule alone, as before
    (:func:`_check_positions`)."""
    places = None
    for s in slices:
        raw = (
            fg_attr(s.ds, s.frame_item, "PlanePositionSequence", "ImagePositionPatient")
            if s.frame_item is not None
            else s.ds.get("ImagePositionPatient")
        )
        for v in list(raw or []):
            n = _places(str(getattr(v, "original_string", None) or v))
            if n is None:
                return 0.0
            places = n if places is None else max(places, n)
    return 0.0 if places is None else 0.5 * 10.0**-places


def _places(text: str) -> int | None:
    """Decimal places of a decimal string (``"1.25"``: 2, ``"3e2"``: -2); None if unreadable."""
    mant, _, exp = text.strip().lower().partition("e")
    try:
        return len(mant.partition(".")[2]) - int(exp or 0)
    except ValueError:
        return None


def _refuse_spacing(
    source: Path,
    slices: list[DicomSlice],
    d: np.ndarray,
    resid: np.ndarray,
    bad: np.ndarray,
    spacing: float,
    slack: float,
    basis: str = FITTED,
) -> None:
    """Raise for positions ``d`` (along the normal) that no uniform spacing explains: missing
    slices when the positions fit a line once a whole number of slices is put in each wide
    gap (quoting the spacing fitted to them), else non-uniform spacing: the gaps ``bad``
    differ from ``spacing`` (``basis`` says what it is) by more than ``slack``."""
    gaps = np.diff(d)
    med = float(np.median(gaps))
    single = gaps[np.abs(gaps - med) <= 0.25 * med]  # one spacing each: their mean has the
    # rounding of a run's two ends only (none such, as in gaps 1 and 3: no spacing to count in)
    idx = np.rint((d - d[0]) / float(single.mean())) if single.size else np.arange(len(d))
    if np.all(np.diff(idx) >= 1) and idx[-1] > len(d) - 1:
        fitted, resid = _fit(idx, d)
        if np.abs(resid).max() <= slack:
            jumps = np.flatnonzero(np.diff(idx) > 1)
            i = int(jumps[0])
            more = (
                f"; {int((np.diff(idx) - 1).sum())} missing slice(s) in {jumps.size} gaps in all"
                if jumps.size > 1
                else ""
            )
            raise InputFileError(
                source, _gap_text(slices, d, i, fitted, f"{int(idx[i + 1] - idx[i]) - 1}") + more
            )
    if not bad.size:  # every gap near the spacing, yet the positions drift off a line
        i = int(np.argmax(np.abs(resid)))
        raise InputFileError(
            source,
            f"non-uniform slice spacing: {slices[i].label} (at {d[i]:.4g} mm) lies "
            f"{abs(resid[i]):.3g} mm off the uniform spacing of {spacing:.4g} mm fitted to "
            "the slice positions",
        )
    raise InputFileError(
        source,
        _gap_text(slices, d, int(bad[0]), spacing, "", basis)
        + (f"; {bad.size} irregular gap(s) in all" if bad.size > 1 else ""),
    )


def _gap_text(
    slices: list[DicomSlice], d: np.ndarray, i: int, spacing: float, lost: str, basis: str = FITTED
) -> str:
    what = f"{lost} missing slice(s)" if lost else "non-uniform slice spacing"
    a, b = slices[i], slices[i + 1]
    return (
        f"{what}: gap of {d[i + 1] - d[i]:.4g} mm between {a.label} (at {d[i]:.4g} mm) and "
        f"{b.label} (at {d[i + 1]:.4g} mm), expected {spacing:.4g} mm ({basis})"
    )


__all__ = ["ATOL", "GAP_RTOL", "build_series"]
