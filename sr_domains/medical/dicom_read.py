"""Read DICOM series with pydicom (imported lazily): scan, group, sort, check, decode.

* A folder is scanned recursively; files without the ``DICM`` preamble are ignored, DICOM files
  without pixel data (DICOMDIR, SR, ...) too. A file that claims to be DICOM but cannot be parsed
  is an error (never a silently dropped slice).
* Images are grouped by SeriesInstanceUID; several series need ``series_uid``.
* Slices are sorted by the projection of ImagePositionPatient on the slice normal
  ``cross(row_dir, col_dir)`` (never by file name or InstanceNumber). Checks: same Rows/Columns,
  ImageOrientationPatient and PixelSpacing; no duplicate positions; uniform spacing (a gap that
  is a multiple of the spacing is reported as missing slices); slices on a straight line.
* Enhanced multi-frame files (per-frame / shared functional groups) contribute one slice per
  frame. Compressed transfer syntaxes are decoded by pydicom's plugins (pylibjpeg: JPEG, JPEG
  2000, JPEG-LS, RLE). RescaleSlope/Intercept are applied per slice (or frame).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import numpy as np

from ..errors import InputFileError
from .dicom_series import DicomSeries, DicomSlice, _pydicom, fg_attr, frame_count, slices_of
from .geometry import slice_normal

log = logging.getLogger(__name__)

#: Relative tolerance on slice gaps (fraction of the median gap).
GAP_RTOL = 0.02
#: Absolute tolerance (mm) on positions, orientations and spacings.
ATOL = 1e-3


def has_dicm_preamble(path: Path) -> bool:
    """True when ``path`` is a file with ``DICM`` at byte 128 (DICOM Part 10)."""
    try:
        with open(path, "rb") as f:
            f.seek(128)
            return f.read(4) == b"DICM"
    except OSError:
        return False


def walk_files(folder: Path) -> Iterator[Path]:
    """Files under ``folder``, recursively, in sorted order, following symbolic links to
    folders (PACS exports and study trees often link series in) but visiting each real folder
    once, so a link loop ends. Hidden files and folders (temporaries) are skipped."""
    seen: set[tuple[int, int]] = set()

    def visit(d: Path) -> Iterator[Path]:
        try:
            st = d.stat()
        except OSError:
            return
        if (st.st_dev, st.st_ino) in seen:
            log.debug("%s: already visited (a link loop or a second link), skipped", d)
            return
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(d), key=lambda e: e.name)
        except OSError as exc:
            log.warning("%s: cannot list (%s), skipped", d, exc.strerror or exc)
            return
        for e in entries:
            if e.name.startswith("."):
                continue
            p = Path(e.path)
            if p.is_dir():
                yield from visit(p)
            elif p.is_file():
                yield p
            elif p.is_symlink() and not p.exists():  # could be a slice: say so (no gap to see)
                log.warning("%s: broken link (to %s), skipped", p, os.readlink(p))

    yield from visit(folder)


def dicom_files(path: Path) -> list[Path]:
    """Part-10 DICOM files under ``path`` (recursive, sorted, symbolic links followed, hidden
    files skipped) or ``[path]`` for a file."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputFileError(path, "no such file or folder")
    return [p for p in walk_files(path) if has_dicm_preamble(p)]


def read_header(path: Path) -> Any | None:
    """The dataset of an image file with its pixel data deferred, or None for a non-image."""
    pydicom = _pydicom()
    try:
        ds = pydicom.dcmread(path, defer_size="256 KB")
    except pydicom.errors.InvalidDicomError as exc:
        raise InputFileError(path, f"not a valid DICOM file ({exc})") from exc
    except Exception as exc:  # truncated headers raise EOFError, struct.error, ...
        raise InputFileError(path, f"cannot parse the DICOM header ({exc})") from exc
    if "PixelData" not in ds:
        if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
            raise InputFileError(path, "float pixel data is not supported")
        meta = getattr(ds, "file_meta", None)
        sop = ds.get("SOPClassUID") or (meta.get("MediaStorageSOPClassUID") if meta else None)
        if not sop:
            raise InputFileError(path, "no SOP Class UID: a truncated file or not a DICOM object")
        if "Image Storage" in getattr(sop, "name", ""):
            raise InputFileError(path, f"{sop.name} without pixel data (truncated file?)")
        return None  # DICOMDIR, structured report, presentation state, ...
    return ds


# -- series ----------------------------------------------------------------------------------
#: The problem of the :class:`InputFileError` for a path holding no DICOM image at all.
NO_DICOM = "no DICOM images found"


@dataclass(frozen=True)
class SeriesSummary:
    """One series of a folder, for listings and error messages."""

    uid: str
    description: str
    modality: str
    n_images: int
    files: tuple[Path, ...]

    def __str__(self) -> str:
        desc = f" {self.description!r}" if self.description else ""
        return f"{self.uid} ({self.modality}{desc}, {self.n_images} image(s))"


def scan_series(
    path: str | os.PathLike[str], bad: list[Path] | None = None
) -> dict[str, list[tuple[Path, Any]]]:
    """``{SeriesInstanceUID: [(file, dataset), ...]}`` of the image files under ``path``. A
    file that cannot be read raises, or with a ``bad`` list is appended to it and left out."""
    p = Path(path)
    groups: dict[str, list[tuple[Path, Any]]] = defaultdict(list)
    for f in dicom_files(p):
        try:
            ds = read_header(f)
            if ds is None:
                log.debug("%s: no pixel data, ignored", f)
                continue
            uid = str(ds.get("SeriesInstanceUID", "") or "")
            if not uid and not p.is_file():  # a lone file is its own series
                raise InputFileError(f, "missing SeriesInstanceUID (0020,000E)")
        except InputFileError:
            if bad is None:
                raise
            bad.append(f)
            continue
        groups[uid].append((f, ds))
    if not groups and not bad:
        raise InputFileError(p, NO_DICOM)
    return dict(groups)


def summarize(groups: dict[str, list[tuple[Path, Any]]]) -> list[SeriesSummary]:
    out = []
    for uid, items in groups.items():
        ds = items[0][1]
        n = sum(frame_count(f, d) for f, d in items)
        out.append(
            SeriesSummary(
                uid,
                str(ds.get("SeriesDescription", "")),
                str(ds.get("Modality", "OT")),
                n,
                tuple(f for f, _ in items),
            )
        )
    return out


def list_dicom_series(path: str | os.PathLike[str]) -> list[SeriesSummary]:
    """The image series found under a folder (or in a file)."""
    return summarize(scan_series(path))


def load_dicom_series(path: str | os.PathLike[str], series_uid: str | None = None) -> DicomSeries:
    """Scan ``path`` (folder or file), pick a series, check and sort it (headers only).

    Raises:
        InputFileError: several series and no ``series_uid`` (the message lists them), or any
            inconsistency (naming the files involved).
    """
    p = Path(path)
    if series_uid is None:  # (any unreadable file might be a slice of the one series)
        return select_series(p, scan_series(p), series_uid)
    bad: list[Path] = []
    groups = scan_series(p, bad=bad)
    if bad:
        _check_unreadable(bad, groups.get(series_uid, []), series_uid)
    return select_series(p, groups, series_uid)


def _check_unreadable(bad: list[Path], files: list[tuple[Path, Any]], series_uid: str) -> None:
    """Unreadable files beside the series asked for by name: one in a folder of its files
    could be a lost slice of it, so its error is raised; the others (a study tree's other
    series) are named in a warning and left out."""
    folders = {f.parent for f, _ in files}
    near = [f for f in bad if f.parent in folders]
    if near or not files:
        first = near[0] if near else bad[0]
        read_header(first)  # (raises that file's own error, else it had no series UID)
        raise InputFileError(first, "missing SeriesInstanceUID (0020,000E)")
    log.warning(
        "%d unreadable DICOM file(s) outside the folders of series %s left out: %s",
        len(bad),
        series_uid,
        ", ".join(str(f) for f in bad[:5]) + (" ..." if len(bad) > 5 else ""),
    )


def select_series(
    p: Path, groups: dict[str, list[tuple[Path, Any]]], series_uid: str | None = None
) -> DicomSeries:
    """Pick, check and sort one series of :func:`scan_series` output."""
    if series_uid is None:
        if len(groups) > 1:
            listing = "\n  ".join(str(s) for s in summarize(groups))
            raise InputFileError(
                p,
                f"holds {len(groups)} series; choose one with series_uid= (CLI: --series UID):"
                f"\n  {listing}",
            )
        series_uid = next(iter(groups))
    if series_uid not in groups:
        raise InputFileError(
            p, f"no series {series_uid!r}; found: " + ", ".join(str(s) for s in summarize(groups))
        )
    slices = [s for f, ds in groups[series_uid] for s in slices_of(f, ds)]
    return build_series(p, series_uid, slices)


def _same(slices: list[DicomSlice], what: str, get: Any, tol: float) -> None:
    ref = get(slices[0])
    for s in slices[1:]:
        v = get(s)
        same = (ref is None and v is None) or (
            ref is not None
            and v is not None
            and np.shape(ref) == np.shape(v)
            and np.allclose(ref, v, rtol=0, atol=tol)
        )
        if not same:
            raise InputFileError(
                s.path,
                f"inconsistent {what} in the series: {s.label} has {_fmt(v)}, "
                f"{slices[0].label} has {_fmt(ref)}",
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
    if len(slices) == 1 and not geo[0]:
        sp = slices[0].pixel_spacing
        ps = sp if sp is not None and len(sp) == 2 else np.ones(2)
        log.info("%s: no ImagePositionPatient/Orientation; treated as a 2-D image", slices[0].label)
        iop = np.array([1.0, 0, 0, 0, 1.0, 0])
        return DicomSeries(
            source,
            uid,
            slices,
            rows,
            cols,
            iop,
            ps,
            np.array([0, 0, 1.0]),
            has_geometry=False,
            enhanced=enhanced,
        )
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
    return DicomSeries(
        source,
        uid,
        slices,
        rows,
        cols,
        cast(np.ndarray, slices[0].iop),
        cast(np.ndarray, slices[0].pixel_spacing),
        step,
        enhanced=enhanced,
    )


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


def read_dicom_volume(
    path: str | os.PathLike[str], series_uid: str | None = None
) -> tuple[np.ndarray, np.ndarray, DicomSeries]:
    """``(volume (slice, row, column) in modality units, LPS affine, series)``; the volume is
    float32, float64 for a 32-bit series (:meth:`DicomSeries.read_volume`)."""
    series = load_dicom_series(path, series_uid)
    return series.read_volume(), series.affine, series


__all__ = [
    "NO_DICOM",
    "DicomSeries",
    "DicomSlice",
    "SeriesSummary",
    "build_series",
    "dicom_files",
    "has_dicm_preamble",
    "list_dicom_series",
    "load_dicom_series",
    "read_dicom_volume",
    "scan_series",
    "select_series",
]
