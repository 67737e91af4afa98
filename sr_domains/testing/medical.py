"""Generated NIfTI volumes and DICOM series (realistic smooth phantoms, real UIDs) and an
interpolating "model" for exact tests. Needs nibabel/pydicom (the ``medical`` extra)."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ..models.base import BaseSRConfig, SRModel

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

ValuesFn = Callable[[np.ndarray], np.ndarray]
"""``values(world)``: world coordinates ``(..., 3)`` (mm) -> voxel values ``(...)``."""


class InterpSR(SRModel):
    """Plain interpolation posing as an SR model (``nearest``, ``bilinear`` or ``bicubic``,
    voxel-centre convention). With it the SR output equals the textbook interpolation, which
    proves that axes, orientation and intensity profiles are handled without scrambling."""

    arch = "interp"

    def __init__(self, config: BaseSRConfig, mode: str = "bilinear") -> None:
        super().__init__(config)
        self.mode = mode

    def body(self, x: torch.Tensor) -> torch.Tensor:
        kw = {} if self.mode == "nearest" else {"align_corners": False}
        return nn.functional.interpolate(x, scale_factor=self.scale, mode=self.mode, **kw)

    def receptive_radius(self) -> int:
        return {"nearest": 0, "bilinear": 1}.get(self.mode, 2)


def interp_model(scale: int = 2, mode: str = "bilinear", in_channels: int = 1) -> InterpSR:
    """An :class:`InterpSR` in eval mode."""
    return InterpSR(BaseSRConfig(in_channels=in_channels, scale=scale), mode=mode).eval()


def rotation(degrees: Sequence[float] = (20.0, -15.0, 10.0)) -> np.ndarray:
    """Rotation matrix ``Rz @ Ry @ Rx`` for angles in degrees (x, y, z)."""
    ax, ay, az = np.radians(np.asarray(degrees, np.float64))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def ellipsoid_phantom(centre: np.ndarray, radii: np.ndarray, peak: float = 1000.0) -> ValuesFn:
    """Smooth head-like phantom: a bright soft ellipsoid with a darker inner one and a ramp."""
    c = np.asarray(centre, np.float64)
    r = np.asarray(radii, np.float64)

    def values(world: np.ndarray) -> np.ndarray:
        d = (world - c) / r
        r2 = np.sum(d * d, axis=-1)
        outer = 1.0 / (1.0 + np.exp((np.sqrt(r2) - 1.0) * 12.0))
        inner = np.exp(-np.sum(((world - c - 0.2 * r) / (0.35 * r)) ** 2, axis=-1))
        ramp = 0.1 * (1.0 + d[..., 0])
        return peak * (outer * (0.7 + ramp) - 0.3 * inner * outer)

    return values


def _grid_world(affine: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    return idx @ affine[:3, :3].T + affine[:3, 3]


def oblique_affine(
    spacing: Sequence[float] = (1.0, 1.25, 3.0),
    degrees: Sequence[float] = (20.0, -15.0, 10.0),
    origin: Sequence[float] = (-12.5, 30.0, -7.0),
) -> np.ndarray:
    """A 4x4 voxel-centre affine with rotated, anisotropic axes."""
    a = np.eye(4)
    a[:3, :3] = rotation(degrees) * np.asarray(spacing, np.float64)
    a[:3, 3] = origin
    return a


def make_nifti(
    path: str | os.PathLike[str],
    shape: Sequence[int] = (20, 16, 8),
    spacing: Sequence[float] = (1.0, 1.25, 3.0),
    *,
    affine: np.ndarray | None = None,
    oblique: bool = True,
    dtype: str | np.dtype = "int16",
    slope: float | None = None,
    inter: float | None = None,
    n_volumes: int | None = None,
    qform_code: int = 1,
    sform_code: int = 1,
    nifti2: bool = False,
    values: ValuesFn | None = None,
) -> Path:
    """Write a NIfTI phantom and return its path.

    Args:
        shape, spacing: 3-D grid size and voxel size (mm).
        affine: explicit voxel-centre affine (overrides ``spacing``/``oblique``).
        oblique: rotate the axes (otherwise a plain RAS diagonal affine).
        dtype, slope, inter: on-disk type and ``scl_slope``/``scl_inter`` (None = unscaled).
        n_volumes: make a 4-D file with this many volumes (intensity varies per volume).
        qform_code, sform_code: header codes (0 = unset).
        nifti2: write NIfTI-2.
        values: ``values(world_mm)``; default :func:`ellipsoid_phantom`.
    """
    import nibabel as nib

    if affine is None:
        affine = oblique_affine(spacing) if oblique else np.diag([*spacing, 1.0])
    aff = np.asarray(affine, np.float64)
    world = _grid_world(aff, shape)
    if values is None:
        centre = aff[:3, :3] @ ((np.asarray(shape) - 1) / 2.0) + aff[:3, 3]
        values = ellipsoid_phantom(centre, 0.35 * np.asarray(shape) * np.asarray(spacing))
    vol = values(world).astype(np.float64)
    if n_volumes:
        vol = np.stack([vol * (1.0 + 0.1 * t) for t in range(n_volumes)], axis=-1)
    cls = nib.Nifti2Image if nifti2 else nib.Nifti1Image
    dt = np.dtype(dtype)
    if dt.kind in "ui" and slope is None:
        vol = np.rint(vol)
    img = cls(vol.astype(np.float32) if dt.kind == "f" else vol, aff)
    img.set_data_dtype(dt)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(aff, code=qform_code)
    img.set_sform(aff, code=sform_code)
    if n_volumes:
        img.header.set_zooms((*img.header.get_zooms()[:3], 2.5))
    if slope is not None:
        img.header.set_slope_inter(slope, inter if inter is not None else 0.0)
    elif dt.kind in "ui":
        img.header.set_slope_inter(1.0, 0.0)
    img.header["descrip"] = b"sr_domains test phantom"
    p = Path(path)
    nib.save(img, p)
    return p


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
) -> tuple[np.ndarray, np.ndarray]:
    """(positions (n, 3), world of every pixel (n, rows, cols, 3))."""
    v = np.asarray(iop, np.float64)
    row_dir, col_dir = v[:3], v[3:]
    normal = np.cross(row_dir, col_dir)
    ipps = np.asarray(origin, np.float64) + np.arange(n_slices)[:, None] * slice_spacing * normal
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
) -> list[Path]:
    """Write a single-frame DICOM series (one file per slice) and return the file paths in
    spatial order (ascending along the slice normal).

    MR: uint16 stored values (BitsStored 12), no rescale. CT: int16 with RescaleIntercept
    -1024 (values are HU). File names and InstanceNumbers are shuffled unless disabled, so
    readers must sort by position. ``transfer_syntax`` compresses the pixel data (e.g.
    ``pydicom.uid.RLELossless`` or ``JPEG2000Lossless``).
    """
    from pydicom.uid import generate_uid

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    ipps, world = _series_geometry(n_slices, rows, cols, pixel_spacing, slice_spacing, iop, origin)
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
    names = [f"slice_{i:03d}.dcm" for i in range(n_slices)]
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
    "OBLIQUE_IOP",
    "InterpSR",
    "ellipsoid_phantom",
    "interp_model",
    "make_dicom_series",
    "make_enhanced_dicom",
    "make_nifti",
    "oblique_affine",
    "rotation",
]
