"""The value side of one GeoTIFF job (:mod:`sr_domains.geo.job`): the intensity profile fitted on
the file, each band's physical zero, the warning when the band-ratio rule is off, the +-inf
pixels written back as they are, and the ``SR_DOMAINS_VALUES`` tag of the rules applied."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..inference import default_profile
from ..intensity import IntensityProfile, profile_from_any, resolve_recipe
from ..models.base import SRModel
from ..strict_json import provenance_json
from ..value_domain import ValueRules
from .reader import Block, RasterSource

log = logging.getLogger("sr_domains.geo.job")  # the name these messages always had


def fit_profile(
    src: RasterSource, net: SRModel, profile: str | IntensityProfile | None
) -> tuple[IntensityProfile, np.ndarray]:
    """The intensity profile (fitted once on a whole-file sample when needed) and the per-band
    far fill value for invalid pixels (mean of valid pixels, normalized units; next to valid
    data the fill continues it, :mod:`sr_domains.nodata_fill`)."""
    spec: Any = profile if profile is not None else default_profile(net, src.dtype)
    needs_data = not isinstance(spec, IntensityProfile) and resolve_recipe(spec).needs_data
    values = valid = None
    if needs_data or src.may_have_invalid:
        values, valid = src.sample()
    fitted = profile_from_any(
        spec, values if needs_data else None, dtype=src.dtype, valid_mask=valid
    )
    fill = np.zeros(src.n_bands, np.float32)
    if values is not None:
        x = fitted.normalize(values)
        ok = valid & np.isfinite(x)
        sums = np.where(ok, x, 0).sum(axis=(1, 2), dtype=np.float64)
        counts = ok.sum(axis=(1, 2))
        fill = np.where(counts > 0, sums / np.maximum(counts, 1), 0.0).astype(np.float32)
        if fitted.recipe.split(":")[0].strip().lower() == "identity" and ok.any():
            lo, hi = float(x[ok].min()), float(x[ok].max())
            if lo < -1.0 or hi > 2.0:
                log.warning(
                    "%s: values span %.4g..%.4g but the 'identity' profile feeds them to the "
                    "network unchanged; pass --profile (e.g. percentile, range:LO,HI, "
                    "reflectance) if the model expects roughly [0, 1]",
                    src.path.name,
                    lo,
                    hi,
                )
    return fitted, fill


def infinite_kept(
    block: Block, nodata: float | None, own: Sequence[float | None] = ()
) -> np.ndarray | None:
    """Where ``block`` holds +-inf that no mask, alpha or nodata hides: the pixels written
    back unchanged over their footprint (as in NIfTI: +-inf are invalid for the network, and
    NaN or nodata is written only where the file says so). None when there are none.
    ``nodata``: the output's; ``own``: each band's own nodata (a float file's may be +-inf),
    which stays invalid under a ``--nodata`` override: written as that nodata, never kept."""
    if block.values.dtype.kind != "f":
        return None
    inf = np.isinf(block.values)
    if not inf.any():
        return None
    if block.mask is not None:
        inf &= block.mask > 0
    if block.alpha is not None:
        inf &= block.alpha > 0
    if nodata is not None:
        inf &= block.values != nodata
    for k, v in enumerate(own[: inf.shape[0]]):
        if v is not None and np.isinf(v):
            inf[k] &= block.values[k] != v
    return inf if inf.any() else None


def values_tag(rules: ValueRules | None, source: Path) -> str:
    """The ``SR_DOMAINS_VALUES`` tag (written last): the rules applied and what they changed."""
    if rules is None:
        return provenance_json({"clamp": False})
    stats = rules.stats
    if stats.envelope + stats.domain + stats.spectral:
        log.info("%s: %s", source.name, stats.describe())
    kept = bool(rules.spectral) and stats.spectral > 0  # (no pixel it could apply to: model)
    return provenance_json(
        {
            "band_ratios": "bicubic" if kept else "model",
            **({"band_ratio_zero": list(rules.zero)} if kept and rules.zero else {}),
            "envelope": rules.envelope,
            "domain": rules.domain.to_dict() if rules.domain is not None else None,
            "pinned": [list(p) for p in rules.pinned[:1]],
            "clamped": stats.to_dict(),
        }
    )


def physical_zero(rs: RasterSource, fitted: IntensityProfile) -> list[float] | None:
    """Per selected band, the stored value of zero reflectance when it is not 0
    (:func:`sr_domains.spectral.physical_zero`: the file's band scales/offsets, a physical
    profile)."""
    from ..spectral import physical_zero as zero_of

    scales = [rs.ds.scales[i - 1] for i in rs.indexes]
    offsets = [rs.ds.offsets[i - 1] for i in rs.indexes]
    return zero_of(scales, offsets, fitted.recipe, fitted.scale, fitted.offset)


def say_ratios_off(
    path: Path, rules: ValueRules | None, band_min: Any, zero: Any, values: Any, wanted: bool
) -> None:
    """Warn when valid values below the bands' zero switch the band-ratio rule off for a run
    that would take it (``wanted``: ``--spectral auto`` would apply it; ``--spectral bicubic``
    asks for it): a few slightly negative reflectances (Landsat Collection 2) would otherwise
    lose bicubic's ratios without a word."""
    if rules is None or rules.spectral is not False or values.spectral == "model":
        return
    if values.spectral == "auto" and not wanted:
        return
    mins = np.asarray(band_min, np.float64)
    floor = np.zeros_like(mins) if zero is None else np.asarray(zero, np.float64)
    if mins.size < 2 or floor.shape != mins.shape:
        return
    below = ",".join(str(i + 1) for i in range(mins.size) if mins[i] < floor[i])
    if not below:
        return
    if zero is not None:  # band offsets: where zero is, known
        how = "--spectral bicubic imposes them, leaving those pixels out one by one"
        log.warning(
            "%s: band(s) %s hold valid values below their zero (band offsets): band ratios "
            "are not imposed for this file; %s (as for data a reflectance profile declares)",
            path,
            below,
            how,
        )
    else:
        log.warning(
            "%s: band(s) %s hold valid values below zero, and nothing says where their zero "
            "is (band offsets, a reflectance profile): band ratios are not imposed",
            path,
            below,
        )


__all__ = ["fit_profile", "infinite_kept", "physical_zero", "say_ratios_off", "values_tag"]
