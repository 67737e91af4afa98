"""Tags in pixel coordinates of the source grid, put on the grid of a derived image.

A derived image has ``fr`` times the rows and ``fc`` times the columns (the in-plane factors;
1 = unchanged), on the voxel-centre rule of its geometry: the centre of source pixel ``i``
(0-based) is at ``(i + 0.5) * f - 0.5`` on the new grid, and a source pixel's edges at
``i * f`` and ``(i + 1) * f``. :func:`map_pixel_tags` updates, wherever they occur in the
image's own dataset (functional groups included, not in sequences that reference other
objects):

* spacings per pixel: ``ImagerPixelSpacing``, ``NominalScannedPixelSpacing``,
  ``ObjectPixelSpacingInCenterOfBeam``, RT Image ``ImagePlanePixelSpacing`` divided;
  ``PixelAspectRatio`` for unequal factors; ``MaskSubPixelShift`` (pixels) multiplied;
  ``RTImagePosition`` (mm, the first pixel's centre) moved to the new first pixel's centre.
* ultrasound regions (``SequenceOfUltrasoundRegions``): ``PhysicalDeltaX/Y`` divided, the
  region bounds ``RegionLocationMin/Max`` mapped as pixel edges (the new pixels whose centres
  lie in the region), the reference pixel (relative to the region's corner) as a pixel
  centre. Where that centre falls between new pixels (x2, x4) the nearest pixel is written
  and ``ReferencePixelPhysicalValueX/Y`` moved by the same amount, so every pixel keeps its
  physical value; Doppler sample volume and TM-line positions (displacements from the
  reference pixel) are kept where they land on a pixel.
* display shutters and collimators (1-based rows/columns): rectangle edges as pixel edges,
  a circle's centre as a point (rounded to a pixel, the radius enlarged to hold the exact
  circle: the shutter never hides a pixel the source showed), a convex polygon by the hull
  of the whole pixels around its exact vertices (:mod:`.dicom_polygon`: it holds the exact
  polygon). A circle under unequal factors (an ellipse), a non-convex polygon whose vertices
  fall between the new pixels (x2, x4; mapped as is where they land on pixels, x3) and a
  shutter drawn by an overlay (overlays are dropped) are removed.

A tag that cannot be mapped exactly is removed, with a WARNING naming it (once per series):
a derived image must not carry a wrong calibration. So is one that cannot be mapped at all: a
region without its bounds, a shutter edge without its partner, a circle without its radius,
bounds no new pixel centre lies in (a factor below 1). :func:`recount` updates the counts that
change with the number of slices (``ImagesInAcquisition``, PET/NM ``NumberOfSlices`` and
``ImageIndex``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from fractions import Fraction
from functools import partial
from typing import Any

from .dicom_ds import ds_number
from .dicom_polygon import containing_vertices

log = logging.getLogger(__name__)

_EPS = 1e-9
#: Spacings per pixel, ``(between rows, between columns)``.
_SPACINGS = (
    "ImagerPixelSpacing",
    "NominalScannedPixelSpacing",
    "ObjectPixelSpacingInCenterOfBeam",
    "ImagePlanePixelSpacing",
)
#: RT Image: rows along +x, columns along -y of the image receptor (RTImageOrientation absent).
_RT_ORIENTATION = (1.0, 0.0, 0.0, 0.0, -1.0, 0.0)
#: Sequences whose items describe other objects (left as they are).
_OTHER_OBJECTS = ("Referenced", "Source", "Derivation", "ContributingEquipment", "IconImage")
#: (shape tag, rectangle edges (left, right, upper, lower), circle centre, radius, polygon).
_SHUTTERS = (
    (
        "ShutterShape",
        (
            "ShutterLeftVerticalEdge",
            "ShutterRightVerticalEdge",
            "ShutterUpperHorizontalEdge",
            "ShutterLowerHorizontalEdge",
        ),
        "CenterOfCircularShutter",
        "RadiusOfCircularShutter",
        "VerticesOfThePolygonalShutter",
    ),
    (
        "CollimatorShape",
        (
            "CollimatorLeftVerticalEdge",
            "CollimatorRightVerticalEdge",
            "CollimatorUpperHorizontalEdge",
            "CollimatorLowerHorizontalEdge",
        ),
        "CenterOfCircularCollimator",
        "RadiusOfCircularCollimator",
        "VerticesOfThePolygonalCollimator",
    ),
)
_SHUTTER_EXTRAS = ("ShutterPresentationValue", "ShutterPresentationColorCIELabValue")

Warn = Callable[[str, str], None]


def warner(label: str, warned: set[str]) -> Warn:
    """A ``warn(tag, why)`` that logs one WARNING per tag (``warned`` holds those logged)."""

    def warn(tag: str, why: str) -> None:
        if tag not in warned:
            warned.add(tag)
            log.warning("%s: %s %s; removed from the derived series", label, tag, why)

    return warn


def map_pixel_tags(ds: Any, factors: tuple[float, float], warn: Warn) -> None:
    """Put the pixel-coordinate tags of ``ds`` (see module docs) on a grid ``factors``
    ``(rows, columns)`` times as fine; ``warn(tag, why)`` for each tag removed. A tag whose
    value cannot be read (empty, malformed) is removed too."""
    fr, fc = (float(f) for f in factors)
    same = abs(fr - 1) < _EPS and abs(fc - 1) < _EPS
    for item in list(_items(ds)):
        if "ShutterOverlayGroup" in item:  # (the overlay itself is dropped: dicom_derive)
            _drop_shape(item, _SHUTTERS[0], "BITMAP", ("ShutterOverlayGroup",))
            warn("ShutterOverlayGroup", "(a shutter drawn by an overlay, which is dropped)")
        if same:
            continue
        if "RTImagePosition" in item:  # (reads the source's ImagePlanePixelSpacing)
            _guarded(item, ("RTImagePosition",), partial(_rt_position, item, fr, fc), warn)
        for key, fn in (*((k, _spacing) for k in _SPACINGS), ("MaskSubPixelShift", _shift)):
            if key in item:
                _guarded(item, (key,), partial(fn, item, key, fr, fc), warn)
        if "PixelAspectRatio" in item:
            _aspect(item, fr, fc, warn)
        if "SequenceOfUltrasoundRegions" in item:
            seq = ("SequenceOfUltrasoundRegions",)
            _guarded(item, seq, partial(_us_regions, item, fr, fc, warn), warn)
        for spec in _SHUTTERS:
            keys: tuple[str, ...] = (spec[0], *spec[1], *spec[2:])
            if any(k in item for k in keys):
                extras = _SHUTTER_EXTRAS if spec[0] == "ShutterShape" else ()
                keys = (*keys, *extras)  # (removed with an unreadable shutter)
                _guarded(item, keys, partial(_shutter, item, spec, fr, fc, warn), warn)


def _guarded(item: Any, keys: tuple[str, ...], fn: Callable[[], None], warn: Warn) -> None:
    """``fn()``; when a value it reads is malformed, ``keys`` are removed (and warned)."""
    try:
        fn()
    except (TypeError, ValueError, IndexError, AttributeError, KeyError):
        for key in keys:
            if key in item:
                del item[key]
        warn(keys[0], "cannot be read")


def _spacing(item: Any, key: str, fr: float, fc: float) -> None:
    values = [float(v) for v in item[key].value]
    if len(values) != 2:
        raise ValueError(key)
    setattr(item, key, [_like(item, key, v / f) for v, f in zip(values, (fr, fc))])


def _shift(item: Any, key: str, fr: float, fc: float) -> None:
    values = [float(v) for v in item[key].value]
    if len(values) != 2:
        raise ValueError(key)
    setattr(item, key, [values[0] * fr, values[1] * fc])


def _rt_position(item: Any, fr: float, fc: float) -> None:
    """RT Image ``RTImagePosition`` (x, y in mm: the centre of the first pixel) at the centre
    of the new first pixel, ``0.5 / f - 0.5`` source pixels along the rows and columns."""
    x, y = (float(v) for v in item.RTImagePosition)
    sr, sc = (float(v) for v in item.ImagePlanePixelSpacing)  # the source's, not yet divided
    o = [float(v) for v in item.get("RTImageOrientation") or _RT_ORIENTATION]
    if len(o) != 6:
        raise ValueError("RTImageOrientation")
    dc, dr = sc * (0.5 / fc - 0.5), sr * (0.5 / fr - 0.5)
    new = (x + dc * o[0] + dr * o[3], y + dc * o[1] + dr * o[4])
    item.RTImagePosition = [_like(item, "RTImagePosition", v) for v in new]


def _us_regions(item: Any, fr: float, fc: float, warn: Warn) -> None:
    for region in item.SequenceOfUltrasoundRegions:
        _us_region(region, fr, fc, warn)


def _items(ds: Any) -> Iterator[Any]:
    """``ds`` and the items of its sequences (recursively) that describe this image."""
    yield ds
    for elem in ds:
        if elem.VR == "SQ" and not any(k in elem.keyword for k in _OTHER_OBJECTS):
            for item in elem.value:
                yield from _items(item)


def _like(item: Any, key: str, value: float) -> Any:
    """``value`` as tag ``key`` holds it (a decimal string within 16 characters)."""
    if item[key].VR == "DS":
        return ds_number(value)
    return value


def _aspect(item: Any, fr: float, fc: float, warn: Warn) -> None:
    """``PixelAspectRatio`` (vertical : horizontal size) of pixels ``fr`` x ``fc`` smaller."""
    if abs(fr - fc) < _EPS:
        return
    try:
        v, h = (int(x) for x in item.PixelAspectRatio)
        qr, qc = (Fraction(f).limit_denominator(1000) for f in (fr, fc))
        if abs(qr - fr) > _EPS or abs(qc - fc) > _EPS or v <= 0 or h <= 0:
            raise ValueError
    except (TypeError, ValueError):
        del item.PixelAspectRatio
        warn("PixelAspectRatio", "cannot be stated for the new pixels")
        return
    ratio = Fraction(v, h) * qc / qr
    item.PixelAspectRatio = [ratio.numerator, ratio.denominator]


def _edges(lo: int, hi: int, f: float) -> tuple[int, int]:
    """Inclusive 0-based pixel bounds ``lo..hi``: the new pixels whose centres lie in them
    (ValueError when none does: a factor below 1)."""
    new = math.ceil(lo * f - 0.5 - _EPS), math.floor((hi + 1) * f - 0.5 + _EPS)
    if new[1] < new[0]:
        raise ValueError("no new pixel in the bounds")
    return new


def _centre(i: float, f: float) -> float:
    """0-based source pixel centre ``i`` on the new grid."""
    return (i + 0.5) * f - 0.5


def _whole(x: float) -> int | None:
    """``x`` as an int when it is one (to rounding), else None."""
    return round(x) if abs(x - round(x)) < 1e-6 else None


def _us_region(region: Any, fr: float, fc: float, warn: Warn) -> None:
    """One item of ``SequenceOfUltrasoundRegions`` (PS3.3 C.8.5.5) on the new grid."""
    for ax, f in (("X", fc), ("Y", fr)):
        lo_key = f"RegionLocationMin{ax}0"
        hi_key = f"RegionLocationMax{ax}1"
        if lo_key not in region or hi_key not in region:  # (Type 1)
            raise KeyError(lo_key)
        lo = int(region[lo_key].value)
        new_lo, new_hi = _edges(lo, int(region[hi_key].value), f)
        region[lo_key].value, region[hi_key].value = new_lo, new_hi
        delta_key = f"PhysicalDelta{ax}"
        if delta_key in region:
            region[delta_key].value = float(region[delta_key].value) / f
        ref_key, phys_key = f"ReferencePixel{ax}0", f"ReferencePixelPhysicalValue{ax}"
        ref = int(region[ref_key].value) if ref_key in region else 0
        exact = _centre(lo + ref, f) - new_lo  # relative to the new corner, as the source's
        written: float | None = exact
        if ref_key in region:
            written = _whole(exact)
            if written is None and phys_key in region and delta_key in region:
                written = math.floor(exact + 0.5)
                moved = (written - exact) * float(region[delta_key].value)
                region[phys_key].value = float(region[phys_key].value) + moved
            if written is None:
                del region[ref_key]
                warn(ref_key, "falls between the new pixels (no ReferencePixelPhysicalValue)")
            else:
                region[ref_key].value = written
        for key in (
            f"DopplerSampleVolume{ax}Position",
            f"TMLinePosition{ax}0",
            f"TMLinePosition{ax}1",
        ):
            if key not in region:
                continue
            new = (
                None if written is None else _whole(exact + float(region[key].value) * f - written)
            )
            if new is None:
                del region[key]
                warn(key, "falls between the new pixels")
            else:
                region[key].value = new


def _shutter(item: Any, spec: tuple[Any, ...], fr: float, fc: float, warn: Warn) -> None:
    """A display shutter or collimator (1-based rows/columns, PS3.3 C.7.6.11) on the new grid."""
    _, (left, right, upper, lower), centre, radius, vertices = spec
    for lo_key, hi_key, f in ((left, right, fc), (upper, lower, fr)):
        if (lo_key in item) != (hi_key in item):
            raise KeyError(hi_key)
        if lo_key in item:
            lo, hi = _edges(int(item[lo_key].value) - 1, int(item[hi_key].value) - 1, f)
            item[lo_key].value, item[hi_key].value = lo + 1, hi + 1
    if (centre in item) != (radius in item):
        raise KeyError(radius)
    if centre in item:
        if abs(fr - fc) > _EPS:
            _drop_shape(item, spec, "CIRCULAR", (centre, radius))
            warn(centre, "(a circle becomes an ellipse under unequal row/column factors)")
        else:
            exact = [_centre(float(v) - 1, f) + 1 for v, f in zip(item[centre].value, (fr, fc))]
            near = [math.floor(x + 0.5) for x in exact]
            off = math.hypot(near[0] - exact[0], near[1] - exact[1])
            item[centre].value = near
            item[radius].value = math.ceil(float(item[radius].value) * fc + off - 1e-6)
    if vertices in item:
        pts = [float(v) for v in item[vertices].value]
        exact = [_centre(v - 1, fr if k % 2 == 0 else fc) + 1 for k, v in enumerate(pts)]
        new = containing_vertices(pts, exact)
        if new is None:
            _drop_shape(item, spec, "POLYGONAL", (vertices,))
            why = "(a non-convex polygon whose vertices fall between the new pixels)"
            warn(vertices, why)
        else:
            item[vertices].value = new


def _drop_shape(item: Any, spec: tuple[Any, ...], shape: str, keys: tuple[str, ...]) -> None:
    """Remove ``shape`` (its ``keys``) from a shutter/collimator; the whole shutter when no
    shape is left."""
    for key in keys:
        if key in item:
            del item[key]
    shape_key = spec[0]
    value = item[shape_key].value
    shapes = [value] if isinstance(value, str) else list(value)
    left = [str(s) for s in shapes if str(s).upper() != shape]
    if left:
        item[shape_key].value = left if len(left) > 1 else left[0]
        return
    del item[shape_key]
    if shape_key == "ShutterShape":
        for key in _SHUTTER_EXTRAS:
            if key in item:
                del item[key]


def recount(
    ds: Any, k: int | None, n_out: int, n_src: int, src_index: list[Any] | None, warn: Warn
) -> None:
    """Counts that change with the number of slices (``n_src`` -> ``n_out``):
    ``ImagesInAcquisition`` and ``NumberOfSlices`` become ``n_out`` where they counted the
    source series, else are removed; ``ImageIndex`` (PET) of output slice ``k`` follows the
    spatial order where the source's ``src_index`` (in spatial order) ran 1..n either way,
    else is removed."""
    if n_out == n_src:
        return
    for key in ("ImagesInAcquisition", "NumberOfSlices"):
        if key in ds and str(ds[key].value).strip():
            value = ds[key].value
            if _count(value) == n_src:
                ds[key].value = n_out
            else:
                del ds[key]
                warn(key, f"{value} does not count the source's {n_src} images")
    if k is None or "ImageIndex" not in ds:
        return
    idx = [_count(v) for v in (src_index or [])]
    if idx == list(range(1, n_src + 1)):
        ds.ImageIndex = k + 1
    elif idx == list(range(n_src, 0, -1)):
        ds.ImageIndex = n_out - k
    else:
        del ds.ImageIndex
        warn("ImageIndex", "does not follow the slice order")


def _count(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


__all__ = ["map_pixel_tags", "recount", "warner"]
