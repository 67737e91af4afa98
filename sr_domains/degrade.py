"""Degradation models: LR/HR training pairs from HR data.

Formulas and defaults: docs/degradations_and_metrics.md.

Geometry (the project's one contract): LR pixel ``k`` covers HR pixels ``[k*s, (k+1)*s)`` and its
centre is HR index coordinate ``k*s + (s-1)/2``. Every downsampling here is centred there, for
odd and even ``s`` (no half-pixel shift), so LR/HR pairs agree with the upscaled geometry that
``sr_domains.image.upscale_matrix`` writes.

Inputs: torch tensors ``(N, C, H, W)``, ``(C, H, W)`` or ``(H, W)`` (any device) or numpy arrays
(a numpy array in gives a numpy array out, same layout). Maths and outputs are float32 (complex64
for complex ``kspace_truncate`` input). Bands are on axis ``-3``. No scipy at run time.

* :func:`imresize` / :func:`bicubic_downsample` - MATLAB ``imresize`` bicubic (BasicSR parity);
  integer and rational factors run as polyphase convolutions (same sums, ~1e-7).
* :func:`wald_downsample` - band-wise Gaussian MTF blur + decimation (Wald protocol).
* :func:`kspace_truncate` - MRI: keep the central k-space block, centred LR, real image.
* :func:`slice_profile_downsample` - MRI through-plane thick slices (Gaussian or box profile).
* :func:`add_gaussian_noise`, :func:`add_poisson_noise`, :func:`add_rician_noise` - sensor noise.
* :func:`sr_domains.psf.gaussian_area_downsample` - Gaussian / motion-like PSF + area decimation
  (kinds ``gaussian`` and ``motion``).
* :class:`DegradationConfig` + :func:`degrade` - what the trainer calls every step, including
  ``random`` (one drawn degradation per sample, for degradation-robust training).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, TypeVar, cast

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


# ---------------------------------------------------------------------------------------------
# noise (drawn on the generator's device, then moved: deterministic for a seeded generator)


def _noise_device(t: torch.Tensor, generator: torch.Generator | None) -> torch.device:
    return generator.device if generator is not None else t.device


def _randn_like(t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    dev = _noise_device(t, generator)
    return torch.randn(t.shape, generator=generator, device=dev, dtype=t.dtype).to(t.device)


def _band_sigma(t: torch.Tensor, sigma: float | Sequence[float], what: str) -> torch.Tensor:
    n_bands = t.shape[-3] if t.ndim >= 3 else 1
    v = _per_band(sigma, n_bands, what)
    if min(v) < 0:
        raise ConfigError(f"{what} must be >= 0, got {sigma}")
    shape = (len(v), 1, 1) if t.ndim >= 3 else (1, 1)
    return torch.tensor(v, dtype=t.dtype, device=t.device).reshape(shape)


def add_gaussian_noise(
    x: ArrayT, sigma: float | Sequence[float], generator: torch.Generator | None = None
) -> ArrayT:
    """``x + sigma_b * n``, ``n ~ N(0, 1)`` i.i.d. (read noise; ``sigma`` one or per band)."""
    t, was_numpy = _as_tensor(x)
    sg = _band_sigma(t, sigma, "gaussian sigma")
    return _back(t + sg * _randn_like(t, generator), was_numpy)


def add_poisson_noise(x: ArrayT, peak: float, generator: torch.Generator | None = None) -> ArrayT:
    """Shot noise on [0, 1]-normalized data: ``Poisson(max(x, 0) * peak) / peak``.

    ``peak`` is the photon count of a full-scale (1.0) pixel; variance is ``x / peak``.
    """
    if not peak > 0:
        raise ConfigError(f"poisson peak must be > 0, got {peak}")
    t, was_numpy = _as_tensor(x)
    rate = (t.clamp(min=0) * peak).to(_noise_device(t, generator))
    out = torch.poisson(rate, generator=generator).to(t.device) / peak
    return _back(out, was_numpy)


def add_rician_noise(
    x: ArrayT, sigma: float | Sequence[float], generator: torch.Generator | None = None
) -> ArrayT:
    """Magnitude MRI noise: ``sqrt((x + sigma n1)^2 + (sigma n2)^2)``, ``n1, n2 ~ N(0, 1)``."""
    t, was_numpy = _as_tensor(x)
    sg = _band_sigma(t, sigma, "rician sigma")
    n1 = _randn_like(t, generator)
    n2 = _randn_like(t, generator)
    return _back(torch.sqrt((t + sg * n1) ** 2 + (sg * n2) ** 2), was_numpy)


# ---------------------------------------------------------------------------------------------
# config + the training-time entry point


KINDS = ("bicubic", "wald", "kspace", "gaussian", "motion", "random")
DegradationKind = Literal["bicubic", "wald", "kspace", "gaussian", "motion", "random"]
#: The families a ``random`` degradation draws from (``kspace`` is added for MRI configs).
RANDOM_KINDS = ("bicubic", "gaussian", "wald", "motion")


@dataclass(frozen=True)
class DegradationConfig:
    """How the trainer makes LR inputs from HR patches (YAML-friendly, strict).

    Attributes:
        kind: ``bicubic`` (MATLAB imresize), ``wald`` (Gaussian MTF + decimation), ``kspace``
            (MRI k-space truncation), ``gaussian`` (Gaussian PSF of ``psf_sigma`` LR pixels +
            area decimation), ``motion`` (anisotropic PSF ``psf_sigma`` x ``psf_sigma_minor`` at
            ``psf_angle`` degrees + area decimation), or ``random``: each sample draws a family
            from ``random_kinds`` and its parameters from the ranges below, then optional noise
            (degradation-robust training).
        mtf_nyquist: MTF at the LR Nyquist frequency for ``wald``: one value or one per band.
        psf_sigma, psf_sigma_minor, psf_angle: PSF of ``gaussian``/``motion`` (LR pixels,
            degrees; ``psf_sigma_minor`` None = isotropic).
        gaussian_noise: sigma of additive Gaussian noise, normalized units (0 = off).
        poisson_peak: photons at full scale for shot noise (0 = off).
        rician_noise: sigma of Rician (magnitude) noise, normalized units (0 = off).
        noise_prob: probability that a given sample of the batch gets the noise.
        random_kinds: families drawn by ``random``.
        random_sigma: ``(min, max)`` PSF sigma (LR pixels) drawn for ``gaussian``/``motion``.
        random_mtf: ``(min, max)`` MTF at Nyquist drawn for ``wald``.
        random_noise: ``(max Gaussian sigma, max Rician sigma)`` drawn uniformly from 0 for
            ``random`` (each sample gets one or neither, with ``noise_prob``).
    """

    kind: DegradationKind = "bicubic"
    mtf_nyquist: tuple[float, ...] = (WALD_MTF_NYQUIST,)
    psf_sigma: float = 0.5
    psf_sigma_minor: float | None = None
    psf_angle: float = 0.0
    gaussian_noise: float = 0.0
    poisson_peak: float = 0.0
    rician_noise: float = 0.0
    noise_prob: float = 1.0
    random_kinds: tuple[str, ...] = RANDOM_KINDS
    random_sigma: tuple[float, float] = (0.2, 1.2)
    random_mtf: tuple[float, float] = (0.15, 0.45)
    random_noise: tuple[float, float] = (0.02, 0.0)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ConfigError(f"degradation kind must be one of {', '.join(KINDS)}: {self.kind!r}")
        mtf = self.mtf_nyquist
        mtf = (float(mtf),) if np.isscalar(mtf) else tuple(float(v) for v in mtf)  # type: ignore[arg-type]
        if not mtf or not all(0.0 < v < 1.0 for v in mtf):
            raise ConfigError(f"mtf_nyquist values must be in (0, 1), got {self.mtf_nyquist}")
        object.__setattr__(self, "mtf_nyquist", mtf)
        for name in ("gaussian_noise", "poisson_peak", "rician_noise", "psf_sigma"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
                raise ConfigError(f"{name} must be a finite number >= 0, got {v!r}")
        if not 0.0 <= self.noise_prob <= 1.0:
            raise ConfigError(f"noise_prob must be in [0, 1], got {self.noise_prob}")
        kinds = tuple(str(k) for k in self.random_kinds)
        bad = [k for k in kinds if k not in KINDS or k == "random"]
        if not kinds or bad:
            raise ConfigError(f"random_kinds must name {', '.join(KINDS[:-1])}; got {kinds}")
        object.__setattr__(self, "random_kinds", kinds)
        for name in ("random_sigma", "random_mtf", "random_noise"):
            lo, hi = (float(v) for v in getattr(self, name))
            if name != "random_noise" and not 0 <= lo <= hi:
                raise ConfigError(f"{name} must be (min, max) with 0 <= min <= max")
            object.__setattr__(self, name, (lo, hi))
        if not (self.random_mtf[0] > 0 and self.random_mtf[1] < 1):
            raise ConfigError("random_mtf values must be in (0, 1)")

    @property
    def has_noise(self) -> bool:
        return self.gaussian_noise > 0 or self.poisson_peak > 0 or self.rician_noise > 0


def _downsample(x: torch.Tensor, s: int, config: DegradationConfig) -> torch.Tensor:
    from .psf import gaussian_area_downsample

    if config.kind == "bicubic":
        return bicubic_downsample(x, s)
    if config.kind == "wald":
        return wald_downsample(x, s, config.mtf_nyquist)
    if config.kind == "kspace":
        return kspace_truncate(x, s)
    minor = config.psf_sigma_minor
    if config.kind == "motion" and minor is None:
        minor = config.psf_sigma / 4.0
    return gaussian_area_downsample(
        x, s, config.psf_sigma, sigma_minor=minor, angle=config.psf_angle
    )


def draw(config: DegradationConfig, generator: torch.Generator | None) -> DegradationConfig:
    """One concrete degradation drawn by a ``random`` config (a fixed number of draws, so the
    generator advances the same way whatever is drawn)."""
    import dataclasses

    u = torch.rand(7, generator=generator).tolist()
    kind = cast(  # random_kinds are checked kinds (__post_init__)
        DegradationKind,
        config.random_kinds[
            min(int(u[0] * len(config.random_kinds)), len(config.random_kinds) - 1)
        ],
    )
    lo, hi = config.random_sigma
    sigma = lo + (hi - lo) * u[1]
    m_lo, m_hi = config.random_mtf
    noisy = u[5] < config.noise_prob
    g_max, r_max = config.random_noise
    both = g_max > 0 and r_max > 0
    use_rician = r_max > 0 and (g_max <= 0 or u[6] < 0.5)
    # u[6] picks the noise type when both are on, so its half is rescaled to [0, 1): each sigma
    # is uniform over [0, max]. (Using u[6] itself drew Rician only below max/2 and Gaussian only
    # above it; docs/weights.md says which shipped weights were trained before the fix.)
    level = (2 * u[6] - (0.0 if use_rician else 1.0)) if both else u[6]
    return dataclasses.replace(
        config,
        kind=kind,
        mtf_nyquist=(m_lo + (m_hi - m_lo) * u[2],),
        psf_sigma=sigma,
        psf_sigma_minor=sigma * (0.15 + 0.35 * u[3]) if kind == "motion" else None,
        psf_angle=180.0 * u[4],
        gaussian_noise=g_max * level if noisy and not use_rician and g_max > 0 else 0.0,
        rician_noise=r_max * level if noisy and use_rician else 0.0,
        poisson_peak=0.0,
        noise_prob=1.0,
    )


def degrade(
    hr: torch.Tensor,
    scale: int,
    config: DegradationConfig,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """HR batch ``(N, C, H, W)`` -> float32 LR ``(N, C, H/s, W/s)`` as ``config`` says.

    Downsampling first, then noise on the LR in this order: Poisson shot noise, Gaussian read
    noise, Rician. Each sample gets the noise with probability ``noise_prob`` (one Bernoulli
    draw per sample). A ``random`` config draws one degradation per sample (:func:`draw`).
    Deterministic for a given ``generator`` state (all draws always happen, in a fixed order).
    """
    s = _check_scale(scale)
    if not isinstance(hr, torch.Tensor) or hr.ndim != 4:
        raise ConfigError(f"degrade expects an (N, C, H, W) tensor, got {getattr(hr, 'shape', hr)}")
    n, _, h, w = hr.shape
    if h % s or w % s:
        raise ConfigError(f"degrade: HR size {h}x{w} is not divisible by scale {s}")
    x = hr.to(torch.float32)
    if config.kind == "random":
        parts = [degrade(x[i : i + 1], s, draw(config, generator), generator) for i in range(n)]
        return torch.cat(parts, dim=0)
    lr = _downsample(x, s, config)
    if not config.has_noise:
        return lr
    keep = None
    if config.noise_prob < 1.0:
        u = torch.rand(n, generator=generator, device=_noise_device(lr, generator))
        keep = (u < config.noise_prob).to(lr.device).reshape(n, 1, 1, 1)
    noisy = lr
    if config.poisson_peak > 0:
        noisy = add_poisson_noise(noisy, config.poisson_peak, generator)
    if config.gaussian_noise > 0:
        noisy = add_gaussian_noise(noisy, config.gaussian_noise, generator)
    if config.rician_noise > 0:
        noisy = add_rician_noise(noisy, config.rician_noise, generator)
    return noisy if keep is None else torch.where(keep, noisy, lr)


__all__ = [
    "KINDS",
    "RANDOM_KINDS",
    "WALD_MTF_NYQUIST",
    "DegradationConfig",
    "add_gaussian_noise",
    "add_poisson_noise",
    "add_rician_noise",
    "bicubic_downsample",
    "degrade",
    "draw",
    "gaussian_sigma_for_mtf",
    "imresize",
    "kspace_truncate",
    "slice_profile_downsample",
    "wald_downsample",
]
