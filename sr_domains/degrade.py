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

The operators live in :mod:`sr_domains.downsample` and :mod:`sr_domains.noise_models` and are
re-exported here, the module the rest of the library and user code import them from.
* :func:`sr_domains.psf.gaussian_area_downsample` - Gaussian / motion-like PSF + area decimation
  (kinds ``gaussian`` and ``motion``).
* :class:`DegradationConfig` + :func:`degrade` - what the trainer calls every step, including
  ``random`` (one drawn degradation per sample, for degradation-robust training).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast

import numpy as np
import torch

from ._resample import check_scale as _check_scale
from .downsample import (
    WALD_MTF_NYQUIST,
    bicubic_downsample,
    gaussian_sigma_for_mtf,
    imresize,
    kspace_truncate,
    slice_profile_downsample,
    wald_downsample,
)
from .errors import ConfigError
from .noise_models import add_gaussian_noise, add_poisson_noise, add_rician_noise, noise_device

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)


# ---------------------------------------------------------------------------------------------
# config + the training-time entry point


KINDS = ("bicubic", "wald", "kspace", "gaussian", "motion", "random")
DegradationKind = Literal["bicubic", "wald", "kspace", "gaussian", "motion", "random"]
#: The families a ``random`` degradation draws from (``kspace`` is added for MRI configs).
RANDOM_KINDS = ("bicubic", "gaussian", "wald", "motion")


#: The two-number fields of :class:`DegradationConfig` and what their numbers are.
_RANGES = {
    "random_sigma": "(min, max)",
    "random_mtf": "(min, max)",
    "random_noise": "(max Gaussian sigma, max Rician sigma)",
}


def _pair(name: str, value: Any, what: str) -> tuple[float, float]:
    """``value`` as two floats, else a :class:`ConfigError` naming ``name`` and its form."""
    items: tuple[float, ...] = ()
    if not isinstance(value, (str, bytes)):
        with contextlib.suppress(TypeError, ValueError):  # (not a sequence, not numbers)
            items = tuple(float(v) for v in value)
    if len(items) != 2:
        raise ConfigError(f"{name} must be 2 numbers {what}, got {value!r}")
    return items[0], items[1]


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
        for name, what in _RANGES.items():
            lo, hi = _pair(name, getattr(self, name), what)
            if name == "random_noise" and not (0 <= lo < math.inf and 0 <= hi < math.inf):
                raise ConfigError(f"random_noise must be {what} >= 0, got {self.random_noise}")
            if name != "random_noise" and not 0 <= lo <= hi:
                raise ConfigError(f"{name} must be (min, max) with 0 <= min <= max")
            object.__setattr__(self, name, (lo, hi))
        if not (self.random_mtf[0] > 0 and self.random_mtf[1] < 1):
            raise ConfigError("random_mtf values must be in (0, 1)")

    @property
    def has_noise(self) -> bool:
        return self.gaussian_noise > 0 or self.poisson_peak > 0 or self.rician_noise > 0


def describe_degradation(config: DegradationConfig) -> str:
    """One sentence saying what ``config`` does (for model cards): the settings of its kind
    and its noise, not every field."""
    c = config

    def g(v: float) -> str:
        return f"{v:g}"

    if c.kind == "random":
        ranges = []
        if {"gaussian", "motion"} & set(c.random_kinds):
            ranges.append(f"PSF sigma {g(c.random_sigma[0])}-{g(c.random_sigma[1])} LR px")
        if "wald" in c.random_kinds:
            ranges.append(f"MTF at Nyquist {g(c.random_mtf[0])}-{g(c.random_mtf[1])}")
        what = f"random per sample from {', '.join(c.random_kinds)}"
        what += f" ({', '.join(ranges)})" if ranges else ""
        gauss, rician = c.random_noise
        if gauss > 0 or rician > 0:
            noise = " or ".join(
                f"{n} noise up to sigma {g(v)}"
                for n, v in (("Gaussian", gauss), ("Rician", rician))
                if v > 0
            )
            what += f", {noise} on {g(100 * c.noise_prob)} % of samples"
        return what
    fixed: str | None = {
        "bicubic": "MATLAB bicubic",
        "kspace": "k-space truncation",
        "wald": f"Wald MTF at Nyquist {', '.join(map(g, c.mtf_nyquist))} + decimation",
        "gaussian": f"Gaussian PSF sigma {g(c.psf_sigma)} LR px + area decimation",
    }.get(c.kind)
    what = fixed or ""
    if fixed is None:  # motion
        minor = c.psf_sigma_minor if c.psf_sigma_minor is not None else c.psf_sigma / 4.0
        what = (
            f"motion PSF {g(c.psf_sigma)} x {g(minor)} LR px at {g(c.psf_angle)} degrees + "
            "area decimation"
        )
    extra = [
        f"{n} {g(v)}"
        for n, v in (
            ("Gaussian noise sigma", c.gaussian_noise),
            ("Poisson noise, peak", c.poisson_peak),
            ("Rician noise sigma", c.rician_noise),
        )
        if v > 0
    ]
    if extra:
        what += f", {' and '.join(extra)} on {g(100 * c.noise_prob)} % of samples"
    return what


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

    device = generator.device if generator is not None else None  # a CUDA generator draws there
    u = torch.rand(7, generator=generator, device=device).tolist()
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
        u = torch.rand(n, generator=generator, device=noise_device(lr, generator))
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
    "describe_degradation",
    "draw",
    "gaussian_sigma_for_mtf",
    "imresize",
    "kspace_truncate",
    "slice_profile_downsample",
    "wald_downsample",
]
