"""Tensor plumbing and separable 1-D resampling kernels for :mod:`sr_domains.degrade`.

Everything here follows the project's one geometry contract: output sample ``k`` of a
downsampling by ``s`` is centred at input index coordinate ``k*s + (s-1)/2``. Boundaries are
half-sample symmetric (``... x1 x0 | x0 x1 ...``, MATLAB ``symmetric`` / scipy ``reflect``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from typing import Any, cast

import numpy as np
import torch
import torch.nn.functional as F

from .errors import ConfigError


def as_tensor(x: Any, *, complex_ok: bool = False) -> tuple[torch.Tensor, bool]:
    """``(float32 tensor, was_numpy)``; inputs are never modified."""
    was_numpy = not isinstance(x, torch.Tensor)
    t = torch.from_numpy(np.asarray(x)) if was_numpy else x
    if complex_ok and t.is_complex():
        return t.to(torch.complex64), was_numpy
    if t.is_complex():
        raise ConfigError("complex input is only supported by kspace_truncate")
    return t.to(torch.float32), was_numpy


def to_input_type(t: torch.Tensor, was_numpy: bool) -> Any:
    return t.detach().cpu().numpy() if was_numpy else t


def check_scale(scale: int) -> int:
    if isinstance(scale, bool) or int(scale) != scale or scale < 1:
        raise ConfigError(f"scale must be a positive integer, got {scale!r}")
    return int(scale)


def require_spatial(t: torch.Tensor, what: str) -> None:
    if t.ndim < 2:
        raise ConfigError(f"{what} needs at least (H, W) data, got shape {tuple(t.shape)}")


def per_band(values: float | Sequence[float], n_bands: int, what: str) -> tuple[float, ...]:
    if np.isscalar(values):
        v: tuple[float, ...] = (float(cast(float, values)),)
    else:
        v = tuple(float(a) for a in cast("Sequence[float]", values))
    if len(v) not in (1, n_bands):
        give = "one value" if n_bands == 1 else f"one value or {n_bands}"
        raise ConfigError(f"{what}: {len(v)} values for {n_bands} band(s); give {give}")
    return v if len(v) == n_bands else v * n_bands


def symmetric_index(idx: np.ndarray, n: int) -> np.ndarray:
    """Fold any integer indices into ``[0, n)`` with half-sample symmetric boundaries."""
    period = np.concatenate([np.arange(n), np.arange(n - 1, -1, -1)])
    return period[np.mod(idx, 2 * n)]


def keys_cubic(x: np.ndarray) -> np.ndarray:
    """Keys (1981) cubic convolution kernel with a = -0.5 (MATLAB ``cubic``)."""
    a = np.abs(x)
    a2, a3 = a * a, a * a * a
    inner = (1.5 * a3 - 2.5 * a2 + 1.0) * (a <= 1)
    outer = (-0.5 * a3 + 2.5 * a2 - 4.0 * a + 2.0) * ((a > 1) & (a <= 2))
    return inner + outer


def _cubic_unfolded(
    in_len: int, out_len: int, scale: float, antialias: bool
) -> tuple[np.ndarray, np.ndarray]:
    """``(left, weights)``: output ``k`` reads inputs ``left[k] + p`` (not yet folded)."""
    shrink = scale < 1 and antialias
    width = 4.0 / scale if shrink else 4.0
    u = (np.arange(out_len, dtype=np.float64) + 0.5) / scale - 0.5
    left = np.floor(u - width / 2.0)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - idx
    w = scale * keys_cubic(dist * scale) if shrink else keys_cubic(dist)
    return left.astype(np.int64), w / w.sum(axis=1, keepdims=True)


def cubic_contributions(
    in_len: int, out_len: int, scale: float, antialias: bool
) -> tuple[np.ndarray, np.ndarray]:
    """MATLAB ``imresize`` contributions: ``(indices, weights)``, both ``(out_len, P)``.

    Output sample ``k`` (0-based) is centred at input coordinate ``u = (k + 0.5)/scale - 0.5``;
    when shrinking with antialiasing the kernel is stretched by ``1/scale``
    (``h(x) = scale * cubic(scale * x)``, width ``4/scale``). Rows are normalized to sum 1 and
    indices are folded symmetrically into the input.
    """
    left, w = _cubic_unfolded(in_len, out_len, scale, antialias)
    idx = left[:, None] + np.arange(w.shape[1])[None, :]
    return symmetric_index(idx, in_len), w


@dataclass(frozen=True)
class Polyphase:
    """A resampling whose taps repeat: output ``q * period + p`` reads inputs
    ``start + q * stride + t`` with weights ``weights[p, t]`` (zero-padded per phase)."""

    period: int
    stride: int
    start: int
    weights: np.ndarray  # (period, taps) float64


@lru_cache(maxsize=64)
def cubic_polyphase(in_len: int, out_len: int, scale: float, antialias: bool) -> Polyphase | None:
    """The MATLAB-cubic contributions as a :class:`Polyphase` when they are periodic (integer
    and rational factors: ``x2``, ``1/4``, ``3/4``...), else None."""
    left, w = _cubic_unfolded(in_len, out_len, scale, antialias)
    frac = Fraction(scale).limit_denominator(64)
    if abs(float(frac) - scale) > 1e-12 or frac.numerator > 64:
        return None
    period, stride = frac.numerator, frac.denominator  # `period` outputs per `stride` inputs
    if out_len < 2 * period:
        return None
    k = np.arange(out_len - period)
    if not (np.array_equal(left[k + period], left[k] + stride)) or not np.allclose(
        w[k + period], w[k], rtol=0, atol=1e-12
    ):
        return None
    base = left[:period] - left[:period].min()
    taps = w.shape[1] + int(base.max())
    phases = np.zeros((period, taps))
    for p in range(period):
        phases[p, base[p] : base[p] + w.shape[1]] = w[p]
    return Polyphase(period, stride, int(left[:period].min()), phases)


def apply_polyphase(x: torch.Tensor, dim: int, plan: Polyphase, out_len: int) -> torch.Tensor:
    """Resample ``x`` along ``dim`` with one strided ``conv1d`` (half-sample symmetric
    boundaries), the same sums as :func:`apply_taps` on the folded contributions."""
    n = x.shape[dim]
    period, stride, taps = plan.period, plan.stride, plan.weights.shape[1]
    m = -(-out_len // period)  # output samples per phase
    span = np.arange(plan.start, plan.start + (m - 1) * stride + taps)
    idx = torch.from_numpy(symmetric_index(span, n)).to(x.device)
    xt = x.movedim(dim, -1).index_select(-1, idx)
    lead = xt.shape[:-1]
    w = torch.from_numpy(plan.weights.astype(np.float32)).to(x.device, x.dtype)
    y = F.conv1d(xt.reshape(-1, 1, xt.shape[-1]), w[:, None, :], stride=stride)  # (B, P, m)
    y = y.transpose(1, 2).reshape(*lead, m * period)[..., :out_len]
    return y.movedim(-1, dim)


@lru_cache(maxsize=64)
def cubic_taps(
    in_len: int, out_len: int, scale: float, antialias: bool, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`cubic_contributions` as (long, float32) tensors on ``device`` (cached)."""
    idx, w = cubic_contributions(in_len, out_len, scale, antialias)
    return (
        torch.from_numpy(idx).to(device),
        torch.from_numpy(w.astype(np.float32)).to(device),
    )


def apply_taps(x: torch.Tensor, dim: int, idx: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``out[..., k, ...] = sum_p w[k, p] * x[..., idx[k, p], ...]`` along ``dim``.

    A loop over the few taps ``p`` (never over pixels); memory stays one output per step.
    """
    xt = x.movedim(dim, -1)
    out = xt.index_select(-1, idx[:, 0]) * w[:, 0]
    for p in range(1, idx.shape[1]):
        out = out + xt.index_select(-1, idx[:, p]) * w[:, p]
    return out.movedim(-1, dim)


def strided_weights(
    profile: Callable[[np.ndarray], np.ndarray], scale: int, extent: float
) -> tuple[np.ndarray, int]:
    """Taps of a centred decimating filter: ``(weights (L,), r)`` with ``L = scale + 2r``.

    LR sample ``k`` reads HR indices ``k*scale - r + t`` (``t < L``); tap ``t`` sits at offset
    ``t - r - (scale-1)/2`` from the LR centre (half-integers for even ``scale``) and gets
    ``profile(offset)``, normalized to sum 1. ``extent`` is the profile's half support.
    """
    half = (scale - 1) / 2.0
    r = max(0, math.ceil(extent - half))
    offsets = np.arange(scale + 2 * r, dtype=np.float64) - r - half
    w = np.asarray(profile(offsets), np.float64)
    return w / w.sum(), r


def strided_filter(x: torch.Tensor, dim: int, scale: int, weights: torch.Tensor, r: int):
    """Decimate ``x`` along ``dim`` by ``scale`` with per-channel taps.

    Args:
        x: tensor whose axis 1 holds the channels that ``weights`` rows apply to (any rank
            >= 2 with ``dim`` not 0 or 1), or any layout when ``weights`` has one row.
        weights: ``(C or 1, L)`` float32 taps from :func:`strided_weights` (same ``r``).

    Output length is ``x.shape[dim] // scale``; trailing HR samples that do not fill an LR
    sample are dropped. Padding is half-sample symmetric.
    """
    n = x.shape[dim]
    m = n // scale
    pad_idx = symmetric_index(np.arange(-r, m * scale + r), n)
    xp = x.index_select(dim, torch.from_numpy(pad_idx).to(x.device)).movedim(dim, -1)
    lead = xp.shape[:-1]
    groups = weights.shape[0]
    if groups == 1:
        flat = xp.reshape(-1, 1, xp.shape[-1])
    else:
        flat = xp.movedim(1, -2).reshape(-1, groups, xp.shape[-1])
    y = F.conv1d(flat, weights.unsqueeze(1), stride=scale, groups=groups)
    if groups == 1:
        out = y.reshape(*lead, m)
    else:
        moved = (lead[0], *lead[2:], lead[1])
        out = y.reshape(*moved, m).movedim(-2, 1)
    return out.movedim(-1, dim)


def gaussian_profile(sigma: float) -> Callable[[np.ndarray], np.ndarray]:
    """Gaussian ``exp(-o^2 / (2 sigma^2))`` sampled at offsets ``o``."""
    return lambda o: np.exp(-0.5 * (o / sigma) ** 2)


def box_profile(width: float) -> Callable[[np.ndarray], np.ndarray]:
    """Box of ``width`` HR samples integrated over each HR sample ``[o - 1/2, o + 1/2]``."""
    return lambda o: np.clip(
        np.minimum(o + 0.5, width / 2.0) - np.maximum(o - 0.5, -width / 2.0), 0.0, None
    )
