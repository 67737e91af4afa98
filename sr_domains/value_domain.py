"""Value fidelity: outputs stay in the physical domain of the input.

Geometry travels beside the pixels; so do the rules for their *values*. The engine
(:meth:`sr_domains.inference.Upscaler.stream`) applies them once, right after the intensity
profile is inverted, in stored units, to every finished block of output rows:

1. **Envelope** (ringing and overshoot control, on by default): each output pixel is clamped to
   the range of the *valid* input pixels in the 5 x 5 neighbourhood (``envelope_radius`` 2) of
   the input pixel it lies in, widened by ``envelope`` times that range (0, the default =
   strictly inside). No dark halo beside a bright point target, no negative lobe beside a
   hole, no overshoot at a step edge; on held-out data it costs 0.06-0.11 dB of PSNR
   (``benchmarks/value_fidelity.py``).
2. **Physical domain** per band (:class:`ValueDomain`): the storage range (integer dtype,
   through the file's scaling), non-negative when every valid input value is (reflectance,
   backscatter, magnitude, counts), ``HU >= -1024`` for CT, or what the user gives.
3. **Pinned values**: input pixels holding a pinned value keep it over their whole output
   footprint: exact-zero background of medical volumes (``data != 0`` masks survive; float
   data: within :data:`~sr_domains.value_facts.ZERO_TOLERANCE` times its magnitude (robust),
   as resampling leaves it) and
   saturation (an input pixel at the dtype maximum, or a declared saturation value, is the
   average of saturated detector pixels, so all of them were saturated). The converse holds
   too: a valid output pixel outside that footprint never equals the saturation (integer
   output: one that would round to it moves one unit down; float output: to the next float
   below), so an ``== saturation`` mask of the output is the input's, repeated.
0. **Band ratios** (multi-band, non-negative data; applied first): every output pixel is the
   bicubic upsampling scaled by one factor that keeps the network's band sum, so spectral
   angles and band-ratio indices are bicubic's (:mod:`sr_domains.spectral`); the envelope and
   the domain limit that factor, and clip a band of such a pixel only where bicubic's own
   spectrum leaves their bounds. By default
   (``spectral="auto"``) when a single-band model runs band by band over several bands (it
   knows nothing of spectra) or the model card asks for it; ``"bicubic"`` for every model,
   ``"model"`` never (CLI ``--spectral``).

Counts of changed pixels are accumulated in :class:`ClampStats` (logged and recorded in
provenance). ``ValueOptions(clamp=False)`` (CLI ``--no-clamp``) turns 0-3 off.

This module decides the rules of an input (:func:`build_rules`); applying them to output
blocks is :mod:`sr_domains.value_rules` (:class:`ValueRules`, :class:`ClampStats`,
:class:`ValueDomain`, re-exported here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import DTypeLike

from .errors import ConfigError
from .value_facts import ZeroFacts, band_minimum
from .value_rules import ClampStats, ValueDomain, ValueRules, array_reader

#: CT lower bound (air); values below it are clamped unless the input itself goes lower.
CT_MIN_HU = -1024.0


@dataclass(frozen=True)
class ValueOptions:
    """What the user asked for (travels in :class:`~sr_domains.options.UpscaleOptions`).

    Attributes:
        clamp: apply the envelope, the physical domain and pinned values (default True).
        envelope: tolerance of the envelope as a fraction of the local range; None = off.
        value_range: explicit physical domain ``(lo, hi)`` in the units the rules see: a
            GeoTIFF's stored values, a NIfTI's or DICOM's physical values (after
            ``scl_slope``/``RescaleSlope``) (overrides the inferred one; ``None`` on either side
            = unbounded).
        saturation: declared saturation value of integer rasters, in the same units; default:
            the dtype maximum.
        envelope_radius: half-size of the input neighbourhood of the envelope, in input pixels
            (2 = 5 x 5; ``benchmarks/value_fidelity.py`` shows the trade-off).
        spectral: multi-band output keeps bicubic's band ratios (:mod:`sr_domains.spectral`):
            ``"auto"`` (default) when a single-band model runs band by band or the model card
            asks for it (``ModelCard.spectral``), ``"bicubic"`` always, ``"model"`` never (a
            joint model's own spectra).
    """

    clamp: bool = True
    envelope: float | None = 0.0
    value_range: tuple[float | None, float | None] | None = None
    saturation: float | None = None
    envelope_radius: int = 2
    spectral: Literal["auto", "bicubic", "model"] = "auto"

    def __post_init__(self) -> None:
        if self.spectral not in ("auto", "bicubic", "model"):
            raise ConfigError(
                f"spectral must be 'auto', 'bicubic' or 'model', got {self.spectral!r}"
            )
        if self.envelope is not None and not (0 <= self.envelope <= 10):
            raise ConfigError(f"envelope tolerance must be in [0, 10], got {self.envelope}")
        if not 1 <= self.envelope_radius <= 8:
            raise ConfigError(
                f"envelope radius must be 1..8 input pixels, got {self.envelope_radius}"
            )
        if self.value_range is not None:
            lo, hi = self.value_range
            if lo is not None and hi is not None and not lo < hi:
                raise ConfigError(f"value range must have LO < HI, got {self.value_range}")


def _stored_range(
    dtype: DTypeLike | None, stored_range: tuple[float, float] | None
) -> tuple[float, float, str] | None:
    """``(lo, hi, what)`` of the stored values: ``stored_range`` when given, else an integer
    ``dtype``'s range, else None."""
    if stored_range is not None:
        lo, hi = stored_range
        return float(lo), float(hi), f"stored range {lo:g}..{hi:g}"
    dt = np.dtype(dtype) if dtype is not None else None
    if dt is None or dt.kind not in "ui":
        return None
    info = np.iinfo(dt)
    return float(info.min), float(info.max), f"{dt.name} range"


def infer_domain(
    band_min: Sequence[float] | np.ndarray,
    *,
    dtype: DTypeLike | None = None,
    slope: float = 1.0,
    inter: float = 0.0,
    ct: bool = False,
    user: tuple[float | None, float | None] | None = None,
    stored_range: tuple[float, float] | None = None,
) -> ValueDomain:
    """The physical domain of each band (module docs, rule 2).

    Args:
        band_min: exact minimum of the valid values of each band (physical units; NaN/inf for
            a band without valid values).
        dtype: on-disk dtype; integer types bound the domain through ``slope``/``inter``.
        ct: CT Hounsfield units: the lower bound is ``min(-1024, input min)``.
        user: ``(lo, hi)`` given by the user; replaces the inferred bounds it names.
        stored_range: the stored values the file can hold when narrower than ``dtype``'s
            (DICOM ``BitsStored`` 12 in 16-bit words: 0..4095).
    """
    n = len(band_min)
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    why = []
    stored = _stored_range(dtype, stored_range)
    if stored is not None:
        a, b = sorted((stored[0] * slope + inter, stored[1] * slope + inter))
        lo[:], hi[:] = a, b
        why.append(stored[2])
    mins = np.asarray(band_min, np.float64)
    if ct:
        lo = np.maximum(lo, np.where(np.isfinite(mins), np.minimum(mins, CT_MIN_HU), CT_MIN_HU))
        why.append("CT: HU >= -1024 (or the input minimum)")
    else:
        nonneg = np.isfinite(mins) & (mins >= 0)
        if nonneg.any():
            lo = np.where(nonneg, np.maximum(lo, 0.0), lo)
            why.append("non-negative input" + ("" if nonneg.all() else " (some bands)"))
    if user is not None:
        ulo, uhi = user
        if ulo is not None:
            lo[:] = ulo
        if uhi is not None:
            hi[:] = uhi
        why = ["user range"]
    return ValueDomain(tuple(lo), tuple(hi), "; ".join(why))


def build_rules(
    options: ValueOptions | None,
    band_min: Sequence[float] | np.ndarray,
    *,
    dtype: DTypeLike | None = None,
    slope: float = 1.0,
    inter: float = 0.0,
    ct: bool = False,
    background_zero: bool = False,
    zero: ZeroFacts | None = None,
    physical_zero: Sequence[float] | None = None,
    reflectance: bool = False,
    stored_range: tuple[float, float] | None = None,
    out_dtype: DTypeLike | None = None,
) -> ValueRules | None:
    """The rules for one image from the user's options and the input's facts (module docs).

    Args:
        band_min: exact per-band minimum of the valid input values (stored/physical units).
        dtype: on-disk dtype (integer: storage range and saturation at its maximum).
        slope, inter: the file's scaling (stored = (value - inter) / slope). Saturation is
            pinned for ``slope`` 1 (any intercept: CT's -1024) only: a scaled file's largest
            stored value is where its writer put the data maximum, not a saturated sensor.
        stored_range: the stored values the file can hold when narrower than ``dtype``'s
            (DICOM ``BitsStored``): the domain and the saturation pin come from it.
        out_dtype: the output's dtype when not ``dtype`` (GeoTIFF ``--dtype``): on an
            integer grid (one unit = ``slope``), output pixels outside the saturated footprint
            that would round to the saturation move one unit off it; on a float one only those
            equal to it move.
        ct: CT Hounsfield units.
        background_zero: medical volume with exact-zero background (pinned 0).
        zero: the input's zero facts (:func:`~sr_domains.value_facts.zero_facts`): a zero
            background (values within ``zero.tol`` of 0) is pinned like ``background_zero``.
        physical_zero: per band, the stored value of zero radiance / reflectance (a file's
            band offsets, a physical profile's: Sentinel-2 L2A 1000); None: 0. The band-ratio
            rule works above it.
        reflectance: the data is declared reflectance or radiance (a physical profile such as
            ``s2l2a``, :func:`~sr_domains.spectral.declares_reflectance`): a non-negative
            quantity whose few values below its zero are noise, left out pixel by pixel. Band
            offsets alone do not say so (a temperature has them too); ``--spectral bicubic``
            (``options.spectral``) asks for the rule the same way, given a ``physical_zero``.

    The band-ratio rule applies to two or more bands whose valid values are all at or above
    the zero, or to declared ``reflectance`` (its values below the zero left out one by one):
    ``spectral`` is True for ``options.spectral == "bicubic"``, None (the engine decides) for
    ``"auto"``.
    """
    opts = options or ValueOptions()
    if not opts.clamp:
        return None
    domain = infer_domain(
        band_min,
        dtype=dtype,
        slope=slope,
        inter=inter,
        ct=ct,
        user=opts.value_range,
        stored_range=stored_range,
    )
    background_zero = background_zero or (zero is not None and zero.background)
    pins: list[float] = []
    if background_zero:
        pins.append(0.0)
    stored = _stored_range(dtype, stored_range)
    saturation = None
    if opts.saturation is not None:
        saturation = float(opts.saturation)
    elif stored is not None and slope == 1.0:
        saturation = stored[1] + inter
    if saturation is not None:
        pins.append(saturation)
    grid = out_dtype if out_dtype is not None else dtype
    integer = grid is not None and np.dtype(grid).kind in "ui"
    pinned = tuple(tuple(pins) for _ in band_min) if pins else ()
    mins = np.asarray(band_min, np.float64)
    floor = np.zeros_like(mins) if physical_zero is None else np.asarray(physical_zero, float)
    # reflectance (a physical profile) is a non-negative quantity: values below its zero are
    # noise, left out pixel by pixel (spectral.keep_band_ratios); otherwise values below the
    # zero say it is no spectrum, and the rule is off for the image
    # (so does the user's --spectral bicubic where a physical zero says where zero is)
    forced = opts.spectral == "bicubic"
    declared = (reflectance or forced) and physical_zero is not None
    above = floor.shape == mins.shape and bool((mins >= floor).all())
    eligible = mins.size >= 2 and floor.shape == mins.shape and (above or declared)
    spectral = None if opts.spectral == "auto" else forced
    spectral = spectral if eligible else False
    left_out = eligible and not above  # values below the zero: left out pixel by pixel
    return ValueRules(
        envelope=opts.envelope,
        domain=domain,
        pinned=pinned,
        pin_tol=zero.tol if background_zero and zero is not None else 0.0,
        radius=opts.envelope_radius,
        spectral=spectral,
        zero=tuple(map(float, floor)) if left_out or floor.any() else (),
        saturation=saturation,
        saturation_step=abs(slope) if integer else 0.0,
        saturation_dtype=None if grid is None or integer else np.dtype(grid).name,
    )


__all__ = [
    "CT_MIN_HU",
    "ClampStats",
    "ValueDomain",
    "ValueOptions",
    "ValueRules",
    "array_reader",
    "band_minimum",
    "build_rules",
    "infer_domain",
]
