"""Applying the value rules of :mod:`sr_domains.value_domain` to finished output blocks: the
per-band physical domain (:class:`ValueDomain`), the rules of one image (:class:`ValueRules`,
applied by :meth:`sr_domains.inference.Upscaler.stream` in stored units) and the counts of
pixels they changed (:class:`ClampStats`). Which rules an input gets is decided in
:mod:`sr_domains.value_domain` (:func:`~sr_domains.value_domain.build_rules`), which re-exports
these names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import DTypeLike

from .errors import ConfigError
from .spectral import HALO, keep_band_ratios
from .value_facts import pin_hits
from .value_ops import clip_blocks, local_range, off_saturation, reaches


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


@dataclass
class ClampStats:
    """Pixels changed by each rule (valid output pixels only)."""

    envelope: int = 0
    domain: int = 0
    pinned: int = 0
    total: int = 0  # valid output pixels seen
    spectral: int = 0  # pixels given bicubic's band ratios
    limited: int = 0  # of those, pixels whose brightness the envelope / domain limited
    unsaturated: int = 0  # pixels outside a saturated footprint moved off the saturation

    def add(self, other: ClampStats) -> None:
        self.spectral += other.spectral
        self.limited += other.limited
        self.envelope += other.envelope
        self.domain += other.domain
        self.pinned += other.pinned
        self.total += other.total
        self.unsaturated += other.unsaturated

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
            "spectral_limited": self.limited,
            # (only when some moved: records of outputs without such pixels stay as they were)
            **({"unsaturated": self.unsaturated} if self.unsaturated else {}),
        }

    def describe(self) -> str:
        d = self.to_dict()
        ratios = (
            f"{d['spectral']} given bicubic's band ratios ({d['spectral_limited']} of them "
            "dimmed or brightened to fit the bounds), "
            if d["spectral"]
            else ""
        )
        return (
            f"{ratios}{d['envelope']} pixel(s) ({d['envelope_pct']}%) clamped to the local "
            f"input range, {d['domain']} ({d['domain_pct']}%) to the physical domain, "
            f"{d['pinned']} kept at pinned values"
            + (f", {self.unsaturated} moved off the saturation" if self.unsaturated else "")
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
        zero: per band, the stored value of a physical zero the band ratios are taken from
            (empty: 0; Sentinel-2 L2A: 1000).
        saturation: the pinned value that is saturation, or None: a valid output pixel
            outside the footprint of the input pixels holding it never equals it
            (:meth:`unsaturate`), so an ``== saturation`` mask of the output is the input's.
        saturation_step: the output's value grid there: 1 (integer output: pixels that would
            round to the saturation move one unit off it), 0 (float output: pixels equal to it
            move to the next representable value).
        saturation_dtype: the float type the output is written in, when it may be coarser
            than the blocks' (float64 data written as float32, float16 arrays): a float
            output's pixels are compared with the saturation, and moved off it, in that type
            (:func:`~sr_domains.value_ops.off_saturation`); None: the blocks' own.
        counted: HR columns ``[c0, c1)`` (multiples of the scale) of each block whose pixels
            the counts take: a panel's own columns, not its context
            (:func:`sr_domains.panels.iter_hr_blocks`), so the counts do not depend on the
            panel split; None: all. The rules apply to every column either way.
    """

    envelope: float | None = 0.0
    domain: ValueDomain | None = None
    pinned: tuple[tuple[float, ...], ...] = ()
    pin_tol: float = 0.0
    stats: ClampStats = field(default_factory=ClampStats)
    radius: int = 1
    spectral: bool | None = False
    zero: tuple[float, ...] = ()
    saturation: float | None = None
    saturation_step: float = 1.0
    saturation_dtype: str | None = None
    counted: tuple[int, int] | None = None

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
        env = self._envelope(values, ok, out.dtype.type)
        ratios = limited = 0
        if self.spectral:  # None (never resolved by an engine) counts as off
            bounds = self._bounds(env, values.shape, out.dtype.type)
            ratios, limited = keep_band_ratios(
                out, values, ok, row0, a, s, self.zero, bounds, self.counted
            )
        cnt = ok  # the valid pixels the counts take
        if self.counted is not None:
            hr = np.arange(w) * s
            cnt = ok & ((hr >= self.counted[0]) & (hr < self.counted[1]))
        aligned = row0 % s == 0 and rows % s == 0 and width == w * s
        if aligned and out.flags.c_contiguous:
            stats = self._apply_blocks(out, values, ok, row0 // s - a, s, env, cnt)
        else:
            stats = self._apply_gather(out, values, ok, row0, a, s, env, cnt)
        stats.spectral, stats.limited = ratios, limited
        self.stats.add(stats)

    def unsaturate(
        self, band: np.ndarray, kept: np.ndarray, k: int = 0, counted: np.ndarray | None = None
    ) -> int:
        """In place: pixels of output band ``k`` (``band``) outside ``kept`` (the saturated
        footprint and invalid pixels, broadcast to ``band``) that equal the saturation, or
        round to it in the output's type, move one step to the valid side
        (:func:`~sr_domains.value_ops.off_saturation`: down; up for a saturation at the bottom
        of the band's domain). Returns how many (of those in ``counted``, where given)."""
        if self.saturation is None:
            return 0
        sat, step, low = self.saturation, self.saturation_step, self._saturates_low(k)
        return off_saturation(band, kept, sat, step, low, self.saturation_dtype, counted)

    def near_saturation(self, band: np.ndarray, k: int = 0) -> bool:
        """Whether output band ``k`` has a pixel at (or rounding to) the saturation: only
        then is the saturated footprint looked up (:meth:`unsaturate`)."""
        if self.saturation is None:
            return False
        sat, step, low = self.saturation, self.saturation_step, self._saturates_low(k)
        return reaches(band, sat, step, low, self.saturation_dtype)

    def _saturates_low(self, k: int) -> bool:
        """Whether band ``k``'s saturation is at the bottom of its domain (pixels move up)."""
        lo = self.domain.lo if self.domain is not None else (-np.inf,)
        return bool(self.saturation is not None and self.saturation <= lo[k if len(lo) > 1 else 0])

    def _envelope(
        self, values: np.ndarray, ok: np.ndarray, ft: DTypeLike
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The envelope's bounds of each LR pixel of ``values`` (``-inf``/``inf`` where its
        neighbourhood holds no valid value), or None without an envelope."""
        if self.envelope is None:
            return None
        mn, mx = local_range(values.astype(ft, copy=False), ok, self.radius)
        empty = mn > mx
        r = np.subtract(mx, mn, dtype=ft)  # the bounds are made in place in mn and mx
        r[empty] = 0.0
        r *= np.asarray(self.envelope, ft)
        mn -= r
        mx += r
        mn[empty], mx[empty] = -np.inf, np.inf
        return mn, mx

    def _bounds(
        self, env: tuple[np.ndarray, np.ndarray] | None, shape: tuple[int, ...], ft: DTypeLike
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The envelope and the physical domain together, per band and LR pixel (the bounds
        the band-ratio rule fits its shared factor into), or None when neither bounds."""
        if self.domain is None or not self.domain.bounded:
            return env
        lo_b, hi_b = (b.astype(ft).reshape(-1, 1, 1) for b in self.domain.bounds(shape[0]))
        if env is None:
            return np.broadcast_to(lo_b, shape), np.broadcast_to(hi_b, shape)
        return np.maximum(env[0], lo_b), np.minimum(env[1], hi_b)

    def _apply_gather(
        self,
        out: np.ndarray,
        values: np.ndarray,
        ok: np.ndarray,
        row0: int,
        a: int,
        s: int,
        env: tuple[np.ndarray, np.ndarray] | None = None,
        cnt: np.ndarray | None = None,
    ) -> ClampStats:
        """The rules for rows that do not start and end on input-pixel boundaries (``env``:
        the envelope's bounds when already computed; ``cnt``: the LR pixels the counts take,
        default ``ok``)."""
        c, rows, width = out.shape
        ri = (row0 + np.arange(rows)) // s - a
        ci = np.arange(width) // s

        def up(x: np.ndarray) -> np.ndarray:
            return x[:, ri][:, :, ci]

        ok_up = up(ok)
        cnt = ok if cnt is None else cnt
        window = cnt is not ok
        cnt_up = up(cnt) if window else ok_up
        stats = ClampStats(total=int(cnt_up.sum()))
        ft = out.dtype.type  # float32, or float64 for values float32 cannot hold
        env = env if env is not None else self._envelope(values, ok, ft)
        if env is not None:  # band by band: one band's upsampled bounds at a time
            for k in range(c):
                lo_up, hi_up = up(env[0][k][None])[0], up(env[1][k][None])[0]
                band = out[k]
                stats.envelope += int((((band < lo_up) | (band > hi_up)) & cnt_up[k]).sum())
                np.clip(band, lo_up, hi_up, out=band)
            del lo_up, hi_up
        if self.domain is not None and self.domain.bounded:
            lo_b, hi_b = self.domain.bounds(c)
            lo_b = lo_b.astype(ft).reshape(-1, 1, 1)
            hi_b = hi_b.astype(ft).reshape(-1, 1, 1)
            off = out < lo_b  # (one mask, made in place)
            off |= out > hi_b
            off &= cnt_up
            stats.domain = int(np.count_nonzero(off))
            del off
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
                    changed = out[k] != own  # (one mask, made in place)
                    changed &= hit
                    if window:
                        changed &= cnt_up[k]
                    stats.pinned += int(np.count_nonzero(changed))
                    del changed
                    np.copyto(out[k], own, where=hit)
                    del hit, own  # (HR-sized: gone before the next pin)
        if self.saturation is not None:
            for k in range(c):
                if not self.near_saturation(out[k], k):
                    continue  # (the usual case: no footprint to look up)
                kept = up((pin_hits(values[k], self.saturation, self.pin_tol) & ok[k])[None])[0]
                kept |= ~ok_up[k]
                counted = cnt_up[k] if window else None
                stats.unsaturated += self.unsaturate(out[k], kept, k, counted)
                del kept
        return stats

    def _apply_blocks(
        self,
        out: np.ndarray,
        values: np.ndarray,
        ok: np.ndarray,
        first: int,
        s: int,
        env: tuple[np.ndarray, np.ndarray] | None = None,
        cnt: np.ndarray | None = None,
    ) -> ClampStats:
        """The rules for whole input pixels: ``out`` is viewed as ``(C, R, s, W, s)`` blocks and
        every per-input-pixel bound broadcasts over its block (no upsampled copies); ``cnt``:
        the LR pixels the counts take, default ``ok``."""
        c, rows, width = out.shape
        n = rows // s
        blocks = out.reshape(c, n, s, width // s, s)

        def lr(x: np.ndarray) -> np.ndarray:
            return x[:, first : first + n, None, :, None]

        ok_b = lr(ok)
        cnt = ok if cnt is None else cnt
        window = cnt is not ok
        cnt_b = lr(cnt) if window else ok_b
        stats = ClampStats(total=int(np.count_nonzero(cnt_b)) * s * s)
        ft = out.dtype.type  # float32, or float64 for values float32 cannot hold

        env = env if env is not None else self._envelope(values, ok, ft)
        if env is not None:
            lo, hi = lr(env[0]), lr(env[1])
            stats.envelope = clip_blocks(blocks, lo[:, :, 0, :, 0], hi[:, :, 0, :, 0], cnt_b)
        if self.domain is not None and self.domain.bounded:
            lo_b, hi_b = self.domain.bounds(c)
            for k in range(c):
                band, lo_k, hi_k = blocks[k], ft(lo_b[k]), ft(hi_b[k])
                if band.min() >= lo_k and band.max() <= hi_k:
                    continue  # nothing to clamp (the usual case after the envelope)
                off = band < lo_k  # (one mask, made in place)
                off |= band > hi_k
                off &= cnt_b[k]
                stats.domain += int(np.count_nonzero(off))
                del off
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
                    own = (
                        v
                        if self.pin_tol == 0
                        else np.broadcast_to(
                            values[k][first : first + n, None, :, None].astype(ft), band.shape
                        )
                    )
                    changed = band != own  # (one mask, made in place)
                    changed &= hit
                    if window:
                        changed &= cnt_b[k]
                    stats.pinned += int(np.count_nonzero(changed))
                    del changed
                    if self.pin_tol == 0:
                        band[hit] = v
                    else:
                        np.copyto(band, own, where=hit)
        if self.saturation is not None:
            for k in range(c):
                if not self.near_saturation(blocks[k], k):
                    continue  # (the usual case: no footprint to look up)
                sat = pin_hits(values[k], self.saturation, self.pin_tol) & ok[k]
                kept = sat[first : first + n, None, :, None] | ~ok_b[k]
                counted = cnt_b[k] if window else None
                stats.unsaturated += self.unsaturate(blocks[k], kept, k, counted)
        return stats


def array_reader(values: np.ndarray, valid: np.ndarray | None = None) -> ReadFn:
    """A ``read(y0, x0, h, w)`` callback over an in-memory ``(C, H, W)`` array."""

    def read(y0: int, x0: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray | None]:
        m = None if valid is None else valid[..., y0 : y0 + h, x0 : x0 + w]
        return values[:, y0 : y0 + h, x0 : x0 + w], m

    return read


__all__ = ["ClampStats", "ReadFn", "ValueDomain", "ValueRules", "array_reader"]
