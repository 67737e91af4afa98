"""Write a super-resolved volume as a *derived* DICOM series (pydicom, imported lazily).

Per output image (see ``docs/medical.md`` for the full list):

* kept: Patient, Study, Frame of Reference (same FrameOfReferenceUID), equipment, acquisition
  and window tags; new SeriesInstanceUID and SOPInstanceUIDs (``pydicom.uid.generate_uid``).
* geometry from the upscaled affine (voxel-centre rule): PixelSpacing / s, Rows/Columns x s,
  ImagePositionPatient moved by ``(1/s - 1)/2`` pixel along the row and column directions
  (:func:`sr_domains.image.scale_dicom_plane`), InstanceNumber 1..N in spatial order,
  SliceLocation carried over (refitted when the slice axis is upscaled).
* ImageType ``DERIVED\\SECONDARY\\...`` (enhanced: value 1 and FrameType value 1 DERIVED),
  DerivationDescription with provenance, SeriesDescription suffix ``SR xS``, SourceImageSequence
  referencing the source images, ContributingEquipmentSequence entry.
* pixels: 16-bit, BitsStored 16, the source's signedness; each slice keeps the
  RescaleSlope/Intercept of its source slice (the integer value grid is unchanged: values are
  rounded and clipped to it). Padding pixels (``PixelPaddingValue`` [..``RangeLimit``]) are
  written back as ``PixelPaddingValue`` and the padding tags are kept.
* SeriesNumber: the source's + :data:`SERIES_NUMBER_OFFSET` (1000), so the derived series has
  its own number in the study.
* dropped (no longer true of the new pixels): private tags, icon, overlays, Modality LUT,
  smallest/largest pixel values. LossyImageCompression stays ``01`` when the source was lossy.
  Written uncompressed, Explicit VR Little Endian, Part-10 file meta.
"""

from __future__ import annotations

import copy
import datetime as _dt
import logging
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import require
from .dicom_series import DicomSeries
from .geometry import slice_normal

log = logging.getLogger(__name__)

_LOSSY_TS = {
    "1.2.840.10008.1.2.4.50": "ISO_10918_1",  # JPEG baseline
    "1.2.840.10008.1.2.4.51": "ISO_10918_1",  # JPEG extended
    "1.2.840.10008.1.2.4.81": "ISO_14495_1",  # JPEG-LS near-lossless
}
_DROP = (
    "IconImageSequence",
    "ModalityLUTSequence",
    "SmallestImagePixelValue",
    "LargestImagePixelValue",
    "SmallestPixelValueInSeries",
    "LargestPixelValueInSeries",
    "PlanarConfiguration",
    "DataSetTrailingPadding",
    "ExtendedOffsetTable",
    "ExtendedOffsetTableLengths",
    "PixelDataProviderURL",
)


#: Added to the source SeriesNumber so the derived series gets its own number in the study.
SERIES_NUMBER_OFFSET = 1000


def _ds(v: float) -> Any:
    from pydicom.valuerep import DSfloat

    return DSfloat(float(v), auto_format=True)


def stored_slices(
    values: np.ndarray, series: DicomSeries, factor: float
) -> tuple[np.ndarray, list[tuple[float, float]], int]:
    """Stored pixels of each output slice with the rescale of its nearest source slice, the
    source's signedness, NaN (padding) as the source's ``PixelPaddingValue``; rounded and
    clipped to 16 bits. Returns ``(stored, [(slope, intercept)], n_clipped)``."""
    signed = int(series.first.get("PixelRepresentation", 0)) == 1
    dt = np.dtype(np.int16 if signed else np.uint16)
    info = np.iinfo(dt)
    pad = series.padding
    out = np.empty(values.shape, dt)
    pairs, clipped = [], 0
    for k in range(values.shape[0]):
        src = series.slices[_nearest(k, factor, series.n_slices)]
        m, b = src.slope, src.intercept
        v = np.rint((values[k].astype(np.float64) - b) / m)
        nan = np.isnan(v)
        clipped += int(((v < info.min) | (v > info.max)).sum())
        np.clip(v, info.min, info.max, out=v)
        v[nan] = pad[0] if pad is not None else 0
        out[k] = v.astype(dt)
        pairs.append((m, b))
    if clipped:
        log.warning("%d pixel value(s) clipped to the %s range", clipped, dt)
    return out, pairs, clipped


def _now() -> tuple[str, str]:
    t = _dt.datetime.now()
    return t.strftime("%Y%m%d"), t.strftime("%H%M%S.%f")


def _strip(ds: Any) -> None:
    ds.remove_private_tags()
    for key in _DROP:
        if key in ds:
            delattr(ds, key)
    for tag in [e.tag for e in ds if 0x6000 <= e.tag.group <= 0x60FF and e.tag.group % 2 == 0]:
        del ds[tag]


def _derive(ds: Any, series: DicomSeries, info: dict[str, Any]) -> None:
    """Tags shared by classic and enhanced outputs."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    _strip(ds)
    ds.SeriesInstanceUID = info["series_uid"]
    if ds.get("SeriesNumber") not in (None, ""):
        ds.SeriesNumber = int(ds.SeriesNumber) + SERIES_NUMBER_OFFSET
    date, time = info["now"]
    for d, t in (("SeriesDate", "SeriesTime"), ("ContentDate", "ContentTime")):
        setattr(ds, d, date)
        setattr(ds, t, time)
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time
    desc = f"{series.description} {info['label']}".strip()
    ds.SeriesDescription = desc[-64:] if len(desc) > 64 else desc
    ds.DerivationDescription = info["derivation"][:1024]
    ts = str(getattr(getattr(series.first, "file_meta", None), "TransferSyntaxUID", ""))
    if series.first.get("LossyImageCompression") == "01" or ts in _LOSSY_TS:
        ds.LossyImageCompression = "01"
        if "LossyImageCompressionMethod" not in ds and ts in _LOSSY_TS:
            ds.LossyImageCompressionMethod = _LOSSY_TS[ts]
    eq = Dataset()
    eq.Manufacturer = "sr_domains"
    eq.SoftwareVersions = __version__
    eq.ContributionDateTime = date + time
    eq.ContributionDescription = "super-resolution"[:64]
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator, code.CodeMeaning = (
        "109103",
        "DCM",
        "Modifying Equipment",
    )
    eq.PurposeOfReferenceCodeSequence = Sequence([code])
    prev = list(ds.get("ContributingEquipmentSequence", []))
    ds.ContributingEquipmentSequence = Sequence([*prev, eq])
    ds.SamplesPerPixel = 1
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 16, 15
    ds.PixelRepresentation = int(info["signed"])


def _source_ref(ds: Any) -> Any:
    from pydicom.dataset import Dataset

    ref = Dataset()
    ref.ReferencedSOPClassUID = ds.SOPClassUID
    ref.ReferencedSOPInstanceUID = ds.SOPInstanceUID
    return ref


def _file_meta(ds: Any) -> None:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"SRDOMAINS_{__version__}"[:16]
    ds.file_meta = meta


def _save(ds: Any, path: Path) -> None:
    _file_meta(ds)
    ds.save_as(path, implicit_vr=False, little_endian=True, enforce_file_format=True)


def _nearest(k: int, factor: float, n_src: int) -> int:
    return int(min(max(round((k + 0.5) / factor - 0.5), 0), n_src - 1))


def _slice_locations(series: DicomSeries, proj: np.ndarray, factor: float) -> list[Any] | None:
    locs = [s.ds.get("SliceLocation") for s in series.slices]
    if any(v in (None, "") for v in locs):
        return None
    if factor == 1:
        return locs
    normal = slice_normal(series.iop)
    src = np.array([s.position @ normal for s in series.slices])
    b, a = np.polyfit(src, np.array(locs, np.float64), 1)
    return [_ds(a + b * p) for p in proj]


def write_derived_series(
    series: DicomSeries,
    volume: np.ndarray,
    affine: np.ndarray,
    folder: Path,
    *,
    scale: float,
    derivation: str,
    plane_factors: tuple[float, float] | None = None,
    slice_thickness: float | None = None,
    label: str | None = None,
) -> list[Path]:
    """Write ``volume`` (``(slice, row, column)``, modality units) with its LPS ``affine`` as a
    derived series of ``series`` into ``folder`` (which must exist). Returns the files.

    ``scale`` divides the pixel spacing (rows and columns) unless ``plane_factors`` gives one
    factor per in-plane axis (1 = unchanged; real factors allowed). The slice count may change
    by any factor: positions come from ``affine``. ``slice_thickness`` (mm) replaces
    SliceThickness (e.g. the resolution of an isotropic reconstruction); ``label`` is the
    SeriesDescription suffix (default ``SR x<scale>``)."""
    pydicom = require("pydicom", "medical", "DICOM files")
    factor = volume.shape[0] / series.n_slices
    stored, pairs, _ = stored_slices(volume, series, factor)
    pf = (float(scale), float(scale)) if plane_factors is None else plane_factors
    info = {
        "series_uid": pydicom.uid.generate_uid(),
        "now": _now(),
        "label": label if label is not None else f"SR x{scale}",
        "derivation": derivation,
        "signed": stored.dtype == np.int16,
    }
    # IOP and PixelSpacing come from the source exactly (only the spacing is divided), so the
    # written tags carry no round-off; positions come from the upscaled affine.
    iop = [float(v) for v in series.iop]
    spacing = [float(v) / f for v, f in zip(series.pixel_spacing, pf)]
    n = volume.shape[0]
    positions = [affine[:3, :3] @ np.array([k, 0.0, 0.0]) + affine[:3, 3] for k in range(n)]
    proj = np.array([p @ slice_normal(iop) for p in positions])
    geo = {
        "iop": iop,
        "spacing": spacing,
        "positions": positions,
        "factor": factor,
        "slice_spacing": float(np.linalg.norm(affine[:3, 0])),
        "slice_thickness": slice_thickness,
        "locations": _slice_locations(series, proj, factor) if series.has_geometry else None,
    }
    if series.enhanced:
        from .dicom_enhanced import write_enhanced

        path = folder / "IM00001.dcm"
        ds = write_enhanced(series, stored, info, geo)
        _save(ds, path)
        return [path]
    out = []
    for k in range(n):
        src = series.slices[_nearest(k, factor, series.n_slices)]
        ds = copy.deepcopy(src.ds)
        _derive(ds, series, info)
        t = list(ds.get("ImageType", ["DERIVED", "SECONDARY"]))
        ds.ImageType = ["DERIVED", "SECONDARY", *t[2:]]
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.InstanceNumber = k + 1
        ds.Rows, ds.Columns = stored.shape[1], stored.shape[2]
        if series.has_geometry:
            ds.ImagePositionPatient = [_ds(v) for v in positions[k]]  # IOP: the source's
            ds.PixelSpacing = [_ds(v) for v in spacing]
            if geo["locations"] is not None:
                ds.SliceLocation = geo["locations"][k]
            if factor != 1 or "SpacingBetweenSlices" in ds:
                ds.SpacingBetweenSlices = _ds(geo["slice_spacing"])
            if slice_thickness is not None:
                ds.SliceThickness = _ds(slice_thickness)
        elif "PixelSpacing" in ds:
            ds.PixelSpacing = [_ds(float(v) / f) for v, f in zip(ds.PixelSpacing, pf)]
        if "ImagerPixelSpacing" in ds:
            ds.ImagerPixelSpacing = [_ds(float(v) / f) for v, f in zip(ds.ImagerPixelSpacing, pf)]
        slope, intercept = pairs[k]  # the nearest source slice's: its value grid, unchanged
        if slope != 1 or intercept != 0 or "RescaleSlope" in ds or "RescaleIntercept" in ds:
            ds.RescaleSlope, ds.RescaleIntercept = _ds(slope), _ds(intercept)
        if "SOPInstanceUID" in src.ds:
            ds.SourceImageSequence = pydicom.sequence.Sequence([_source_ref(src.ds)])
        ds.PixelData = (
            np.ascontiguousarray(stored[k]).astype(stored.dtype.newbyteorder("<")).tobytes()
        )
        ds["PixelData"].VR = "OW"
        path = folder / f"IM{k + 1:05d}.dcm"
        _save(ds, path)
        out.append(path)
    return out


__all__ = ["SERIES_NUMBER_OFFSET", "stored_slices", "write_derived_series"]
