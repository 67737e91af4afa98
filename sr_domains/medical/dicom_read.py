"""Read DICOM series with pydicom (imported lazily): scan, group, sort, check, decode.

* A folder is scanned recursively; files without the ``DICM`` preamble are ignored, DICOM files
  without pixel data (DICOMDIR, SR, ...) too. A file that claims to be DICOM but cannot be parsed
  is an error (never a silently dropped slice).
* Images are grouped by SeriesInstanceUID; several series need ``series_uid``.
* Slices are sorted by the projection of ImagePositionPatient on the slice normal
  ``cross(row_dir, col_dir)`` (never by file name or InstanceNumber) and checked
  (:mod:`.dicom_build`): same Rows/Columns, ImageOrientationPatient and PixelSpacing; no
  duplicate positions; uniform spacing (a gap that is a multiple of the spacing is reported as
  missing slices); slices on a straight line.
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
from typing import Any

import numpy as np

from ..errors import InputFileError
from .dicom_build import build_series
from .dicom_series import DicomSeries, DicomSlice, _pydicom, frame_count, slices_of, text_value

log = logging.getLogger(__name__)


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
        desc = f" '{self.description}'" if self.description else ""  # (as stored: not a repr)
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
                text_value(ds.get("SeriesDescription", "")),
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
