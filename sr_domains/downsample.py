"""Downsampling operators of the degradation models (re-exported by :mod:`sr_domains.degrade`,
which documents the geometry contract and the input conventions they share).

* :func:`imresize` / :func:`bicubic_downsample` - MATLAB ``imresize`` bicubic (BasicSR parity);
  integer and rational factors run as polyphase convolutions (same sums, ~1e-7).
* :func:`wald_downsample` - band-wise Gaussian MTF blur + decimation (Wald protocol).
* :func:`kspace_truncate` - MRI: keep the central k-space block, centred LR, real image.
* :func:`slice_profile_downsample` - MRI through-plane thick slices (Gaussian or box profile).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal, TypeVar

import numpy as np
import torch

from . import _resample as rs
from ._resample import as_tensor as _as_tensor
from ._resample import check_scale as _check_scale
from ._resample import per_band as _per_band
from ._resample import require_spatial as _spatial
from ._resample import to_input_type as _back
from .errors import ConfigError
from .models.ops import MATLAB_CUBIC_A, BicubicUpsample

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)

WALD_MTF_NYQUIST = 0.3
"""Default MTF at the LR Nyquist frequency (a typical optical-sensor value, Wald protocol)."""


# ---------------------------------------------------------------------------------------------
# bicubic (MATLAB imresize)


def imresize(
    x: ArrayT,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    *,
    antialias: bool = True,
) -> ArrayT:
    """MATLAB ``imresize(x, scale | [h w], 'bicubic')`` on the last two axes.

    Keys cubic (a = -0.5); when shrinking with ``antialias`` the kernel is widened by
    ``1/scale``; symmetric boundary; output pixel ``k`` centred at input coordinate
    ``(k + 0.5)/scale - 0.5`` (= ``k*s + (s-1)/2`` for ``scale = 1/s``). Same semantics as
    BasicSR's ``imresize`` (``basicsr.utils.matlab_functions``). With ``scale`` the output size
    is ``ceil(scale * size)`` (MATLAB); with ``size`` each axis uses ``out/in``. No rounding or
    clipping is applied (float32 out, unlike MATLAB on uint8).

    Args:
        x: ``(..., H, W)`` tensor or array.
        scale: one factor for both axes (``0.25`` shrinks 4x).
        size: ``(out_h, out_w)`` instead of ``scale``.
        antialias: widen the kernel when shrinking (MATLAB default ``true``).
    """
    t, was_numpy = _as_tensor(x)
    _spatial(t, "imresize")
    h, w = t.shape[-2:]
    if (scale is None) == (size is None):
        raise ConfigError("imresize: give exactly one of scale or size")
    out: tuple[int, ...]
    if scale is not None:
        if not scale > 0:
            raise ConfigError(f"imresize: scale must be > 0, got {scale}")
        out = (math.ceil(h * scale - 1e-9), math.ceil(w * scale - 1e-9))
        factors = (float(scale), float(scale))
    else:
        assert size is not None  # exactly one of scale and size (checked above)
        out = tuple(int(v) for v in size)
        if len(out) != 2 or min(out) < 1:
            raise ConfigError(f"imresize: size must be two positive integers, got {size}")
        factors = (out[0] / h, out[1] / w)
    return _back(_imresize_t(t, out, factors, antialias), was_numpy)


@lru_cache(maxsize=8)
def _matlab_upsampler(scale: int) -> BicubicUpsample:
    return BicubicUpsample(scale, 1, MATLAB_CUBIC_A, padding="symmetric")


def _imresize_t(
    t: torch.Tensor, out: tuple[int, int], factors: tuple[float, float], antialias: bool
) -> torch.Tensor:
    h, w = t.shape[-2:]
    s = int(factors[0])
    if factors == (s, s) and s >= 2 and out == (h * s, w * s) and min(h, w) >= 2:
        # integer upscaling: both axes at once, one depthwise conv + pixel shuffle
        up = _matlab_upsampler(s).to(t.device)
        y = up(t.reshape(-1, 1, h, w))
        return y.reshape(*t.shape[:-2], h * s, w * s)
    for axis, n_out, f in ((-2, out[0], factors[0]), (-1, out[1], factors[1])):
        n_in = t.shape[axis]
        if n_in == n_out and f == 1.0:
            continue
        poly = rs.cubic_polyphase(n_in, n_out, f, antialias)
        if poly is not None:  # integer and rational factors: one strided conv per axis
            t = rs.apply_polyphase(t, axis, poly, n_out)
            continue
        idx, taps = rs.cubic_taps(n_in, n_out, f, antialias, t.device)
        t = rs.apply_taps(t, axis, idx, taps)
    return t


def bicubic_downsample(x: ArrayT, scale: int) -> ArrayT:
    """``imresize(x, 1/scale)`` (antialiased MATLAB bicubic), the classic SR degradation."""
    s = _check_scale(scale)
    t, was_numpy = _as_tensor(x)
    _spatial(t, "bicubic_downsample")
    out = (-(-t.shape[-2] // s), -(-t.shape[-1] // s))
    return _back(_imresize_t(t, out, (1.0 / s, 1.0 / s), True), was_numpy)


# ---------------------------------------------------------------------------------------------
# Wald protocol (Gaussian MTF + decimation)


def gaussian_sigma_for_mtf(scale: int, mtf_nyquist: float = WALD_MTF_NYQUIST) -> float:
    """Sigma (HR pixels) of the Gaussian whose MTF at the LR Nyquist frequency is ``mtf_nyquist``.

    ``MTF(f) = exp(-2 pi^2 sigma^2 f^2)`` at ``f = 1/(2s)`` cycles per HR pixel gives
    ``sigma = s/pi * sqrt(-2 ln(mtf_nyquist))`` (0.3 and s=4: sigma = 1.976).
    """
    s = _check_scale(scale)
    if not 0.0 < mtf_nyquist < 1.0:
        raise ConfigError(f"mtf_nyquist must be in (0, 1), got {mtf_nyquist}")
    return s / math.pi * math.sqrt(-2.0 * math.log(mtf_nyquist))


@lru_cache(maxsize=64)
def _gauss_weights(
    scale: int, sigmas: tuple[float, ...], device: torch.device
) -> tuple[torch.Tensor, int]:
    r = max(rs.strided_weights(rs.gaussian_profile(sg), scale, 4.0 * sg)[1] for sg in sigmas)
    rows = []
    for sg in sigmas:
        w, rr = rs.strided_weights(rs.gaussian_profile(sg), scale, 4.0 * sg)
        rows.append(np.pad(w, r - rr))
    return torch.from_numpy(np.stack(rows).astype(np.float32)).to(device), r


def wald_downsample(
    x: ArrayT, scale: int, mtf_nyquist: float | Sequence[float] = WALD_MTF_NYQUIST
) -> ArrayT:
    """Wald protocol: per-band Gaussian blur matching the sensor MTF, then decimation by ``scale``.

    ``LR_b[k] = sum_j g_b(j - c_k) HR_b[j] / sum_j g_b(j - c_k)`` per axis (separable), with
    ``c_k = k*s + (s-1)/2`` and ``g_b(o) = exp(-o^2 / (2 sigma_b^2))``,
    ``sigma_b = gaussian_sigma_for_mtf(s, mtf_nyquist[b])``. The kernel is sampled at the exact
    offsets from the LR centre (half-integers for even ``s``), truncated at 4 sigma, so no
    shift is introduced. Symmetric (reflect) padding; output ``H//s x W//s``.

    Args:
        mtf_nyquist: one value, or one per band (axis ``-3``), e.g. Sentinel-2 per-band MTFs.
    """
    s = _check_scale(scale)
    t, was_numpy = _as_tensor(x)
    _spatial(t, "wald_downsample")
    shape = t.shape
    b = t.reshape(-1, *shape[-3:]) if t.ndim >= 3 else t.reshape(1, 1, *shape)
    mtf = _per_band(mtf_nyquist, b.shape[1], "mtf_nyquist")
    sigmas = tuple(gaussian_sigma_for_mtf(s, m) for m in mtf)
    if len(set(sigmas)) == 1:
        sigmas = sigmas[:1]
    w, r = _gauss_weights(s, sigmas, t.device)
    b = rs.strided_filter(rs.strided_filter(b, 2, s, w, r), 3, s, w, r)
    return _back(b.reshape(*shape[:-2], *b.shape[-2:]), was_numpy)


# ---------------------------------------------------------------------------------------------
# MRI


def kspace_truncate(x: ArrayT, scale: int, *, dims: Sequence[int] = (-2, -1)) -> ArrayT:
    """MRI low resolution: keep the central ``N/s`` k-space block along each of ``dims``.

    With ``X = DFT(x)`` (size ``N``, ``M = N/s``) and the centred LR frequencies
    ``f = -floor(M/2) .. ceil(M/2) - 1``: ``Y[f] = X[f] / s * exp(2 pi i f d / N)``,
    ``d = (s-1)/2``, ``y = Re(IDFT_M(Y))`` (complex input: no ``Re``). The phase ramp moves the
    LR samples from HR coordinates ``k*s`` to the LR centres ``k*s + (s-1)/2``; ``1/s`` keeps the
    mean. Hence ``y[k]`` is the band-limited HR evaluated at the LR centres: every HR frequency
    ``|f| < M/2`` is kept exactly, every ``|f| > M/2`` is removed and, for even ``M``, the
    Nyquist pair ``+-M/2`` is shared symmetrically (the only real-valued choice).

    Raises:
        ConfigError: a size along ``dims`` is not divisible by ``scale``.
    """
    s = _check_scale(scale)
    t, was_numpy = _as_tensor(x, complex_ok=True)
    dims = tuple(d % t.ndim for d in dims) if t.ndim else ()
    if not dims or len(set(dims)) != len(dims):
        raise ConfigError(f"kspace_truncate: invalid dims {dims} for shape {tuple(t.shape)}")
    for d in dims:
        if t.shape[d] % s:
            raise ConfigError(
                f"kspace_truncate: size {t.shape[d]} (axis {d}) is not divisible by scale {s}"
            )
    spec = torch.fft.fftn(t, dim=dims)
    for d in dims:
        n = t.shape[d]
        m = n // s
        f = torch.arange(m, device=t.device)
        f = torch.where(f < (m + 1) // 2, f, f - m)
        spec = spec.index_select(d, torch.remainder(f, n))
        phase = torch.exp(2j * math.pi * f.to(torch.float64) * ((s - 1) / 2) / n) / s
        shape = [1] * t.ndim
        shape[d] = m
        spec = spec * phase.to(torch.complex64).reshape(shape)
    y = torch.fft.ifftn(spec, dim=dims)
    return _back(y if t.is_complex() else y.real.contiguous(), was_numpy)


def slice_profile_downsample(
    x: ArrayT,
    scale: int,
    dim: int,
    *,
    profile: Literal["gaussian", "box"] = "gaussian",
    fwhm: float | None = None,
) -> ArrayT:
    """Through-plane thick slices: LR slice ``k`` = HR weighted by the slice profile along ``dim``.

    ``LR[k] = sum_j p(j - c_k) HR[j] / sum_j p(j - c_k)``, ``c_k = k*s + (s-1)/2``.
    ``gaussian``: ``p(o) = exp(-o^2 / (2 sigma^2))``, ``sigma = fwhm / (2 sqrt(2 ln 2))``;
    ``box``: ``p(o)`` = overlap of HR voxel ``[o - 1/2, o + 1/2]`` with ``[-fwhm/2, fwhm/2]``
    (``fwhm = s`` is the plain mean of the ``s`` slices). ``fwhm`` defaults to ``s`` HR voxels.
    Symmetric padding; ``n // s`` output slices.

    Args:
        x: a volume of rank >= 3 (e.g. ``(D, H, W)`` or ``(N, C, D, H, W)``).
        dim: the through-plane axis.
    """
    s = _check_scale(scale)
    t, was_numpy = _as_tensor(x)
    if t.ndim < 3:
        raise ConfigError(f"slice_profile_downsample needs a volume (rank >= 3), got {t.ndim}-D")
    width = float(s if fwhm is None else fwhm)
    if not width > 0:
        raise ConfigError(f"fwhm must be > 0, got {fwhm}")
    if profile == "gaussian":
        sigma = width / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        w, r = rs.strided_weights(rs.gaussian_profile(sigma), s, 4.0 * sigma)
    elif profile == "box":
        w, r = rs.strided_weights(rs.box_profile(width), s, width / 2.0 + 0.5)
    else:
        raise ConfigError(f"profile must be 'gaussian' or 'box', got {profile!r}")
    weights = torch.from_numpy(w[None].astype(np.float32)).to(t.device)
    return _back(rs.strided_filter(t, dim % t.ndim, s, weights, r), was_numpy)


__all__ = [
    "WALD_MTF_NYQUIST",
    "bicubic_downsample",
    "gaussian_sigma_for_mtf",
    "imresize",
    "kspace_truncate",
    "slice_profile_downsample",
    "wald_downsample",
]
