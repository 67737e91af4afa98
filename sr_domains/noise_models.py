"""Sensor noise models of the degradations (re-exported by :mod:`sr_domains.degrade`): Gaussian
read noise, Poisson shot noise, Rician magnitude-MRI noise. Noise is drawn on the generator's
device, then moved: deterministic for a seeded generator."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np
import torch

from ._resample import as_tensor as _as_tensor
from ._resample import per_band as _per_band
from ._resample import to_input_type as _back
from .errors import ConfigError

ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)


def noise_device(t: torch.Tensor, generator: torch.Generator | None) -> torch.device:
    """Where random numbers for ``t`` are drawn: the generator's device, else ``t``'s."""
    return generator.device if generator is not None else t.device


def _randn_like(t: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    dev = noise_device(t, generator)
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
    rate = (t.clamp(min=0) * peak).to(noise_device(t, generator))
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


__all__ = ["add_gaussian_noise", "add_poisson_noise", "add_rician_noise", "noise_device"]
