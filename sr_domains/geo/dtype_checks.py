"""Checks of the output's type, nodata value and value range against the input's data, before
any work: an output nodata the type cannot hold, a ``--nodata`` that would turn valid pixels
into nodata, and a ``--dtype`` that clips or rounds the data away or a ``--value-range`` the
data leave (warnings)."""

from __future__ import annotations

import logging
import math
from typing import cast

import numpy as np

from ..errors import ConfigError, InputFileError
from ..value_domain import ValueOptions
from ..value_ops import nodata_problem
from ..value_range_check import outside_range, warn_outside_range
from .output_spec import OUTPUT_DTYPES, a_dtype
from .reader import RasterSource

log = logging.getLogger(__name__)


def check_output_nodata(rs: RasterSource, dtype: str | None) -> None:
    """Refuse, naming the file, an output nodata value that the output type (``dtype``, else
    the input's) cannot hold, and a ``--nodata V`` that would turn valid pixels into nodata.

    ``--nodata V`` is the output's nodata value and also marks input pixels equal to V
    invalid. When the output cannot hold the file's own nodata (NaN or -9999 as uint16) or
    the bands' nodata values differ, V is needed for the output: then valid pixels equal to V
    would silently become nodata, so the run is refused with their count and a value outside
    the data. Every refusal names such a value (the type's extreme, or NaN for floats).
    Reads the file once (strip by strip) only in those two cases.
    """
    if dtype is not None and dtype not in OUTPUT_DTYPES:
        raise ConfigError(f"--dtype must be one of {', '.join(OUTPUT_DTYPES)}, got {dtype!r}")
    out = np.dtype(dtype) if dtype is not None else rs.dtype
    own = [v for v in rs.own_nodata if v is not None]
    lost = [v for v in own if nodata_problem(v, out)]
    differ = len({"nan" if np.isnan(v) else v for v in own}) > 1
    if not rs.nodata_override:
        if lost:  # (bands that differ are refused by the reader)
            lo, hi, _ = rs.own_valid_stats()
            raise ConfigError(
                f"{rs.path}: nodata {lost[0]:.10g} cannot be stored as {out}; pass --nodata V "
                f"for the output: {_safe_hint(lo, hi, out)}"
                + (" (pixels that are NaN stay invalid)" if np.isnan(lost[0]) else "")
            )
        return
    v = cast(float, rs.nodata)
    problem = nodata_problem(v, out)
    if problem:
        raise ConfigError(
            f"{rs.path}: {problem}: --nodata is the output's nodata value, so it must be a "
            f"value of the output type (--dtype, default the input's)"
        )
    if not (lost or differ):
        return  # V is a choice: it marks input pixels invalid, as documented
    lo, hi, count = rs.own_valid_stats(v)
    if count:
        why = (
            f"the file's nodata {lost[0]:.10g} cannot be stored as {out}"
            if lost
            else "the bands' nodata values differ and a GeoTIFF holds one"
        )
        raise ConfigError(
            f"{rs.path}: {count} valid pixel(s) equal the --nodata value {v:.10g} and would "
            f"become nodata (--nodata is needed for the output because {why}, and it also "
            f"marks input pixels equal to it invalid); pass {_safe_hint(lo, hi, out)}"
        )


def safe_nodata(lo: float, hi: float, dtype: np.dtype) -> float | None:
    """A nodata value of ``dtype`` that no valid value in ``lo..hi`` becomes when cast (rounded
    and clipped): NaN for floats, else the type's minimum (signed) or maximum (unsigned), else
    the other extreme; None when the data reach both."""
    if dtype.kind == "f":
        return math.nan
    info = np.iinfo(dtype)
    ends = (info.min, info.max) if dtype.kind == "i" else (info.max, info.min)
    for end in ends:
        if math.isnan(lo) or end < lo - 0.5 or end > hi + 0.5:
            return float(end)
    return None


def _safe_hint(lo: float, hi: float, dtype: np.dtype) -> str:
    """``a <dtype> value outside the data (...), e.g. --nodata N``, from :func:`safe_nodata`."""
    span = "no valid pixel" if math.isnan(lo) else f"the valid data span {lo:.6g}..{hi:.6g}"
    safe = safe_nodata(lo, hi, dtype)
    if safe is None:
        return f"a wider --dtype: the data reach both ends of {dtype} ({span})"
    text = "nan" if math.isnan(safe) else str(int(safe))
    return f"{a_dtype(dtype)} value outside the data ({span}), e.g. --nodata {text}"


#: Fewest whole numbers the valid range of fractional float data must span for an integer
#: ``--dtype`` to pass without a warning (reflectance 0..1 as uint16 keeps only 0 and 1).
PRECISION_STEPS = 16


def warn_clipping_dtype(rs: RasterSource, dtype: np.dtype) -> None:
    """Warn when ``--dtype`` cannot hold the input's values: values outside the type's range
    are clipped (uint16 reflectance written as uint8), and fractional float values whose range
    spans fewer than :data:`PRECISION_STEPS` whole numbers collapse to a few levels
    (reflectance 0..1 as uint16: 0 and 1); a cast neither rescales. Float data holding whole
    numbers (a DEM in metres, a float copy of DN) is not warned. Judged on the sample the
    profile is fitted on; nothing is read when the input type fits. A sample from the file's
    overviews that finds values outside the type is judged again at full resolution (cubic
    overviews overshoot: a float32 0..1 image reads -0.0024..1.0024), as for
    :func:`warn_value_range`. A cast that would leave one value for every valid pixel is
    refused (:class:`InputFileError`)."""
    if dtype.kind == "f":
        return
    info = np.iinfo(dtype)
    src = rs.dtype
    if src.kind in "ui" and np.iinfo(src).min >= info.min and np.iinfo(src).max <= info.max:
        return
    values, valid = rs.sample()
    v = values[valid]
    outside = int(np.count_nonzero((v < info.min - 0.5) | (v > info.max + 0.5)))
    full = rs.full_resolution_sample() if outside else None  # (an overview's overshoot?)
    if full is not None:
        v = full[0][full[1]]
        outside = int(np.count_nonzero((v < info.min - 0.5) | (v > info.max + 0.5)))
    kept = np.unique(np.clip(np.rint(v), info.min, info.max))
    if kept.size == 1 and np.unique(v).size > 1:  # every valid value becomes one: refused
        raise InputFileError(
            rs.path,
            f"--dtype {dtype.name} would write one value ({int(kept[0])}) for every valid "
            f"pixel of input values {float(v.min()):.6g}..{float(v.max()):.6g} (--dtype casts, "
            "it does not rescale): keep the input's type, or rescale the input first",
        )
    if outside:
        log.warning(
            "%s: %.3g%% of the valid input values lie outside the %s range %d..%d and are "
            "clipped to it (--dtype casts, it does not rescale)",
            rs.path,
            100.0 * outside / max(v.size, 1),
            dtype.name,
            info.min,
            info.max,
        )
    if src.kind != "f" or not v.size:
        return
    lo, hi = float(v.min()), float(v.max())
    top, bottom = (int(np.rint(min(max(x, info.min), info.max))) for x in (hi, lo))
    levels = top - bottom + 1  # (what the cast can make of lo..hi)
    fractional = int(np.count_nonzero(v != np.rint(v)))
    if fractional and levels < PRECISION_STEPS:
        log.warning(
            "%s: --dtype %s rounds the valid values (%.6g..%.6g, %.3g%% fractional) to whole "
            "numbers: at most %d distinct value(s) remain and the rest of the data is lost "
            "(--dtype casts, it does not rescale); keep a float type or rescale the input first",
            rs.path,
            dtype.name,
            lo,
            hi,
            100.0 * fractional / v.size,
            levels,
        )


def warn_value_range(rs: RasterSource, values: ValueOptions | None) -> None:
    """Warn when valid values of the input lie outside the user's ``--value-range`` (stored
    values; :func:`~sr_domains.value_range_check.warn_outside_range`), judged on the sample
    the profile is fitted on; nothing is read without a range. A sample read from the file's
    overviews, whose resampling (cubic, lanczos: the COG driver's default) overshoots the data
    at edges, is judged again at full resolution before anything is said (read only then)."""
    if values is None or not values.clamp or values.value_range is None:
        return
    sample, valid = rs.sample()
    if outside_range(sample, valid, values.value_range).outside:
        sample, valid = rs.full_resolution_sample() or (sample, valid)
        warn_outside_range(rs.path, sample, valid, values, "geotiff")


__all__ = [
    "PRECISION_STEPS",
    "check_output_nodata",
    "safe_nodata",
    "warn_clipping_dtype",
    "warn_value_range",
]
