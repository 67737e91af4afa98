"""Derived enhanced multi-frame output: one file, frames in spatial order, functional groups
updated (plane position per frame, pixel measures wherever the source kept them, in-stack
position and its dimension index, frame type DERIVED). Each frame keeps the pixel value
transformation of its source frame (per-frame or shared), so its value grid is unchanged,
except a frame whose values that grid cannot hold (between frames of different rescales:
:func:`.dicom_write.slice_pair`): its own per-frame rescale, the real world value mapping
re-expressed."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from .dicom_derive import (
    derive_common,
    derived_warner,
    ds_number,
    nearest_source,
    source_ref,
    stale_spacing,
)
from .dicom_pixel_coords import map_pixel_tags, recount
from .dicom_series import DicomSeries
from .dicom_values import bits_range, remap_real_world

_IN_STACK = 0x00209057  # InStackPositionNumber
_ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
#: MR Pulse Sequence and Bulk Motion Synchronization attributes: Type 1C, required for ORIGINAL
#: and MIXED images and not allowed on DERIVED ones (PS3.3 C.8.13.4; dciodvfy checks it).
_ORIGINAL_ONLY_MR = (
    "PulseSequenceName",
    "MRAcquisitionType",
    "EchoPulseSequence",
    "MultipleSpinEcho",
    "MultiPlanarExcitation",
    "PhaseContrast",
    "TimeOfFlightContrast",
    "ArterialSpinLabelingContrast",
    "SteadyStatePulseSequence",
    "EchoPlanarPulseSequence",
    "SaturationRecovery",
    "SpectrallySelectedSuppression",
    "OversamplingPhase",
    "GeometryOfKSpaceTraversal",
    "RectilinearPhaseEncodeReordering",
    "SegmentedKSpaceTraversal",
    "CoverageOfKSpace",
    "NumberOfKSpaceTrajectories",
    "BulkMotionCompensationTechnique",
    "BulkMotionSignalSource",
)
_PVT = "PixelValueTransformationSequence"
_RWVM = "RealWorldValueMappingSequence"
_FRAME_TYPE_SEQS = (
    "MRImageFrameTypeSequence",
    "CTImageFrameTypeSequence",
    "PETFrameTypeSequence",
    "XRay3DFrameTypeSequence",
    "ParametricMapFrameTypeSequence",
)


def _own(grp: Any, seq: str) -> Any:
    """The first item of macro ``seq`` held by ``grp`` itself, or None."""
    if seq in grp and len(grp[seq].value):
        return grp[seq][0]
    return None


def _per_frame(shared: Any, frames: list[Any], seq: str) -> None:
    """Move macro ``seq`` from the shared functional group into every frame's item."""
    if seq in shared:
        for item in frames:
            if seq not in item:
                item[seq] = copy.deepcopy(shared[seq])
        delattr(shared, seq)


def _regrid(
    series: DicomSeries,
    shared: Any,
    frames: list[Any],
    geo: dict[str, Any],
    written: tuple[int, int],
) -> None:
    """Frames written with another rescale than their source frame's (``geo["pairs"]``) get
    it in their own pixel value transformation (a shared one becomes per-frame), and their
    real world value mapping re-expressed for it within the ``written`` stored range (the
    declared ``BitsStored`` and signedness)."""
    pairs = geo.get("pairs")
    if pairs is None:
        return
    srcs = [
        series.slices[nearest_source(k, geo["factor"], series.n_slices)] for k in range(len(frames))
    ]
    moved = [k for k, s in enumerate(srcs) if pairs[k] != (s.slope, s.intercept)]
    if not moved:
        return
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    _per_frame(shared, frames, _PVT)
    _per_frame(shared, frames, _RWVM)
    for k in moved:
        item, src = frames[k], srcs[k]
        if (pvt := _own(item, _PVT)) is None:
            pvt = Dataset()
            pvt.RescaleType = "US"
            item[_PVT] = Sequence([pvt])  # (a source without one: rescale 1/0)
        pvt.RescaleSlope, pvt.RescaleIntercept = (ds_number(v) for v in pairs[k])
        remap_real_world(item, (src.slope, src.intercept), pairs[k], written, src.label, src.ds)


def _unknown(value: Any) -> bool:
    """An empty value or 0 (DICOM's "unknown" in a Type 2 tag)."""
    try:
        return value in (None, "") or float(value) == 0
    except (TypeError, ValueError):
        return False


def _top_level_measures(ds: Any, groups: tuple[Any, ...], geo: dict[str, Any]) -> None:
    """A top-level ``SliceThickness`` / ``SpacingBetweenSlices`` of the source (beside its
    functional groups) says what the groups now say: the new value where the source had one,
    removed where it was an empty or 0 one and a ``PixelMeasuresSequence`` holds the value (a
    stale ``SliceThickness 0`` beside the new thickness of an isotropic output)."""
    in_groups = any(_own(g, "PixelMeasuresSequence") is not None for g in groups)
    updates = []
    if geo.get("slice_thickness") is not None and "SliceThickness" in ds:
        updates.append(("SliceThickness", geo["slice_thickness"]))
    if "SpacingBetweenSlices" in ds and stale_spacing(ds, geo["slice_spacing"], geo["factor"]):
        updates.append(("SpacingBetweenSlices", geo["slice_spacing"]))
    for key, new in updates:
        if in_groups and _unknown(ds[key].value):
            delattr(ds, key)
        else:
            setattr(ds, key, ds_number(new))


def write_enhanced(
    series: DicomSeries, stored: np.ndarray, info: dict[str, Any], geo: dict[str, Any]
) -> Any:
    """The derived enhanced dataset (not yet saved) for ``stored`` ``(frames, rows, cols)``."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence
    from pydicom.uid import generate_uid

    ds = copy.deepcopy(series.first)
    derive_common(ds, series, info)
    t = list(ds.get("ImageType", ["DERIVED", "PRIMARY"]))
    ds.ImageType = ["DERIVED", *t[1:]]
    ds.SOPInstanceUID = generate_uid()
    n, rows, cols = stored.shape
    ds.NumberOfFrames = n
    ds.Rows, ds.Columns = rows, cols
    for key in ("ConcatenationUID", "ConcatenationFrameOffsetNumber", "InConcatenationNumber"):
        if key in ds:
            delattr(ds, key)
    if str(ds.get("SOPClassUID", "")) == _ENHANCED_MR:
        for key in _ORIGINAL_ONLY_MR:
            if key in ds:
                delattr(ds, key)
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = shared_seq[0] if shared_seq else Dataset()
    dim_pos = None
    for j, d in enumerate(ds.get("DimensionIndexSequence", [])):
        if int(d.get("DimensionIndexPointer", 0)) == _IN_STACK:
            dim_pos = j
    frames = []
    for k in range(n):
        src = series.slices[nearest_source(k, geo["factor"], series.n_slices)]
        item = copy.deepcopy(src.frame_item) if src.frame_item is not None else Dataset()
        pp = Dataset()
        pp.ImagePositionPatient = [ds_number(v) for v in geo["positions"][k]]
        item.PlanePositionSequence = Sequence([pp])
        if (fc := _own(item, "FrameContentSequence")) is not None:
            if "InStackPositionNumber" in fc:
                fc.InStackPositionNumber = k + 1
            if dim_pos is not None and "DimensionIndexValues" in fc:
                vals = list(fc.DimensionIndexValues)
                if dim_pos < len(vals):
                    vals[dim_pos] = k + 1
                    fc.DimensionIndexValues = vals
        frames.append(item)
    ds.PerFrameFunctionalGroupsSequence = Sequence(frames)
    _regrid(series, shared, frames, geo, bits_range(info["signed"], info["bits_stored"]))
    # Macros are updated where they live: in the shared group and/or in each frame's item.
    for grp in (shared, *frames):
        if (m := _own(grp, "PixelMeasuresSequence")) is not None:
            m.PixelSpacing = [ds_number(v) for v in geo["spacing"]]
            if stale_spacing(m, geo["slice_spacing"], geo["factor"]):
                m.SpacingBetweenSlices = ds_number(geo["slice_spacing"])
            if geo.get("slice_thickness") is not None:
                m.SliceThickness = ds_number(geo["slice_thickness"])
        for seq in _FRAME_TYPE_SEQS:
            if (m := _own(grp, seq)) is not None and "FrameType" in m:
                m.FrameType = ["DERIVED", *list(m.FrameType)[1:]]
    _top_level_measures(ds, (shared, *frames), geo)
    warn = derived_warner(series, info)
    map_pixel_tags(ds, geo["plane_factors"], warn)  # top level and functional groups
    recount(ds, None, n, series.n_slices, None, warn)
    refs = {s.ds.SOPInstanceUID: s.ds for s in series.slices}
    ds.SourceImageSequence = Sequence([source_ref(d) for d in refs.values()])
    ds.PixelData = np.ascontiguousarray(stored).astype(stored.dtype.newbyteorder("<")).tobytes()
    ds["PixelData"].VR = "OW"
    return ds


__all__ = ["write_enhanced"]
