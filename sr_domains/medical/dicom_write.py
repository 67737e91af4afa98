"""Write a super-resolved volume as a *derived* DICOM series (pydicom, imported lazily).

Per output image (see ``docs/medical.md`` for the full list):

* kept, new and dropped tags, and how files are written: :mod:`.dicom_derive`.
* geometry from the upscaled affine (voxel-centre rule): PixelSpacing / s, Rows/Columns x s,
  ImagePositionPatient moved by ``(1/s - 1)/2`` pixel along the row and column directions
  (:func:`sr_domains.image.scale_dicom_plane`), InstanceNumber 1..N in spatial order,
  SliceLocation carried over (refitted when the slice axis is upscaled).
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
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import require
from .dicom_derive import (
    SERIES_NUMBER_OFFSET,
    derive_common,
    derived_kind,
    ds_number,
    nearest_source,
    now_stamp,
    save_derived,
    source_ref,
    stale_spacing,
)
from .dicom_enhanced import write_enhanced
from .dicom_series import DicomSeries
from .dicom_values import (
    Pair,
    bits_range,
    fitted_pair,
    grid_span,
    holding_dtype,
    int_tag,
    keep_off_padding,
    kept_bits_stored,
    kept_range,
    padding_range,
    pair_holds,
    remap_real_world,
    retag_padding,
    shifted_pair,
)
from .geometry import slice_normal

log = logging.getLogger(__name__)


def padding_value(
    values: np.ndarray, series: DicomSeries, dtype: np.dtype | None = None
) -> int | None:
    """The stored value the output's padding pixels (NaN in ``values``) are written as, or
    None without ``PixelPaddingValue``. The source's value, except where a Modality LUT is
    dropped: the output's stored values are then modality values, so the source's stored
    padding value could name real tissue (e.g. 0 mapped to -1000 HU while water reads 0). It
    becomes the LUT's output for it, or an end of the stored type (``dtype``, default
    :func:`output_dtype`), whichever no valid output pixel holds."""
    pad = series.padding
    if pad is None:
        return None
    ppv = series.padding_value  # the value itself, not the range's low end
    if ppv is None:
        return pad[0]
    luts = [s.lut for s in series.slices if s.lut is not None]
    if not luts:
        return ppv
    dt = output_dtype(values, series) if dtype is None else dtype
    info = np.iinfo(dt)
    valid = values[~np.isnan(values)]
    lo, hi = (float(np.rint(valid.min())), float(np.rint(valid.max()))) if valid.size else (1, 0)
    own = int(luts[0].apply(np.array([ppv]))[0])
    for v in (own, int(info.min), int(info.max)):
        if not lo <= v <= hi:
            return v
    log.warning(
        "padding pixels written as %d, a value valid pixels also hold: the output's stored "
        "values span the whole %s range",
        own,
        dt,
    )
    return own


def _rounded(values: np.ndarray, series: DicomSeries, factor: float, k: int) -> np.ndarray:
    """Output slice ``k`` in the stored units of its nearest source slice, rounded (float)."""
    src = series.slices[nearest_source(k, factor, series.n_slices)]
    return np.rint((values[k].astype(np.float64) - src.intercept) / src.slope)


def output_dtype(values: np.ndarray, series: DicomSeries) -> np.dtype:
    """The integer type the derived series is written in: :attr:`DicomSeries.stored_dtype`,
    except for a series whose files differ in signedness or bits (e.g. one signed slice among
    unsigned ones up to 42900): then the narrowest type (16 bits where possible) that holds
    every output value and the padding values, so no slice is clipped to another's range."""
    dt = series.stored_dtype
    if not series.mixed_stored_types:
        return dt
    factor = values.shape[0] / series.n_slices
    lo, hi = np.inf, -np.inf
    for k in range(values.shape[0]):
        v = _rounded(values, series, factor, k)
        v = v[~np.isnan(v)]
        if v.size:
            lo, hi = min(lo, float(v.min())), max(hi, float(v.max()))
    for s in series.slices:
        pad = padding_range(s.ds)
        if pad is not None:
            lo, hi = min(lo, pad[0]), max(hi, pad[1])
    signed = int(series.first.get("PixelRepresentation", 0) or 0) == 1
    narrow = holding_dtype(lo, hi, signed) if lo <= hi else None
    out = narrow if narrow is not None and narrow.itemsize <= dt.itemsize else dt
    log.info(
        "%s: the files differ in PixelRepresentation/BitsAllocated/BitsStored "
        "(0028,0103/0100/0101); written as %s (stored values %g..%g)",
        series.source,
        out,
        lo,
        hi,
    )
    return out


def _hull(pairs: list[Pair], stored: tuple[int, int]) -> tuple[float, float, float, float]:
    """``(low, high, low - half step, high + half step)``: the modality values some of the
    rescale ``pairs`` can give the ``stored`` range, and beyond which rounding clips."""
    spans = [(*grid_span(p, stored), abs(p[0]) / 2) for p in pairs]
    lo = min(spans, key=lambda g: g[0])
    hi = max(spans, key=lambda g: g[1])
    return lo[0], hi[1], lo[0] - lo[2], hi[1] + hi[2]


def slice_pair(
    x: np.ndarray,
    k: int,
    factor: float,
    series: DicomSeries,
    full: tuple[int, int],
    kept: tuple[int, int],
) -> Pair:
    """``(slope, intercept)``: the rescale output slice ``k`` (valid modality values ``x``) is
    written with. An in-plane output slice is its source slice's image: that slice's
    (clipped to its grid, as before). Between source slices, the first whose value grid
    holds ``x``: the nearest slice's within the ``kept``
    stored range (the sources' ``BitsStored``); the finest of the two slices it lies between
    within ``kept``; the nearest's value grid with its intercept moved by whole slope steps
    (:func:`.dicom_values.shifted_pair`, within ``kept``: the series keeps its
    ``BitsStored``); the nearest's within the ``full`` range of the written type; else a new
    slope (:func:`.dicom_values.fitted_pair`, within ``kept``), with the nearest slice's
    intercept where it can be one. A series of one rescale tries its own within ``full``
    before a shifted one (written as before: its rescale kept, ``BitsStored`` widened). So
    no slice is clipped to its neighbour's range (a PET slice's slope is sized to its own
    maximum)."""
    n = series.n_slices
    i = nearest_source(k, factor, n)
    own = (series.slices[i].slope, series.slices[i].intercept)
    if factor == 1 or not x.size:
        return own
    lo, hi = float(x.min()), float(x.max())
    if pair_holds(own, lo, hi, kept):
        return own
    t = (k + 0.5) / factor - 0.5
    near = sorted(
        {int(min(max(v, 0), n - 1)) for v in (np.floor(t), np.ceil(t))},
        key=lambda j: abs(series.slices[j].slope),
    )
    for j in near:
        pair = (series.slices[j].slope, series.slices[j].intercept)
        if pair_holds(pair, lo, hi, kept):
            return pair
    uniform = len({(s.slope, s.intercept) for s in series.slices}) == 1
    shifted = shifted_pair(own, lo, hi, kept)
    if (uniform or shifted is None) and pair_holds(own, lo, hi, full):
        return own
    if shifted is None:
        cs = [own[1], *(series.slices[j].intercept for j in near)]
        shifted = fitted_pair(lo, hi, list(dict.fromkeys(cs)), kept)
    return float(ds_number(shifted[0])), float(ds_number(shifted[1]))


def stored_slices(
    values: np.ndarray,
    series: DicomSeries,
    factor: float,
    pad: int | None = None,
    dtype: np.dtype | None = None,
) -> tuple[np.ndarray, list[tuple[float, float]], int]:
    """Stored pixels of each output slice with its rescale (:func:`slice_pair`), NaN
    (padding) as ``pad`` (default :func:`padding_value`); rounded and clipped to ``dtype``
    (default :func:`output_dtype`). Values of a slice between source slices (``factor`` !=
    1) are clipped only to what some source slice's grid can hold (values no source slice
    could hold, e.g. CT ringing below stored 0). A valid pixel never holds a value the slice
    declares as padding (``PixelPaddingValue`` [..``RangeLimit``]): it moves to the nearest
    value outside (:func:`.dicom_values.keep_off_padding`). Returns ``(stored, [(slope,
    intercept)], n_clipped)``."""
    dt = output_dtype(values, series) if dtype is None else np.dtype(dtype)
    info = np.iinfo(dt)
    full = (int(info.min), int(info.max))
    kept = kept_range(dt, [s.ds for s in series.slices])
    hull = _hull([(s.slope, s.intercept) for s in series.slices], full)
    pad = padding_value(values, series, dt) if pad is None else pad
    out = np.empty(values.shape, dt)
    pairs, clipped, moved = [], 0, 0
    for k in range(values.shape[0]):
        src = series.slices[nearest_source(k, factor, series.n_slices)]
        x = values[k].astype(np.float64)
        nan = np.isnan(x)
        if factor != 1:  # beyond every source grid: clipped (rounding ends included)
            clipped += int(((x < hull[2]) | (x > hull[3])).sum())
            np.clip(x, hull[0], hull[1], out=x)
        slope, intercept = slice_pair(x[~nan], k, factor, series, full, kept)
        v = np.rint((x - intercept) / slope)
        clipped += int(((v < info.min) | (v > info.max)).sum())
        np.clip(v, info.min, info.max, out=v)
        own = int_tag(src.ds, "PixelPaddingValue") if src.lut is None else None
        fill = own if own is not None and info.min <= own <= info.max else pad
        v[nan] = fill if fill is not None else 0
        out[k] = v.astype(dt)
        declared = padding_range(src.ds) if own is not None else None
        if declared is None and fill is not None and (src.lut is not None or nan.any()):
            declared = (fill, fill)  # the value the writer tags this slice's padding with
        if declared is not None:
            moved += keep_off_padding(out[k], ~nan, declared)
        pairs.append((slope, intercept))
    if clipped:
        log.warning("%d pixel value(s) clipped to the %s range", clipped, dt)
    if moved:
        log.info("%d valid pixel(s) moved off the padding value(s)", moved)
    return out, pairs, clipped


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
    dtype = output_dtype(volume, series)
    pad = padding_value(volume, series, dtype)
    stored, pairs, _ = stored_slices(volume, series, factor, pad, dtype)
    pf = (float(scale), float(scale)) if plane_factors is None else plane_factors
    info = {
        "series_uid": pydicom.uid.generate_uid(),
        "now": now_stamp(),
        "label": label if label is not None else f"SR x{scale}",
        "derivation": derivation,
        "kind": derived_kind(factor, plane_factors),  # picks the SeriesNumber offset
        # ... with the scale (isotropic: its largest factor), so x2 and x4 outputs differ
        "scale": float(scale) if plane_factors is None else max(factor, *plane_factors),
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
        # between planes, along the normal (under gantry tilt shorter than the position step)
        "slice_spacing": float(abs(affine[:3, 0] @ slice_normal(iop))),
        "slice_thickness": slice_thickness,
        "pairs": pairs,  # each frame's (slope, intercept)
        "locations": _slice_locations(series, proj, factor) if series.has_geometry else None,
    }
    if series.enhanced:
        path = folder / "IM00001.dcm"
        ds = write_enhanced(series, stored, info, geo)
        save_derived(ds, path)
        return [path]
    out = []
    written = bits_range(info["signed"], info["bits_stored"])  # what the tags declare
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
        if "ImagerPixelSpacing" in ds:
            ds.ImagerPixelSpacing = [
                ds_number(float(v) / f) for v, f in zip(ds.ImagerPixelSpacing, pf)
            ]
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
    "padding_value",
    "slice_pair",
    "stored_slices",
    "write_derived_series",
]
