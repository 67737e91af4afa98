"""Generated DICOM series (classic per-slice files and enhanced multi-frame) of a smooth
phantom, with real UIDs and oblique geometry. Needs pydicom (the ``medical`` extra)."""

from __future__ import annotations

import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from .phantoms import ValuesFn, ellipsoid_phantom, rotation

if TYPE_CHECKING:
    from pydicom.dataset import Dataset


MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4"
CT_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
ENHANCED_MR_STORAGE = "1.2.840.10008.5.1.4.1.1.4.1"
OBLIQUE_IOP = tuple(float(v) for v in (*rotation()[:, 0], *rotation()[:, 1]))


def _series_geometry(
    n_slices: int,
    rows: int,
    cols: int,
    pixel_spacing: Sequence[float],
    slice_spacing: float,
    iop: Sequence[float],
    origin: Sequence[float],
    tilt_deg: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """(positions (n, 3), world of every pixel (n, rows, cols, 3)); ``tilt_deg`` tilts the
    step between positions from the normal towards the column direction (gantry tilt), the
    planes staying ``slice_spacing`` apart."""
    v = np.asarray(iop, np.float64)
    row_dir, col_dir = v[:3], v[3:]
    normal = np.cross(row_dir, col_dir)
    step = slice_spacing * (normal + np.tan(np.radians(tilt_deg)) * col_dir)
    ipps = np.asarray(origin, np.float64) + np.arange(n_slices)[:, None] * step
    r = np.arange(rows)[:, None, None] * pixel_spacing[0] * col_dir
    c = np.arange(cols)[None, :, None] * pixel_spacing[1] * row_dir
    world = ipps[:, None, None, :] + r[None] + c[None]
    return ipps, world


def _base_dataset(
    sop_class: str,
    modality: str,
    rows: int,
    cols: int,
    study_uid: str,
    series_uid: str,
    for_uid: str,
    patient_id: str,
    description: str,
) -> Dataset:
    from pydicom.dataset import Dataset

    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.Modality = modality
    ds.PatientName = "Phantom^SR"
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.StudyDate = "20240102"
    ds.StudyTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = "A123"
    ds.ReferringPhysicianName = ""
    ds.SeriesInstanceUID = series_uid
    ds.SeriesNumber = 3
    ds.SeriesDescription = description
    ds.FrameOfReferenceUID = for_uid
    ds.PositionReferenceIndicator = ""
    ds.Manufacturer = "sr_domains phantom"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = cols
    ds.BitsAllocated = 16
    ds.BitsStored = 12 if modality == "MR" else 16
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0 if modality == "MR" else 1
    ds.WindowCenter = 400 if modality == "MR" else 40
    ds.WindowWidth = 800 if modality == "MR" else 400
    return ds


def _save(ds: Dataset, path: Path, transfer_syntax: str | None) -> None:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta = meta
    if transfer_syntax and transfer_syntax != ExplicitVRLittleEndian:
        ds.compress(transfer_syntax, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)


def _stored_pixels(values: np.ndarray, modality: str) -> tuple[np.ndarray, float, float]:
    if modality == "CT":
        return np.clip(np.rint(values + 1024.0), -32768, 32767).astype(np.int16), 1.0, -1024.0
    return np.clip(np.rint(values), 0, 4095).astype(np.uint16), 1.0, 0.0


def make_dicom_series(
    folder: str | os.PathLike[str],
    *,
    n_slices: int = 6,
    rows: int = 24,
    cols: int = 20,
    pixel_spacing: Sequence[float] = (0.9, 0.7),
    slice_spacing: float = 3.0,
    iop: Sequence[float] = OBLIQUE_IOP,
    origin: Sequence[float] = (-10.0, -12.0, 25.0),
    modality: str = "MR",
    values: ValuesFn | None = None,
    transfer_syntax: str | None = None,
    shuffle_filenames: bool = True,
    shuffle_instance_numbers: bool = True,
    series_uid: str | None = None,
    study_uid: str | None = None,
    frame_of_reference_uid: str | None = None,
    patient_id: str = "SRD-0001",
    description: str = "T1 phantom",
    seed: int = 0,
    tilt_deg: float = 0.0,
) -> list[Path]:
    """Write a single-frame DICOM series (one file per slice) and return the file paths in
    spatial order (ascending along the slice normal).

    MR: uint16 stored values (BitsStored 12), no rescale. CT: int16 with RescaleIntercept
    -1024 (values are HU). File names and InstanceNumbers are shuffled unless disabled, so
    readers must sort by position. ``tilt_deg`` makes a gantry-tilted series: the positions
    step off the normal (planes still ``slice_spacing`` apart, SpacingBetweenSlices written).
    ``transfer_syntax`` compresses the pixel data (e.g.
    ``pydicom.uid.RLELossless`` or ``JPEG2000Lossless``). Files are named ``slice_000.dcm``...;
    a folder that already holds such files (another series) gets ``slice2_000.dcm``... instead.
    """
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    ipps, world = _series_geometry(
        n_slices, rows, cols, pixel_spacing, slice_spacing, iop, origin, tilt_deg
    )
    if values is None:
        centre = world.reshape(-1, 3).mean(axis=0)
        extent = np.array(
            [slice_spacing * n_slices, rows * pixel_spacing[0], cols * pixel_spacing[1]]
        )
        values = ellipsoid_phantom(centre, np.full(3, 0.4 * extent.max()), peak=1200.0)
    stored, slope, inter = _stored_pixels(values(world), modality)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    for_uid = frame_of_reference_uid or generate_uid()
    stem = next(  # a second series in the same folder gets its own names (never overwritten)
        p
        for p in (f"slice{k}" if k > 1 else "slice" for k in range(1, 10_000))
        if not any((folder / f"{p}_{i:03d}.dcm").exists() for i in range(n_slices))
    )
    names = [f"{stem}_{i:03d}.dcm" for i in range(n_slices)]
    numbers = list(range(1, n_slices + 1))
    if shuffle_filenames:
        rng.shuffle(names)
    if shuffle_instance_numbers:
        rng.shuffle(numbers)
    sop_class = CT_STORAGE if modality == "CT" else MR_STORAGE
    normal = np.cross(np.asarray(iop[:3]), np.asarray(iop[3:]))
    paths = []
    for k in range(n_slices):
        ds = _base_dataset(
            sop_class, modality, rows, cols, study_uid, series_uid, for_uid, patient_id, description
        )
        ds.SOPInstanceUID = generate_uid()
        ds.InstanceNumber = numbers[k]
        ds.ImagePositionPatient = [round(float(v), 6) for v in ipps[k]]
        ds.ImageOrientationPatient = [round(float(v), 8) for v in iop]
        ds.PixelSpacing = [float(v) for v in pixel_spacing]
        ds.SliceThickness = float(slice_spacing)
        if tilt_deg:
            ds.SpacingBetweenSlices = float(slice_spacing)
        ds.SliceLocation = round(float(ipps[k] @ normal), 6)
        if modality == "CT":
            ds.RescaleSlope = slope
            ds.RescaleIntercept = inter
            ds.RescaleType = "HU"
        ds.PixelData = stored[k].tobytes()
        p = folder / names[k]
        _save(ds, p, transfer_syntax)
        paths.append(p)
    return paths


def make_enhanced_dicom(
    path: str | os.PathLike[str],
    *,
    n_frames: int = 5,
    rows: int = 20,
    cols: int = 18,
    pixel_spacing: Sequence[float] = (0.8, 1.1),
    slice_spacing: float = 2.5,
    iop: Sequence[float] = OBLIQUE_IOP,
    origin: Sequence[float] = (5.0, -20.0, 12.0),
    values: ValuesFn | None = None,
    shuffle_frames: bool = True,
    seed: int = 0,
) -> Path:
    """Write an Enhanced MR Image Storage (multi-frame, functional groups) file; frames are
    stored in shuffled spatial order so readers must sort by position."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence as Seq
    from pydicom.uid import generate_uid

    ipps, world = _series_geometry(n_frames, rows, cols, pixel_spacing, slice_spacing, iop, origin)
    if values is None:
        centre = world.reshape(-1, 3).mean(axis=0)
        values = ellipsoid_phantom(centre, np.full(3, 0.4 * rows * max(pixel_spacing)), 1200.0)
    stored, _, _ = _stored_pixels(values(world), "MR")
    order = list(range(n_frames))
    if shuffle_frames:
        random.Random(seed).shuffle(order)
    ds = _base_dataset(
        ENHANCED_MR_STORAGE,
        "MR",
        rows,
        cols,
        generate_uid(),
        generate_uid(),
        generate_uid(),
        "SRD-0002",
        "enhanced phantom",
    )
    ds.SOPInstanceUID = generate_uid()
    ds.InstanceNumber = 1
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    ds.NumberOfFrames = n_frames
    ds.ContentDate, ds.ContentTime = "20240102", "101600"
    shared = Dataset()
    pm = Dataset()
    pm.PixelSpacing = [float(v) for v in pixel_spacing]
    pm.SliceThickness = float(slice_spacing)
    pm.SpacingBetweenSlices = float(slice_spacing)
    po = Dataset()
    po.ImageOrientationPatient = [round(float(v), 8) for v in iop]
    ft = Dataset()
    ft.FrameType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
    pvt = Dataset()
    pvt.RescaleSlope, pvt.RescaleIntercept, pvt.RescaleType = 1.0, 0.0, "US"
    shared.PixelMeasuresSequence = Seq([pm])
    shared.PlaneOrientationSequence = Seq([po])
    shared.MRImageFrameTypeSequence = Seq([ft])
    shared.PixelValueTransformationSequence = Seq([pvt])
    ds.SharedFunctionalGroupsSequence = Seq([shared])
    dim_uid = generate_uid()
    dims = []
    for ptr in ("StackID", "InStackPositionNumber"):
        d = Dataset()
        d.DimensionOrganizationUID = dim_uid
        d.DimensionIndexPointer = ptr
        d.FunctionalGroupPointer = "FrameContentSequence"
        dims.append(d)
    org = Dataset()
    org.DimensionOrganizationUID = dim_uid
    ds.DimensionOrganizationSequence = Seq([org])
    ds.DimensionIndexSequence = Seq(dims)
    frames = []
    for k in order:
        item = Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = [round(float(v), 6) for v in ipps[k]]
        fc = Dataset()
        fc.StackID = "1"
        fc.InStackPositionNumber = k + 1
        fc.DimensionIndexValues = [1, k + 1]
        item.PlanePositionSequence = Seq([pp])
        item.FrameContentSequence = Seq([fc])
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = Seq(frames)
    ds.PixelData = np.ascontiguousarray(stored[order]).tobytes()
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    _save(ds, p, None)
    return p


__all__ = [
    "CT_STORAGE",
    "ENHANCED_MR_STORAGE",
    "MR_STORAGE",
    "OBLIQUE_IOP",
    "make_dicom_series",
    "make_enhanced_dicom",
]
