"""Anisotropic volumes made isotropic: the target grid (any real factor) and the array-level
pipeline (intensity profile, slice profile, self-supervised fit, application, value rules).

**Target grid.** The slice axis is the one with the coarsest spacing ``dz`` (or the axis not in
``axes``). The target spacing ``t`` defaults to the finest in-plane spacing. Every spatial axis
of spacing ``d`` gets the factor ``f = d / t`` (1 when ``d`` already equals ``t`` within 0.1%)
and ``m = floor(n*f + 1/2)`` samples (:func:`sr_domains.image.resampled_size`); the affine is
``A @ T`` with ``T[a, a] = 1/f``, ``T[a, 3] = (1/f - 1)/2`` (the voxel-centre rule with a real
factor), so the spacing is exactly ``t`` and the **first edge** of the field of view (index
``-1/2``) stays put. When ``n*f`` is not an integer the **far edge** moves by ``(m - n*f) * t``
mm: outward when rounded up, inward when rounded down, never more than ``t/2``.

**Values.** The slice axis is super-resolved by :mod:`sr_domains.medical.through_plane`; in-plane
axes whose spacing differs from ``t`` are resampled with Keys cubic interpolation (antialiased
when shrinking) first. Inputs are normalized with one intensity profile per file (``mr`` by
default), outputs denormalized, then the value rules apply (:func:`apply_rules`).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._resample import apply_taps, cubic_taps
from ..adapt import AxisSR, Budget, FitReport
from ..errors import ConfigError
from ..image import resampled_size, scale_nifti_affine
from ..value_domain import ValueRules
from ..value_facts import pin_hits
from ..value_ops import local_range
from .profile_estimate import ProfileEstimate, estimate_profile
from .slice_profile import SliceProfile
from .through_plane import Fusion, apply_through_plane, fit_through_plane

log = logging.getLogger(__name__)

#: Spacings within this relative difference count as equal.
SAME_SPACING = 1e-3
#: A slice spacing less than this factor above the target is "already isotropic".
MIN_FACTOR = 1.05


@dataclass(frozen=True)
class IsotropicPlan:
    """The target grid of a 3-D volume (module docs).

    Attributes:
        slice_axis: the axis super-resolved by the network.
        spacing: input voxel size of the three spatial axes (mm).
        target: output spacing of every axis (mm).
        shape: input shape of the three spatial axes.
        factors: per-axis factors ``spacing / target`` (1.0 = untouched).
        out_shape: output shape of the three spatial axes.
    """

    slice_axis: int
    spacing: tuple[float, float, float]
    target: float
    shape: tuple[int, int, int]
    factors: tuple[float, float, float]
    out_shape: tuple[int, int, int]

    @property
    def slice_factor(self) -> float:
        return self.factors[self.slice_axis]

    @property
    def in_plane(self) -> tuple[int, int]:
        a, b = (ax for ax in range(3) if ax != self.slice_axis)
        return (a, b)

    def affine(self, affine: np.ndarray) -> np.ndarray:
        """The output affine ``affine @ T`` (first edge of the field of view kept)."""
        return scale_nifti_affine(np.asarray(affine, np.float64), self.factors)

    def edge_shift(self) -> tuple[float, float, float]:
        """How far (mm) the far edge moves on each axis, ``(m - n*f) * t`` (0 when exact; below
        1e-5 mm, the round-off of float32 headers, counts as exact)."""
        out = []
        for n, f, m in zip(self.shape, self.factors, self.out_shape):
            d = (m - n * f) * self.target if f != 1.0 else 0.0
            out.append(0.0 if abs(d) < 1e-5 else d)
        return tuple(out)  # type: ignore[return-value]

    def describe(self) -> str:
        sp = " x ".join(f"{v:.4g}" for v in self.spacing)
        shp = " x ".join(map(str, self.shape))
        out = " x ".join(map(str, self.out_shape))
        return (
            f"{shp} voxels of {sp} mm -> {out} of {self.target:.4g} mm (slice axis "
            f"{self.slice_axis}, factor {self.slice_factor:.4g})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "slice_axis": self.slice_axis,
            "spacing_mm": [round(v, 6) for v in self.spacing],
            "target_mm": round(self.target, 6),
            "factors": [round(v, 6) for v in self.factors],
            "shape": list(self.shape),
            "out_shape": list(self.out_shape),
            "far_edge_shift_mm": [round(v, 6) for v in self.edge_shift()],
        }


def plan_isotropic(
    shape: tuple[int, ...],
    spacing: tuple[float, ...] | np.ndarray,
    *,
    slice_axis: int | None = None,
    target_spacing: float | None = None,
    where: str = "",
) -> IsotropicPlan:
    """The target grid for a volume of ``shape`` and voxel ``spacing`` (module docs).

    Raises:
        ConfigError: unknown or invalid spacing, fewer than 3 slices, an already isotropic
            volume, an ambiguous slice axis or a target spacing not finer than the slices.
            Messages start with ``where`` (the file).
    """
    pre = f"{where}: " if where else ""
    shp = tuple(int(v) for v in shape[:3])
    sp = tuple(float(v) for v in np.asarray(spacing, np.float64).ravel()[:3])
    if len(shp) != 3 or len(sp) != 3:
        raise ConfigError(f"{pre}isotropic SR needs a 3-D volume, got shape {tuple(shape)}")
    if not all(np.isfinite(sp)) or min(sp) <= 0:
        raise ConfigError(f"{pre}unknown or invalid voxel spacing {sp}; cannot plan a grid")
    if target_spacing is None and max(sp) / min(sp) < MIN_FACTOR:
        raise ConfigError(
            f"{pre}already isotropic: {' x '.join(f'{v:.4g}' for v in sp)} mm voxels "
            "(use --scale for in-plane SR)"
        )
    if slice_axis is None:
        order = sorted(range(3), key=lambda a: -sp[a])
        if abs(sp[order[0]] - sp[order[1]]) <= SAME_SPACING * sp[order[0]]:
            raise ConfigError(
                f"{pre}axes {order[0]} and {order[1]} share the coarsest spacing "
                f"({sp[order[0]]:.4g} mm): which one is the slice axis? pass axes"
            )
        slice_axis = order[0]
    if slice_axis not in (0, 1, 2):
        raise ConfigError(f"{pre}slice axis must be 0, 1 or 2, got {slice_axis}")
    if shp[slice_axis] < 3:
        raise ConfigError(
            f"{pre}isotropic SR needs >= 3 slices along axis {slice_axis}, got {shp[slice_axis]}"
        )
    in_plane = [sp[a] for a in range(3) if a != slice_axis]
    t = float(target_spacing) if target_spacing is not None else min(in_plane)
    dz = sp[slice_axis]
    if not (np.isfinite(t) and t > 0):
        raise ConfigError(f"{pre}target spacing must be > 0 mm, got {target_spacing}")
    if dz / t < MIN_FACTOR:
        if target_spacing is None:
            raise ConfigError(
                f"{pre}already isotropic: slice spacing {dz:.4g} mm vs in-plane "
                f"{min(in_plane):.4g} mm (use --scale for in-plane SR)"
            )
        raise ConfigError(
            f"{pre}target spacing {t:.4g} mm is not finer than the slice spacing {dz:.4g} mm"
        )
    factors = tuple(1.0 if abs(d - t) <= SAME_SPACING * t else d / t for d in sp)
    out = tuple(resampled_size(n, f) if f != 1.0 else n for n, f in zip(shp, factors))
    return IsotropicPlan(slice_axis, sp, t, shp, factors, out)  # type: ignore[arg-type]


def resample_axis(volume: np.ndarray, axis: int, factor: float, n_out: int) -> np.ndarray:
    """Keys cubic resampling of one axis by a real ``factor`` (voxel-centre rule, first edge
    kept, mirrored ends, antialiased when ``factor < 1``)."""
    n = volume.shape[axis]
    idx, w = cubic_taps(n, n_out, float(factor), True, torch.device("cpu"))
    t = torch.from_numpy(np.ascontiguousarray(volume, np.float32))
    return apply_taps(t, axis, idx, w).numpy()


@dataclass
class IsotropicModel:
    """A fitted through-plane model and how it was obtained."""

    model: AxisSR
    profile: SliceProfile | None
    estimate: ProfileEstimate | None = None
    report: FitReport | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "network": {"arch": self.model.arch, "factor": round(self.model.factor, 6)},
            "slice_profile": None if self.profile is None else self.profile.to_dict(),
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
        }
        if self.estimate is not None:
            out["slice_profile_estimate"] = self.estimate.to_dict()
        if self.report is not None:
            out["training"] = self.report.to_dict()
        return out


def prepare_in_plane(volume: np.ndarray, plan: IsotropicPlan) -> np.ndarray:
    """Resample the in-plane axes of ``volume`` to the target spacing (when they differ)."""
    out = volume
    for a in plan.in_plane:
        if plan.factors[a] != 1.0:
            out = resample_axis(out, a, plan.factors[a], plan.out_shape[a])
    return out


def fit_isotropic(
    volume: np.ndarray,
    plan: IsotropicPlan,
    profile: SliceProfile | None,
    *,
    budget: Budget,
    seed: int = 0,
    warm_start: torch.nn.Module | None = None,
    progress: bool = False,
    device: torch.device | str = "cpu",
    source: str | os.PathLike[str] | None = None,
) -> IsotropicModel:
    """Fit the through-plane model to a normalized volume already on the target in-plane grid
    (:func:`prepare_in_plane`); ``profile`` None estimates it from the data first (its errors
    name ``source``, the input)."""
    times: dict[str, float] = {}
    estimate = None
    dz = plan.spacing[plan.slice_axis]
    if profile is None:
        t0 = time.perf_counter()
        estimate = estimate_profile(
            volume, plan.slice_axis, plan.target, dz, seed=seed, source=source
        )
        profile = estimate.profile
        times["estimate"] = time.perf_counter() - t0
        log.warning("estimated slice profile: %s", profile.describe())
    t0 = time.perf_counter()
    model, report = fit_through_plane(
        volume,
        plan.slice_axis,
        plan.target,
        dz,
        profile,
        budget=budget,
        seed=seed,
        warm_start=warm_start,
        progress=progress,
        device=device,
    )
    times["fit"] = time.perf_counter() - t0
    return IsotropicModel(model, profile, estimate, report, times)


def apply_isotropic(
    fitted: IsotropicModel,
    volume: np.ndarray,
    plan: IsotropicPlan,
    *,
    fusion: Fusion = "mean",
    progress: bool = False,
) -> np.ndarray:
    """The normalized isotropic volume (``plan.out_shape``) from a normalized input volume on
    the target in-plane grid."""
    if abs(fitted.model.factor - plan.slice_factor) > 1e-6 * plan.slice_factor:
        raise ConfigError(
            f"the model was fitted for x{fitted.model.factor:.6g} slices, this volume needs "
            f"x{plan.slice_factor:.6g}"
        )
    t0 = time.perf_counter()
    out = apply_through_plane(
        fitted.model, volume, plan.slice_axis, fusion=fusion, progress=progress
    )
    fitted.seconds["apply"] = fitted.seconds.get("apply", 0.0) + time.perf_counter() - t0
    return out


def apply_rules(
    out: np.ndarray, src: np.ndarray, plan: IsotropicPlan, rules: ValueRules | None
) -> None:
    """Value fidelity on an isotropic output (stored units, in place), as
    :class:`~sr_domains.value_domain.ValueRules` does for in-plane SR: each output voxel lies
    in input voxel ``round((k + 1/2)/f - 1/2)`` on every axis; the envelope is the range of
    the input voxels within ``rules.radius`` of it; the physical domain bounds all voxels;
    pinned values (exact-zero background) are kept over their nearest-neighbour footprint,
    and no other voxel equals the saturation (:meth:`ValueRules.unsaturate`).
    ``src`` is the input in stored units (NaN = invalid)."""
    if rules is None or not rules.active:
        return
    idx = np.ix_(
        *(nearest_source(n, m, f) for n, m, f in zip(plan.shape, plan.out_shape, plan.factors))
    )
    ok = np.isfinite(src)
    stats = rules.stats
    valid_out = ok[idx]
    stats.total += int(valid_out.sum())
    if rules.envelope is not None:
        ft = out.dtype.type  # float32, or float64 for values float32 cannot hold
        mn, mx = _local_range_3d(np.where(ok, src, 0).astype(ft), ok, rules.radius)
        has = mn <= mx
        r = np.where(has, mx - mn, 0.0)
        lo = np.where(has, mn - rules.envelope * r, -np.inf).astype(ft)[idx]
        hi = np.where(has, mx + rules.envelope * r, np.inf).astype(ft)[idx]
        stats.envelope += int((((out < lo) | (out > hi)) & valid_out).sum())
        np.clip(out, lo, hi, out=out)
        del lo, hi
    if rules.domain is not None and rules.domain.bounded:
        lo_b, hi_b = (float(v[0]) for v in rules.domain.bounds(1))
        stats.domain += int((((out < lo_b) | (out > hi_b)) & valid_out).sum())
        np.clip(out, lo_b, hi_b, out=out)
    for v in rules.pinned[0] if rules.pinned else ():
        hit = (pin_hits(src, v, rules.pin_tol) & ok)[idx]
        # within pin_tol of v, each keeps its own value (exact pins: v itself, no copy)
        own = out.dtype.type(v) if rules.pin_tol == 0 else src[idx]
        stats.pinned += int((hit & (out != own)).sum())
        out[hit] = own if rules.pin_tol == 0 else own[hit]
    if rules.saturation is not None:  # none outside the footprint reaches it
        sat = (pin_hits(src, rules.saturation, rules.pin_tol) & ok)[idx]
        stats.unsaturated += rules.unsaturate(out, sat | ~valid_out)


def nearest_source(n: int, m: int, factor: float) -> np.ndarray:
    """Input voxel holding each of the ``m`` output voxel centres of an axis of ``n`` voxels
    resampled by ``factor`` (voxel-centre rule: ``floor((k + 1/2) / f)``, clamped)."""
    k = np.arange(m, dtype=np.float64)
    return np.clip(np.floor((k + 0.5) / float(factor)), 0, n - 1).astype(np.int64)


def _local_range_3d(x: np.ndarray, ok: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray]:
    """Min and max of valid voxels in every ``(2r+1)^3`` neighbourhood (separable)."""
    mn, mx = local_range(x, ok, r)  # the two last axes
    a = mn.shape[0]
    lo, hi = mn.copy(), mx.copy()
    for d in range(1, r + 1):
        lo[d:] = np.minimum(lo[d:], mn[: a - d])
        lo[: a - d] = np.minimum(lo[: a - d], mn[d:])
        hi[d:] = np.maximum(hi[d:], mx[: a - d])
        hi[: a - d] = np.maximum(hi[: a - d], mx[d:])
    return lo, hi


__all__ = [
    "IsotropicModel",
    "IsotropicPlan",
    "apply_isotropic",
    "apply_rules",
    "fit_isotropic",
    "nearest_source",
    "plan_isotropic",
    "prepare_in_plane",
    "resample_axis",
]
