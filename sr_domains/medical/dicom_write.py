"""Write a super-resolved volume as a *derived* DICOM series (pydicom, imported lazily).

Per output image (see ``docs/medical.md`` for the full list):

* kept, new and dropped tags, and how files are written: :mod:`.dicom_derive`.
* geometry from the upscaled affine (voxel-centre rule): PixelSpacing / s, Rows/Columns x s,
  ImagePositionPatient moved by ``(1/s - 1)/2`` pixel along the row and column directions
  (:func:`sr_domains.image.scale_dicom_plane`), InstanceNumber 1..N in spatial order,
  SliceLocation carried over (refitted when the slice axis is upscaled). Through-plane and
  isotropic callers pass an affine on :func:`.dicom_grid.slice_grid` (the line fitted to the
  source positions, at the stated SpacingBetweenSlices where it agrees with them).
* tags in pixel coordinates of the source grid (ImagerPixelSpacing, ultrasound regions,
  display shutters, ...) and slice counts: :mod:`.dicom_pixel_coords`.
* ImageType ``DERIVED\\SECONDARY\\...`` (enhanced: value 1 and FrameType value 1 DERIVED),
  DerivationDescription with provenance, SeriesDescription suffix ``SR xS``, SourceImageSequence
  referencing the source images, ContributingEquipmentSequence entry.
* pixels: 16-bit; 8-bit for an 8-bit source whose written values fit its 8 stored bits
  (:func:`.dicom_derive.save_derived`); 32-bit for a 32-bit source. ``BitsStored`` the
  source's when every written value fits it, else all bits; the source's signedness (files
  differing in signedness or bits: one type holding all, :func:`output_dtype`). Each slice
  keeps the RescaleSlope/Intercept of its source slice (the integer value grid is unchanged:
  values are rounded and clipped to it); a slice between source slices of other rescales
  gets one whose grid holds its values (:func:`slice_pair`). A source slice with a Modality
  LUT gives modality values with RescaleSlope 1, RescaleIntercept 0 and RescaleType its
  ModalityLUTType (32-bit where 16 bits cannot hold the LUT's outputs). Padding pixels
  (``PixelPaddingValue`` [..``RangeLimit``]) are written back as ``PixelPaddingValue`` and
  the padding tags are kept; with a Modality LUT as one value in modality units that no
  valid pixel holds (:func:`padding_value`). Valid pixels never hold a padding value (moved
  off it, :func:`stored_slices`).
* Enhanced multi-frame sources give one enhanced file (:mod:`.dicom_enhanced`).
"""

from __future__ import annotations

import copy
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import require
from .dicom_derive import (
    SERIES_NUMBER_OFFSET,
    derive_common,
    derived_kind,
    derived_warner,
    ds_number,
    nearest_source,
    now_stamp,
    save_derived,
    source_ref,
    stale_spacing,
)
from .dicom_enhanced import write_enhanced
from .dicom_grid import slice_grid
from .dicom_pixel_coords import map_pixel_tags, recount
from .dicom_series import DicomSeries
from .dicom_stored import output_dtype, padding_value, slice_pair, stored_slices
from .dicom_values import bits_range, kept_bits_stored, remap_real_world, retag_padding
from .geometry import slice_normal

log = logging.getLogger(__name__)


def _slice_locations(series: DicomSeries, proj: np.ndarray, factor: float) -> list[Any] | None:
    locs = [s.ds.get("SliceLocation") for s in series.slices]
    if any(v in (None, "") for v in locs):
        return None
    if factor == 1:
        return locs
    normal = slice_normal(series.iop)
    src = np.array([s.position @ normal for s in series.slices])
    b, a = np.polyfit(src, np.array(locs, np.float64), 1)
    return [ds_number(a + b * p) for p in proj]


def output_spacing(series: DicomSeries, affine: np.ndarray, factor: float) -> float:
    """The output's spacing between planes along the normal (under gantry tilt shorter than
    the position step), from ``affine``; when ``affine`` is the source's slice axis (its
    :attr:`~.dicom_series.DicomSeries.affine` or its fitted grid,
    :func:`.dicom_grid.slice_grid`) divided by the slice-count ``factor`` and the source states
    a SpacingBetweenSlices that agrees with its positions (to 1e-4 mm, or within what their
    rounding allows: :func:`.dicom_grid.stated_spacing`), that value divided by ``factor``:
    positions written with few decimals do not show (a stated 3.0 mm at x2 is 1.5 mm, not
    1.49999992343076; a stated 1.25 mm whose positions were written to 0.1 mm is 1.25 mm
    in-plane, not the 1.2429 mm between the end slices)."""
    out = float(abs(affine[:3, 0] @ slice_normal(series.iop)))
    if not series.has_geometry:
        return out
    grid = slice_grid(series)
    if grid.stated is None:
        return out
    for src in (series.slice_spacing, grid.spacing):
        if src and abs(out * factor / src - 1) <= 1e-9:
            return grid.stated / factor
    return out


def write_derived_series(
    series: DicomSeries,
    volume: np.ndarray,
    affine: np.ndarray,
    folder: str | os.PathLike[str],
    *,
    scale: float,
    derivation: str,
    plane_factors: tuple[float, float] | None = None,
    slice_thickness: float | None = None,
    label: str | None = None,
    slice_factor: float | None = None,
    overwrite: bool = False,
) -> list[Path]:
    """Write ``volume`` (``(slice, row, column)``, modality units) with its LPS ``affine`` as a
    derived series of ``series`` into the folder ``folder``. Returns the files.

    ``scale`` divides the pixel spacing (rows and columns) unless ``plane_factors`` gives one
    factor per in-plane axis (1 = unchanged; real factors allowed). The slice count may change
    by any factor: positions come from ``affine`` (for new slices best built on
    :func:`.dicom_grid.slice_grid`, not ``series.affine``: positions written rounded).
    ``slice_thickness`` (mm) replaces SliceThickness (e.g. the resolution of an isotropic
    reconstruction); ``label`` is the SeriesDescription suffix (default ``SR x<scale>``);
    ``slice_factor`` the planned factor along the slices (an isotropic plan's, whose slice
    count is rounded: x2.5 of 5 slices gives 13; default the slice-count ratio), which the
    SeriesNumber counts.

    The rules of the CLI's DICOM output (:mod:`sr_domains.io_safety`): ``folder`` may be
    missing or empty; a folder that is, holds or lies inside the source series is refused
    (:class:`~sr_domains.errors.UnsafeOutputError`), even with ``overwrite``; a non-empty one
    is replaced only with ``overwrite`` and only when it is a series sr_domains wrote (its
    manifest lists every entry), else :class:`~sr_domains.errors.OutputExistsError` /
    ``UnsafeOutputError``. The series is written into a temporary folder beside it, which
    replaces ``folder`` once complete (an interrupted write leaves nothing half-written)."""
    from ..io_safety import atomic_output, check_paths
    from .nifti import check_output_name

    dst = Path(folder)
    check_output_name(dst, "dicom")
    check_paths(dst, [series.source, *series.files], kind="dir")  # (each file: links)
    manifest = {"series_uid": series.series_uid, "derivation": derivation}
    with atomic_output(
        dst, [series.source], kind="dir", overwrite=overwrite, manifest=manifest
    ) as tmp:
        files = write_series_files(
            series,
            volume,
            affine,
            tmp,
            scale=scale,
            derivation=derivation,
            plane_factors=plane_factors,
            slice_thickness=slice_thickness,
            label=label,
            slice_factor=slice_factor,
        )
    log.info("wrote %s (%d file(s))", dst, len(files))
    return [dst / f.name for f in files]


def write_series_files(
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
    slice_factor: float | None = None,
) -> list[Path]:
    """:func:`write_derived_series`'s files, written straight into ``folder``, an empty folder
    the caller made (the temporary folder of :func:`~sr_domains.io_safety.atomic_output`): no
    output checks. Returns the files."""
    pydicom = require("pydicom", "medical", "DICOM files")
    factor = volume.shape[0] / series.n_slices
    dtype = output_dtype(volume, series)
    pad = padding_value(volume, series, dtype)
    stored, pairs, _ = stored_slices(volume, series, factor, pad, dtype)
    pf = (float(scale), float(scale)) if plane_factors is None else plane_factors
    planned = factor if slice_factor is None else float(slice_factor)
    info = {
        "series_uid": pydicom.uid.generate_uid(),
        "now": now_stamp(),
        "label": label if label is not None else f"SR x{scale}",
        "derivation": derivation,
        "kind": derived_kind(factor, plane_factors),  # picks the SeriesNumber offset
        # ... with the scale (isotropic: its largest planned factor), so x2 and x4 outputs differ
        "scale": float(scale) if plane_factors is None else max(planned, *plane_factors),
        "signed": stored.dtype.kind == "i",
        "bits": stored.dtype.itemsize * 8,
        "bits_stored": kept_bits_stored(stored, [s.ds for s in series.slices]),
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
        "slice_spacing": output_spacing(series, affine, planned),
        "slice_thickness": slice_thickness,
        "pairs": pairs,  # each frame's (slope, intercept)
        "locations": _slice_locations(series, proj, factor) if series.has_geometry else None,
        "plane_factors": pf,  # pixel-coordinate tags (dicom_pixel_coords)
    }
    if series.enhanced:
        path = folder / "IM00001.dcm"
        ds = write_enhanced(series, stored, info, geo)
        save_derived(ds, path)
        return [path]
    out = []
    written = bits_range(info["signed"], info["bits_stored"])  # what the tags declare
    warn = derived_warner(series, info)
    src_index = [s.ds.get("ImageIndex") for s in series.slices]
    for k in range(n):
        src = series.slices[nearest_source(k, factor, series.n_slices)]
        ds = copy.deepcopy(src.ds)
        derive_common(ds, series, info)
        t = list(ds.get("ImageType", ["DERIVED", "SECONDARY"]))
        ds.ImageType = ["DERIVED", "SECONDARY", *t[2:]]
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.InstanceNumber = k + 1
        ds.Rows, ds.Columns = stored.shape[1], stored.shape[2]
        if series.has_geometry:
            ds.ImagePositionPatient = [ds_number(v) for v in positions[k]]  # IOP: the source's
            ds.PixelSpacing = [ds_number(v) for v in spacing]
            if geo["locations"] is not None:
                ds.SliceLocation = geo["locations"][k]
            if stale_spacing(ds, geo["slice_spacing"], factor):
                ds.SpacingBetweenSlices = ds_number(geo["slice_spacing"])
            if slice_thickness is not None:
                ds.SliceThickness = ds_number(slice_thickness)
        elif "PixelSpacing" in ds:
            ds.PixelSpacing = [ds_number(float(v) / f) for v, f in zip(ds.PixelSpacing, pf)]
        map_pixel_tags(ds, pf, warn)  # ImagerPixelSpacing, US regions, shutters, ...
        recount(ds, k, n, series.n_slices, src_index, warn)
        slope, intercept = pairs[k]  # the nearest source slice's unless it cannot hold k
        if (slope, intercept) != (src.slope, src.intercept):  # (its values need another)
            remap_real_world(ds, (src.slope, src.intercept), pairs[k], written, src.label, src.ds)
            if not {"RescaleType", "RescaleSlope"} & set(ds.dir()) and series.modality != "CT":
                ds.RescaleType = "US"
        if src.lut is None and "PixelPaddingValue" not in ds:
            if pad is not None and np.isnan(volume[k]).any():  # padding from another file
                ds.PixelPaddingValue = pad
                ds["PixelPaddingValue"].VR = "SS" if info["signed"] else "US"
        elif src.lut is None:
            retag_padding(ds, info["signed"], src.ds)  # the source's signedness may differ
        else:  # written in modality units: the LUT (dropped) becomes 1/0
            ds.RescaleType = src.lut.kind
            if "PixelPaddingValue" in ds:  # one value, in the output's stored units
                ds.PixelPaddingValue = pad
                ds["PixelPaddingValue"].VR = "SS" if info["signed"] else "US"
                if "PixelPaddingRangeLimit" in ds:
                    del ds.PixelPaddingRangeLimit
        if (
            slope != 1
            or intercept != 0
            or src.lut is not None
            or "RescaleSlope" in ds
            or "RescaleIntercept" in ds
        ):
            ds.RescaleSlope, ds.RescaleIntercept = ds_number(slope), ds_number(intercept)
        if "SOPInstanceUID" in src.ds:
            ds.SourceImageSequence = pydicom.sequence.Sequence([source_ref(src.ds)])
        ds.PixelData = (
            np.ascontiguousarray(stored[k]).astype(stored.dtype.newbyteorder("<")).tobytes()
        )
        ds["PixelData"].VR = "OW"
        path = folder / f"IM{k + 1:05d}.dcm"
        save_derived(ds, path)
        out.append(path)
    return out


__all__ = [
    "SERIES_NUMBER_OFFSET",
    "output_dtype",
    "output_spacing",
    "padding_value",
    "slice_pair",
    "stored_slices",
    "write_derived_series",
    "write_series_files",
]
