"""``sr-domains`` adapter for DICOM series (folder or file); pydicom is imported lazily."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputFileError, UnreadableFilesError
from ..options import UpscaleOptions, check_supported
from .dicom_read import has_dicm_preamble

if TYPE_CHECKING:  # no torch import just to sniff a file
    from ..models.base import SRModel
    from .dicom_series import DicomSeries

#: Files looked at when sniffing a folder.
SNIFF_FILES = 200


def sniff(path: Path) -> bool:
    """A Part-10 DICOM file, or a folder with one among its first files (recursively)."""
    p = Path(path)
    if p.is_file():
        return has_dicm_preamble(p) or p.suffix.lower() == ".dcm"
    if not p.is_dir():
        return False
    from .dicom_read import walk_files

    for seen, f in enumerate(walk_files(p), 1):
        if has_dicm_preamble(f):
            return True
        if seen >= SNIFF_FILES:
            return False
    return False


def _built(path: Path, groups: dict) -> dict[str, DicomSeries | InputFileError]:
    """Each series checked and sorted as ``upscale`` does it (``--series UID``), or the error
    that run would stop with (missing slices, non-uniform spacing, mixed sizes, ...)."""
    from .dicom_read import select_series

    out: dict[str, DicomSeries | InputFileError] = {}
    for uid in groups:
        try:
            out[uid] = select_series(path, groups, uid)
        except InputFileError as exc:
            out[uid] = exc
    return out


def _pair(value: Any) -> np.ndarray | None:
    """A two-value spacing tag as floats, or None when absent or not two positive numbers."""
    try:
        out = np.array([float(v) for v in value], np.float64)
    except (TypeError, ValueError):
        return None
    return out if out.shape == (2,) and (out > 0).all() else None


def in_plane_spacing(s: DicomSeries) -> tuple[np.ndarray | None, str]:
    """The in-plane spacing ``(between rows, between columns)`` in mm that ``info`` states,
    and what it is: the series' ``PixelSpacing``; for a 2-D image without it, the
    ``ImagerPixelSpacing`` (at the detector; the derived image divides it too), else None:
    unknown (the reader's 1 x 1 mm placeholder is not stated)."""
    if s.has_geometry or s.slices[0].pixel_spacing is not None:
        return s.pixel_spacing, "PixelSpacing"
    imager = _pair(s.first.get("ImagerPixelSpacing"))
    return (imager, "ImagerPixelSpacing") if imager is not None else (None, "")


def stated_slice_spacing(s: DicomSeries) -> float | None:
    """The spacing between slices ``info`` states, or None: a 2-D image (no positions: no
    slices to be between) or one placed slice whose header states no SpacingBetweenSlices or
    SliceThickness (the reader's 1 mm there is a placeholder; ``dicom_build``)."""
    if not s.has_geometry:
        return None
    if s.n_slices == 1:
        from .dicom_slice import fg_attr

        ds, item = s.first, s.slices[0].frame_item
        stated = [
            fg_attr(ds, item, "PixelMeasuresSequence", key) or ds.get(key)
            for key in ("SpacingBetweenSlices", "SliceThickness")
        ]
        if not any(stated):  # (as dicom_build reads them: absent, empty or 0)
            return None
    return s.slice_spacing


def _describe(s: DicomSeries | InputFileError) -> list[str]:
    from .dicom_series import header_thickness
    from .geometry import axis_codes, obliquity_deg, plane_name

    if isinstance(s, InputFileError):
        return [f"  problem    {s}"]
    ds = s.first
    ts = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    ps, source = in_plane_spacing(s)
    # enhanced: in the pixel measures functional group (a top-level 0 is "unknown")
    thick = header_thickness(ds, s.slices[0].frame_item)
    if ps is None:
        spacing = "unknown (no PixelSpacing)"
    elif source == "ImagerPixelSpacing":
        spacing = (
            f"{ps[0]:.6g} x {ps[1]:.6g} mm at the detector (ImagerPixelSpacing; no PixelSpacing)"
        )
    elif not s.has_geometry:
        spacing = f"{ps[0]:.6g} x {ps[1]:.6g} mm in-plane"
    elif stated_slice_spacing(s) is None:
        spacing = (
            f"{ps[0]:.6g} x {ps[1]:.6g} mm in-plane; between slices unknown (one slice, no "
            "SpacingBetweenSlices or SliceThickness)"
        )
    else:
        spacing = (
            f"{ps[0]:.6g} x {ps[1]:.6g} mm in-plane, {s.slice_spacing:.6g} mm between "
            f"slices (SliceThickness {_thickness(thick)})"
        )
    lines = [
        f"  size       {s.n_slices} slice(s) x {s.rows} rows x {s.cols} columns"
        + (" (enhanced multi-frame)" if s.enhanced else ""),
        f"  spacing    {spacing}",
    ]
    if s.has_geometry:
        assert s.slices[0].position is not None  # has_geometry: every slice is placed
        assert s.slices[-1].position is not None
        codes = axis_codes(s.affine, "LPS")
        lines.append(
            f"  orientation {plane_name(codes[0])}, IOP {[round(float(v), 5) for v in s.iop]}; "
            f"slice/row/column axes point to {','.join(codes)}, oblique by "
            f"{obliquity_deg(s.affine):.2f} deg"
        )
        lines.append(
            "  first IPP  "
            + ", ".join(f"{v:.4f}" for v in s.slices[0].position)
            + "  last IPP "
            + ", ".join(f"{v:.4f}" for v in s.slices[-1].position)
        )
    else:
        lines.append("  orientation none (no ImagePosition/Orientation; a 2-D image)")
    rs = {str(x.lut) if x.lut is not None else (x.slope, x.intercept) for x in s.slices}
    one = next(iter(rs))
    rescale = (
        "per slice" if len(rs) > 1 else one if isinstance(one, str) else "{:g}, {:g}".format(*one)
    )
    lines.append(
        f"  pixels     {ds.get('BitsStored')}/{ds.get('BitsAllocated')} bits, "
        f"{'signed' if ds.get('PixelRepresentation') == 1 else 'unsigned'}, "
        f"{'' if rescale.startswith('Modality LUT') else 'rescale '}{rescale}, "
        f"{getattr(ts, 'name', ts)}"
    )
    lines.append(
        f"  study      {ds.get('StudyInstanceUID', '?')}  frame of reference "
        f"{ds.get('FrameOfReferenceUID', '?')}"
    )
    new = np.array([s.rows, s.cols]) * 2
    of = "" if ps is None else f" of {ps[0] / 2:.6g} x {ps[1] / 2:.6g} mm"
    if source == "ImagerPixelSpacing":
        of += " (ImagerPixelSpacing)"
    lines.append(f"  SR x2 ->   {new[0]} x {new[1]} pixels{of}")
    return lines


def _thickness(value: Any) -> str:
    """A header ``SliceThickness`` as ``info`` shows it: absent, empty or 0 (DICOM's "unknown",
    a Type 2 tag) said so, with what ``--isotropic`` takes instead: the slice spacing
    (:func:`~sr_domains.medical.isotropic_io.checked_thickness`)."""
    instead = "--isotropic uses the slice spacing"
    if value is None or not str(value).strip():
        return f"not given: {instead}"
    try:
        zero = not isinstance(value, bool) and float(value) == 0
    except (TypeError, ValueError):
        zero = False
    return f"0, unknown: {instead}" if zero else str(value)


def info_json(path: Path) -> dict[str, Any]:
    """:func:`info` as JSON-ready data: every series with its size, spacing and geometry (or
    its ``problem``), the unreadable and the undecodable files (which raise as in
    :func:`info`)."""
    from .dicom_read import summarize

    groups, bad = _scan(path)
    built = _built(Path(path), groups)
    undecodable = _undecodable(groups)
    out = []
    for s in summarize(groups):
        entry: dict[str, Any] = {
            "uid": s.uid,
            "description": s.description,
            "modality": s.modality,
            "n_images": s.n_images,
            "n_files": len(s.files),
        }
        ser = built[s.uid]
        if isinstance(ser, InputFileError):
            entry["problem"] = str(ser)
        else:
            ps, source = in_plane_spacing(ser)
            known = ps is not None and source == "PixelSpacing"
            if ps is not None and not known:
                entry["imager_pixel_spacing"] = [float(v) for v in ps]
            entry.update(
                n_slices=ser.n_slices,
                rows=ser.rows,
                columns=ser.cols,
                pixel_spacing=[float(v) for v in ps] if known and ps is not None else None,
                slice_spacing=stated_slice_spacing(ser),  # (None: a 2-D image, or unstated)
                enhanced=bool(ser.enhanced),
                affine_lps=ser.affine.tolist() if ser.has_geometry else None,
            )
        out.append(entry)
    report = {
        "path": str(path),
        "series": out,
        "unreadable": [_problem(f) for f in bad],
        "undecodable": [str(e) for errors in undecodable.values() for e in errors],
    }
    _check_files(bad, built, undecodable, report)
    return report


def _scan(path: Path) -> tuple[dict[str, list[tuple[Path, Any]]], list[Path]]:
    """The series under ``path`` and the unreadable files left out (a study tree's broken file
    does not hide its intact series); no series at all raises the first file's error."""
    from .dicom_read import scan_series

    bad: list[Path] = []
    groups = scan_series(path, bad=bad)
    if not groups:
        raise InputFileError(bad[0], _problem(bad[0]).removeprefix(f"{bad[0]}: "))
    return groups, bad


def _problem(f: Path) -> str:
    """The error of an unreadable file :func:`~sr_domains.medical.dicom_read.scan_series` left
    out, as one line naming it."""
    return str(_error(f))


def _error(f: Path) -> InputFileError:
    """The error of an unreadable file :func:`~sr_domains.medical.dicom_read.scan_series` left
    out."""
    from .dicom_read import read_header

    try:
        read_header(f)
    except InputFileError as exc:
        return exc
    return InputFileError(f, "missing SeriesInstanceUID (0020,000E)")


def _undecodable(groups: dict[str, list[tuple[Path, Any]]]) -> dict[str, list[InputFileError]]:
    """``{series uid: [error, ...]}`` of the files whose pixel data cannot be decoded, each
    decoded as ``upscale`` decodes it (one file at a time)."""
    from .dicom_series import decode_pixels

    out: dict[str, list[InputFileError]] = {}
    for uid, items in groups.items():
        for f, ds in items:
            try:
                decode_pixels(f, ds)
            except InputFileError as exc:
                out.setdefault(uid, []).append(exc)
    return out


def _check_files(
    bad: list[Path],
    built: dict[str, DicomSeries | InputFileError],
    undecodable: dict[str, list[InputFileError]],
    report: Any,
) -> None:
    """Raise :class:`UnreadableFilesError` (carrying ``report``) when a file could not be read
    or decoded, or a series would be refused by ``upscale``."""
    errors = [_error(f) for f in bad]
    errors += [e for e in built.values() if isinstance(e, InputFileError)]
    errors += [e for es in undecodable.values() for e in es]
    if errors:
        raise UnreadableFilesError(errors[0], len(errors) - 1, report)


def info(path: Path) -> str:
    """The series in a folder (or file): size, spacing, orientation, encoding, problems. Every
    file's pixel data is decoded: a file that cannot be read or decoded, or a series that
    ``upscale`` refuses (missing slices, non-uniform spacing, ...), raises
    :class:`~sr_domains.errors.UnreadableFilesError` naming the first, which carries the
    summary."""
    from .dicom_read import summarize

    groups, bad = _scan(path)
    built = _built(Path(path), groups)
    undecodable = _undecodable(groups)
    series = summarize(groups)
    lines = [f"{path}: {len(series)} DICOM series"]
    for s in series:
        lines.append(f"series {s}")
        if s.description:
            lines.append(f"  description {s.description}")
        lines.extend(_describe(built[s.uid]))
        lines.extend(f"  problem    {e}" for e in undecodable.get(s.uid, []))
    if bad:
        lines.append(f"{len(bad)} unreadable file(s), left out:")
        lines.extend(f"  problem    {_problem(f)}" for f in bad)
    text = "\n".join(lines)
    _check_files(bad, built, undecodable, text)
    return text


def upscale(
    src: Path, dst: Path, options: UpscaleOptions, model: SRModel | None = None
) -> list[Path]:
    """Run :func:`sr_domains.medical.upscale_dicom_series` (or, with ``--isotropic``,
    :func:`~sr_domains.medical.isotropic_api.isotropic_dicom`) with CLI options."""
    check_supported(options, "DICOM", {"through_plane", "series_uid", "isotropic"})
    if options.isotropic is not None:
        from .isotropic_api import isotropic_dicom

        return isotropic_dicom(src, dst, options)
    from .api import run_dicom_series

    return run_dicom_series(src, dst, options, model=model)
