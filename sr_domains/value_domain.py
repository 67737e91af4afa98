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
   data: within :data:`~sr_domains.value_facts.ZERO_TOLERANCE` times its largest magnitude,
   as resampling leaves it) and
   saturation (an input pixel at the dtype maximum, or a declared saturation value, is the
   average of saturated detector pixels, so all of them were saturated).
0. **Band ratios** (multi-band, non-negative data; applied first): every output pixel is the
   bicubic upsampling scaled by one factor that keeps the network's band sum, so spectral
   angles and band-ratio indices are bicubic's (:mod:`sr_domains.spectral`). By default
   (``spectral="auto"``) when a single-band model runs band by band over several bands (it
   knows nothing of spectra) or the model card asks for it; ``"bicubic"`` for every model,
   ``"model"`` never (CLI ``--spectral``).

Counts of changed pixels are accumulated in :class:`ClampStats` (logged and recorded in
provenance). ``ValueOptions(clamp=False)`` (CLI ``--no-clamp``) turns 0-3 off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import DTypeLike

from .errors import ConfigError
from .spectral import HALO, keep_band_ratios
from .value_facts import ZeroFacts, band_minimum, pin_hits
from .value_ops import clip_blocks, local_range

#: CT lower bound (air); values below it are clamped unless the input itself goes lower.
CT_MIN_HU = -1024.0


@dataclass(frozen=True)
class ValueOptions:
    """What the user asked for (travels in :class:`~sr_domains.options.UpscaleOptions`).

    Attributes:
        clamp: apply the envelope, the physical domain and pinned values (default True).
        envelope: tolerance of the envelope as a fraction of the local range; None = off.
        value_range: explicit physical domain ``(lo, hi)`` in stored units (overrides the
            inferred one; ``None`` on either side = unbounded).
        saturation: declared saturation value (stored units) of integer rasters; default: the
            dtype maximum.
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


@dataclass(frozen=True)
class ValueDomain:
    """Per-band physical bounds in stored units (``-inf``/``inf`` = unbounded)."""

    lo: tuple[float, ...]
    hi: tuple[float, ...]
    why: str = ""

    def bounds(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        lo, hi = np.asarray(self.lo, np.float64), np.asarray(self.hi, np.float64)
        if lo.size not in (1, n):
            raise ConfigError(f"value domain has {lo.size} bands, data has {n}")
        return np.broadcast_to(lo, (n,)), np.broadcast_to(hi, (n,))

    @property
    def bounded(self) -> bool:
        return bool(np.isfinite(self.lo).any() or np.isfinite(self.hi).any())

    def to_dict(self) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {"lo": [num(v) for v in self.lo], "hi": [num(v) for v in self.hi], "why": self.why}


def infer_domain(
    band_min: Sequence[float] | np.ndarray,
    *,
    dtype: DTypeLike | None = None,
    slope: float = 1.0,
    inter: float = 0.0,
    ct: bool = False,
    user: tuple[float | None, float | None] | None = None,
) -> ValueDomain:
    """The physical domain of each band (module docs, rule 2).

    Args:
        band_min: exact minimum of the valid values of each band (physical units; NaN/inf for
            a band without valid values).
        dtype: on-disk dtype; integer types bound the domain through ``slope``/``inter``.
        ct: CT Hounsfield units: the lower bound is ``min(-1024, input min)``.
        user: ``(lo, hi)`` given by the user; replaces the inferred bounds it names.
    """
    n = len(band_min)
    lo, hi = np.full(n, -np.inf), np.full(n, np.inf)
    why = []
    dt = np.dtype(dtype) if dtype is not None else None
    if dt is not None and dt.kind in "ui":
        info = np.iinfo(dt)
        a, b = sorted((info.min * slope + inter, info.max * slope + inter))
        lo[:], hi[:] = a, b
        why.append(f"{dt.name} range")
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


@dataclass
class ClampStats:
    """Pixels changed by each rule (valid output pixels only)."""

    envelope: int = 0
    domain: int = 0
    pinned: int = 0
    total: int = 0  # valid output pixels seen
    spectral: int = 0  # pixels given bicubic's band ratios

    def add(self, other: ClampStats) -> None:
        self.spectral += other.spectral
        self.envelope += other.envelope
        self.domain += other.domain
        self.pinned += other.pinned
        self.total += other.total

    def to_dict(self) -> dict[str, Any]:
        pct = (lambda n: round(100.0 * n / self.total, 4)) if self.total else (lambda n: 0.0)
        return {
            "envelope": self.envelope,
            "domain": self.domain,
            "pinned": self.pinned,
            "pixels": self.total,
            "envelope_pct": pct(self.envelope),
            "domain_pct": pct(self.domain),
            "spectral": self.spectral,
        }

    def describe(self) -> str:
        d = self.to_dict()
        ratios = f"{d['spectral']} given bicubic's band ratios, " if d["spectral"] else ""
        return (
            f"{ratios}{d['envelope']} pixel(s) ({d['envelope_pct']}%) clamped to the local "
            f"input range, {d['domain']} ({d['domain_pct']}%) to the physical domain, "
            f"{d['pinned']} kept at pinned values"
        )


ReadFn = Callable[[int, int, int, int], "tuple[np.ndarray, np.ndarray | None]"]


@dataclass
class ValueRules:
    """The rules for one image (module docs), applied by the engine to each output block.

    Attributes:
        envelope: tolerance (fraction of the local range), or None for no envelope.
        domain: physical bounds per band, or None.
        pinned: per band, the values kept over their footprint (empty tuple = none).
        pin_tol: input pixels within this of a pinned value hold it too (float resampling
            residues, :func:`~sr_domains.value_facts.zero_facts`); every held pixel keeps its
            own value.
        stats: accumulated counts.
        radius: half-size of the envelope's input neighbourhood.
        spectral: give multi-band output bicubic's band ratios (:mod:`sr_domains.spectral`);
            None = decided by the engine (on when it runs a single-band model band by band).
    """

    envelope: float | None = 0.0
    domain: ValueDomain | None = None
    pinned: tuple[tuple[float, ...], ...] = ()
    pin_tol: float = 0.0
    stats: ClampStats = field(default_factory=ClampStats)
    radius: int = 1
    spectral: bool | None = False

    @property
    def active(self) -> bool:
        return (
            self.spectral is not False
            or self.envelope is not None
            or (self.domain is not None and self.domain.bounded)
            or any(self.pinned)
        )

    def apply(
        self, out: np.ndarray, read: ReadFn, shape: tuple[int, int], row0: int, scale: int
    ) -> None:
        """In place: apply the rules to HR rows ``[row0, row0 + rows)`` of an image whose LR
        pixels ``read`` returns (stored units, as :meth:`Upscaler.stream` reads them)."""
        c, rows, width = out.shape
        h, w = shape
        s = scale
        r = max(self.radius, HALO) if self.spectral else self.radius
        a = max(0, row0 // s - r)
        b = min(h, (row0 + rows - 1) // s + 1 + r)
        values, valid = read(a, 0, b - a, w)
        values = np.asarray(values)
        ok = np.isfinite(values) if values.dtype.kind == "f" else np.ones(values.shape, bool)
        if valid is not None:
            ok &= np.broadcast_to(np.asarray(valid, bool), values.shape)
        if values.shape[0] != c:  # the model changes the band count: band rules do not apply
            return
        ratios = 0
        if self.spectral:  # None (never resolved by an engine) counts as off
            ratios = keep_band_ratios(out, values, ok, row0, a, s)
        aligned = row0 % s == 0 and rows % s == 0 and width == w * s
        if aligned and out.flags.c_contiguous:
            stats = self._apply_blocks(out, values, ok, row0 // s - a, s)
        else:
            stats = self._apply_gather(out, values, ok, row0, a, s)
        stats.spectral = ratios
        self.stats.add(stats)

    def _apply_gather(
        self, out: np.ndarray, values: np.ndarray, ok: np.ndarray, row0: int, a: int, s: int
    ) -> ClampStats:
        """The rules for rows that do not start and end on input-pixel boundaries."""
        c, rows, width = out.shape
        ri = (row0 + np.arange(rows)) // s - a
        ci = np.arange(width) // s

        def up(x: np.ndarray) -> np.ndarray:
            return x[:, ri][:, :, ci]

        ok_up = up(ok)
        stats = ClampStats(total=int(ok_up.sum()))
        ft = out.dtype.type  # float32, or float64 for values float32 cannot hold
        if self.envelope is not None:
            mn, mx = local_range(values.astype(ft, copy=False), ok, self.radius)
            has = mn <= mx
            r = np.where(has, mx - mn, 0.0).astype(ft)
            lo = np.where(has, mn - self.envelope * r, -np.inf).astype(ft)
            hi = np.where(has, mx + self.envelope * r, np.inf).astype(ft)
            lo_up, hi_up = up(lo), up(hi)
            stats.envelope = int((((out < lo_up) | (out > hi_up)) & ok_up).sum())
            np.clip(out, lo_up, hi_up, out=out)
            del lo_up, hi_up
        if self.domain is not None and self.domain.bounded:
            lo_b, hi_b = self.domain.bounds(c)
            lo_b = lo_b.astype(ft).reshape(-1, 1, 1)
            hi_b = hi_b.astype(ft).reshape(-1, 1, 1)
            stats.domain = int((((out < lo_b) | (out > hi_b)) & ok_up).sum())
            np.clip(out, lo_b, hi_b, out=out)
        if self.pinned:
            pins = self.pinned * c if len(self.pinned) == 1 else self.pinned
            for k, vals in enumerate(pins[:c]):
                for v in vals:
                    hit = up((pin_hits(values[k], v, self.pin_tol) & ok[k])[None])[0]
                    own = (
                        ft(v)
                        if self.pin_tol == 0
                        else up(values[k][None].astype(ft, copy=False))[0]
                    )
                    stats.pinned += int((hit & (out[k] != own)).sum())
                    out[k][hit] = own if self.pin_tol == 0 else own[hit]
        return stats

    def _apply_blocks(
        self, out: np.ndarray, values: np.ndarray, ok: np.ndarray, first: int, s: int
    ) -> ClampStats:
        """The rules for whole input pixels: ``out`` is viewed as ``(C, R, s, W, s)`` blocks and
        every per-input-pixel bound broadcasts over its block (no upsampled copies)."""
        c, rows, width = out.shape
        n = rows // s
        blocks = out.reshape(c, n, s, width // s, s)

        def lr(x: np.ndarray) -> np.ndarray:
            return x[:, first : first + n, None, :, None]

        ok_b = lr(ok)
        stats = ClampStats(total=int(np.count_nonzero(ok_b)) * s * s)
        ft = out.dtype.type  # float32, or float64 for values float32 cannot hold

        if self.envelope is not None:
            mn, mx = local_range(values.astype(ft, copy=False), ok, self.radius)
            has = mn <= mx
            r = np.where(has, mx - mn, 0.0).astype(ft)
            lo = lr(np.where(has, mn - self.envelope * r, -np.inf).astype(ft))
            hi = lr(np.where(has, mx + self.envelope * r, np.inf).astype(ft))
            stats.envelope = clip_blocks(blocks, lo[:, :, 0, :, 0], hi[:, :, 0, :, 0], ok_b)
        if self.domain is not None and self.domain.bounded:
            lo_b, hi_b = self.domain.bounds(c)
            for k in range(c):
                band, lo_k, hi_k = blocks[k], ft(lo_b[k]), ft(hi_b[k])
                if band.min() >= lo_k and band.max() <= hi_k:
                    continue  # nothing to clamp (the usual case after the envelope)
                ok_k = ok_b[k]
                low, high = band < lo_k, band > hi_k
                stats.domain += int(np.count_nonzero((low | high) & ok_k))
                np.clip(band, lo_k, hi_k, out=band)
        if self.pinned:
            pins = self.pinned * c if len(self.pinned) == 1 else self.pinned
            for k, vals in enumerate(pins[:c]):
                for v in vals:
                    hit_lr = pin_hits(values[k], v, self.pin_tol) & ok[k]
                    if not hit_lr.any():
                        continue
                    hit = np.broadcast_to(hit_lr[first : first + n, None, :, None], blocks[k].shape)
                    band = blocks[k]
                    if self.pin_tol == 0:
                        stats.pinned += int(np.count_nonzero(hit & (band != v)))
                        band[hit] = v
                        continue
                    own = np.broadcast_to(
                        values[k][first : first + n, None, :, None].astype(ft), band.shape
                    )
                    stats.pinned += int(np.count_nonzero(hit & (band != own)))
                    band[hit] = own[hit]
        return stats


def array_reader(values: np.ndarray, valid: np.ndarray | None = None) -> ReadFn:
    """A ``read(y0, x0, h, w)`` callback over an in-memory ``(C, H, W)`` array."""

    def read(y0: int, x0: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray | None]:
        m = None if valid is None else valid[..., y0 : y0 + h, x0 : x0 + w]
        return values[:, y0 : y0 + h, x0 : x0 + w], m

    return read


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
) -> ValueRules | None:
    """The rules for one image from the user's options and the input's facts (module docs).

    Args:
        band_min: exact per-band minimum of the valid input values (stored/physical units).
        dtype: on-disk dtype (integer: storage range and saturation at its maximum).
        slope, inter: the file's scaling (stored = (value - inter) / slope).
        ct: CT Hounsfield units.
        background_zero: medical volume with exact-zero background (pinned 0).
        zero: the input's zero facts (:func:`~sr_domains.value_facts.zero_facts`): a zero
            background (values within ``zero.tol`` of 0) is pinned like ``background_zero``.

    The band-ratio rule applies to two or more bands whose valid values are all non-negative:
    ``spectral`` is True for ``options.spectral == "bicubic"``, None (the engine decides) for
    ``"auto"``.
    """
    opts = options or ValueOptions()
    if not opts.clamp:
        return None
    domain = infer_domain(
        band_min, dtype=dtype, slope=slope, inter=inter, ct=ct, user=opts.value_range
    )
    background_zero = background_zero or (zero is not None and zero.background)
    pins: list[float] = []
    if background_zero:
        pins.append(0.0)
    dt = np.dtype(dtype) if dtype is not None else None
    if opts.saturation is not None:
        pins.append(float(opts.saturation))
    elif dt is not None and dt.kind in "ui" and (slope, inter) == (1.0, 0.0):
        pins.append(float(np.iinfo(dt).max))
    pinned = tuple(tuple(pins) for _ in band_min) if pins else ()
    mins = np.asarray(band_min, np.float64)
    eligible = mins.size >= 2 and bool((mins >= 0).all())
    spectral = None if opts.spectral == "auto" else opts.spectral == "bicubic"
    spectral = spectral if eligible else False
    return ValueRules(
        envelope=opts.envelope,
        domain=domain,
        pinned=pinned,
        pin_tol=zero.tol if background_zero and zero is not None else 0.0,
        radius=opts.envelope_radius,
        spectral=spectral,
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
