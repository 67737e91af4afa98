"""One 2-D image of a DICOM series (a single-frame file or one frame of a multi-frame file):
its tags read as numbers and checked, naming the file and the tag.

Per-slice attributes come from the classic tags or, for enhanced multi-frame files, from the
per-frame functional groups (falling back to the shared ones): position, orientation, pixel
spacing, RescaleSlope/Intercept or a Modality LUT (``ModalityLUTSequence``, classic files).
Objects that are no intensity images (segmentations, RT Dose), colour and palette images are
refused. :class:`~sr_domains.medical.dicom_series.DicomSeries` holds the checked slices.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputFileError
from .modality_lut import ModalityLut, modality_lut

log = logging.getLogger(__name__)


@dataclass
class DicomSlice:
    """One 2-D image of a series: a single-frame file or one frame of a multi-frame file."""

    path: Path
    ds: Any
    frame: int | None
    position: np.ndarray | None
    iop: np.ndarray | None
    pixel_spacing: np.ndarray | None
    slope: float = 1.0
    intercept: float = 0.0
    frame_item: Any = None  # per-frame functional group item (enhanced files)
    lut: ModalityLut | None = None  # replaces slope/intercept when present

    @property
    def label(self) -> str:
        return self.path.name if self.frame is None else f"{self.path.name} frame {self.frame + 1}"

    @property
    def frame_note(self) -> str:
        """``"frame N: "`` for a frame of a multi-frame file, else empty: a message prefix
        after the file's path (which the error names already)."""
        return "" if self.frame is None else f"frame {self.frame + 1}: "


def fg_attr(ds: Any, item: Any, seq: str, attr: str) -> Any:
    """An attribute from a functional group macro: per-frame item first, then shared."""
    shared = ds.get("SharedFunctionalGroupsSequence")
    for grp in (item, shared[0] if shared else None):
        if grp is not None and seq in grp and len(grp[seq].value) and attr in grp[seq][0]:
            return grp[seq][0][attr].value
    return None


def header_thickness(ds: Any, item: Any) -> Any:
    """The raw ``SliceThickness`` of an image: the top-level tag, unless it is absent, empty
    or 0 (unknown) and the functional groups (``PixelMeasuresSequence``, per-frame ``item``
    first, then shared) of an enhanced image give one; None when neither exists."""
    top = ds.get("SliceThickness")
    if item is None or not _zero_or_empty(top):
        return top
    fg = fg_attr(ds, item, "PixelMeasuresSequence", "SliceThickness")
    return top if fg is None else fg


def _zero_or_empty(v: Any) -> bool:
    if v is None or (isinstance(v, str) and not v.strip()):
        return True
    try:
        return float(v) == 0
    except (TypeError, ValueError):
        return False


#: Tags read as numbers, with their (group,element) for messages.
TAGS = {
    "NumberOfFrames": "0028,0008",
    "ImagePositionPatient": "0020,0032",
    "ImageOrientationPatient": "0020,0037",
    "PixelSpacing": "0028,0030",
    "RescaleSlope": "0028,1053",
    "RescaleIntercept": "0028,1052",
}


def frame_count(path: Path, ds: Any) -> int:
    """NumberOfFrames (1 when absent or empty); a value that is no positive integer is an
    :class:`InputFileError` naming the file and the tag."""
    v = ds.get("NumberOfFrames", 1)
    try:
        n = int(v or 1)
    except (TypeError, ValueError):
        n = 0
    if n < 1:
        raise InputFileError(path, f"NumberOfFrames ({TAGS['NumberOfFrames']}) is {v!r}")
    return n


def _floats(path: Path, key: str, v: Any, n: int) -> np.ndarray | None:
    """``n`` finite numbers of the tag ``key`` (None when absent or empty), else an
    :class:`InputFileError` naming the file, the tag and its value."""
    if v is None or (hasattr(v, "__len__") and len(v) == 0):
        return None
    items = list(v) if hasattr(v, "__iter__") and not isinstance(v, (str, bytes)) else [v]
    try:
        out = np.asarray([float(x) for x in items], np.float64)
    except (TypeError, ValueError):
        out = np.asarray([np.nan])
    if out.shape != (n,) or not np.isfinite(out).all():
        shown = "\\".join(str(x) for x in items)
        want = "a finite number" if n == 1 else f"{n} finite numbers"
        raise InputFileError(path, f"{key} ({TAGS[key]}) must be {want}, got '{shown}'")
    return out


def _checked_plane(path: Path, iop: np.ndarray | None, spacing: np.ndarray | None) -> None:
    """Refuse an orientation whose row and column directions are no two orthogonal unit
    vectors, and a pixel spacing that is not positive (no geometry follows from either)."""
    if iop is not None:
        row, col = iop[:3], iop[3:]
        unit = np.allclose([np.linalg.norm(row), np.linalg.norm(col)], 1.0, atol=1e-2)
        if not unit or abs(float(row @ col)) > 1e-2:
            shown = "\\".join(f"{x:g}" for x in iop)
            raise InputFileError(
                path,
                f"ImageOrientationPatient ({TAGS['ImageOrientationPatient']}) {shown} is not "
                "two orthogonal unit vectors (row and column directions)",
            )
    if spacing is not None and not (spacing > 0).all():
        shown = "\\".join(f"{x:g}" for x in spacing)
        raise InputFileError(path, f"PixelSpacing ({TAGS['PixelSpacing']}) {shown} is not positive")


def _rescale(path: Path, slope: Any, inter: Any) -> tuple[float, float]:
    """RescaleSlope and RescaleIntercept (1 and 0 when absent); a slope of 0 (every value
    the same) or a value that is no finite number is refused, naming the file."""
    m = _floats(path, "RescaleSlope", None if slope == "" else slope, 1)
    b = _floats(path, "RescaleIntercept", None if inter == "" else inter, 1)
    m0 = 1.0 if m is None else float(m[0])
    if m0 == 0.0:
        raise InputFileError(
            path,
            f"RescaleSlope ({TAGS['RescaleSlope']}) is 0: every stored value would mean "
            "the same, so the pixel values are undefined",
        )
    return m0, 0.0 if b is None else float(b[0])


def _slice(
    path: Path,
    ds: Any,
    frame: int | None,
    tags: tuple[Any, Any, Any, Any, Any],
    item: Any = None,
    lut: ModalityLut | None = None,
) -> DicomSlice:
    """One slice from the raw values of its IPP, IOP, PixelSpacing, slope and intercept."""
    pos, ori, ps, slope, inter = tags
    iop = _floats(path, "ImageOrientationPatient", ori, 6)
    spacing = _floats(path, "PixelSpacing", ps, 2)
    _checked_plane(path, iop, spacing)
    ipp = _floats(path, "ImagePositionPatient", pos, 3)
    m, b = (1.0, 0.0) if lut is not None else _rescale(path, slope, inter)
    return DicomSlice(path, ds, frame, ipp, iop, spacing, m, b, item, lut)


_SEG = "DICOM Segmentation objects are not supported (they are label maps)"
_RTDOSE = "RT Dose objects are not supported (dose grids scaled by DoseGridScaling)"
#: Objects with pixel data that are no intensity images, by Modality and by SOP Class UID
#: (Segmentation, Label Map and Heightmap Segmentation, RT Dose). Objects without pixel data
#: (structure sets, reports, presentation states) are skipped when a folder is scanned.
_NOT_IMAGES = {
    "SEG": _SEG,
    "1.2.840.10008.5.1.4.1.1.66.4": _SEG,
    "1.2.840.10008.5.1.4.1.1.66.7": _SEG,
    "1.2.840.10008.5.1.4.1.1.66.8": _SEG,
    "RTDOSE": _RTDOSE,
    "1.2.840.10008.5.1.4.1.1.481.2": _RTDOSE,
}


def _check_image(path: Path, ds: Any) -> None:
    for key in (str(ds.get("SOPClassUID", "")), str(ds.get("Modality", ""))):
        if key in _NOT_IMAGES:
            raise InputFileError(path, _NOT_IMAGES[key])
    for key in ("Rows", "Columns"):
        if key not in ds or ds[key].value in (None, "", 0):
            raise InputFileError(
                path, f"missing {key} (0028,{'0010' if key == 'Rows' else '0011'})"
            )
    if int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        raise InputFileError(
            path, f"colour images are not supported ({ds.get('PhotometricInterpretation')})"
        )
    if str(ds.get("PhotometricInterpretation", "")).strip().upper() == "PALETTE COLOR":
        raise InputFileError(
            path,
            "PALETTE COLOR image: its pixels are indices into a colour table (categorical), "
            "which cannot be super-resolved; convert it to RGB or grey values first",
        )
    for key, tag in (("BitsAllocated", "0028,0100"), ("SOPClassUID", "0008,0016")):
        if key not in ds:
            raise InputFileError(path, f"missing {key} ({tag})")


def slices_of(path: Path, ds: Any) -> list[DicomSlice]:
    """The 2-D slices of one image file (one per frame for enhanced multi-frame files)."""
    _check_image(path, ds)
    n = frame_count(path, ds)
    lut = modality_lut(path, ds)
    if "PerFrameFunctionalGroupsSequence" in ds:
        if lut is not None:
            raise InputFileError(
                path,
                "Modality LUT (ModalityLUTSequence) in an enhanced multi-frame file is not "
                "supported",
            )
        frames = ds.PerFrameFunctionalGroupsSequence
        if len(frames) != n:
            raise InputFileError(path, f"{len(frames)} per-frame groups for {n} frames")
        pos, ori, pix = "PlanePositionSequence", "PlaneOrientationSequence", "PixelMeasuresSequence"
        values = "PixelValueTransformationSequence"
        return [
            _slice(
                path,
                ds,
                f,
                (
                    fg_attr(ds, item, pos, "ImagePositionPatient"),
                    fg_attr(ds, item, ori, "ImageOrientationPatient"),
                    fg_attr(ds, item, pix, "PixelSpacing"),
                    fg_attr(ds, item, values, "RescaleSlope"),
                    fg_attr(ds, item, values, "RescaleIntercept"),
                ),
                item,
            )
            for f, item in enumerate(frames)
        ]
    if n > 1:
        raise InputFileError(
            path,
            f"multi-frame image ({n} frames) without per-frame functional groups is not supported",
        )
    keys = ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing")
    rescale = (ds.get("RescaleSlope"), ds.get("RescaleIntercept"))
    if lut is not None and "RescaleSlope" in ds:
        log.warning("%s: both a Modality LUT and RescaleSlope; the LUT is applied", path)
    return [_slice(path, ds, None, (*(ds.get(k) for k in keys), *rescale), lut=lut)]


def text_value(value: Any) -> str:
    """A text element's value as one string: several values (a backslash in the stored text,
    read by pydicom as a MultiValue) joined with the backslash again, not listed as
    ``"['T2', 'FLAIR']"``."""
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)
    return str(value)


__all__ = [
    "TAGS",
    "DicomSlice",
    "fg_attr",
    "frame_count",
    "header_thickness",
    "slices_of",
    "text_value",
]
