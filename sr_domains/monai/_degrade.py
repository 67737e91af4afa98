"""Built-in HR -> LR degradations of :class:`~sr_domains.monai.MakeLowResolutiond`.

Each is a plain ``degrade(x, scale) -> y`` on ``(N, C, H, W)`` tensors (``y`` is
``(N, C, H/s, W/s)``), the same signature a user may pass. They are thin names over the
library's :mod:`sr_domains.degrade`, which puts LR pixel ``k`` at the centre of HR block
``[k*s, (k+1)*s)`` (HR index ``k*s + (s-1)/2``) -- the position the LR affine (inverse
voxel-centre rule) assigns to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from .. import degrade as _lib

DegradeFn = Callable[[torch.Tensor, int], torch.Tensor]

#: Default Gaussian sigma, in HR pixels per unit of scale: FWHM = one LR pixel.
FWHM_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def gaussian(x: torch.Tensor, scale: int, sigma: float | None = None) -> torch.Tensor:
    """Gaussian blur (default FWHM = one LR pixel; ``sigma`` in HR pixels) sampled at the LR
    pixel centres: :func:`sr_domains.degrade.wald_downsample` with the MTF at Nyquist that this
    sigma has, ``exp(-pi^2 sigma^2 / (2 s^2))``. ``sigma <= 0`` is the box (``area``)."""
    sig = FWHM_SIGMA * scale if sigma is None else float(sigma)
    if sig <= 0:
        return area(x, scale)
    mtf = math.exp(-(math.pi**2) * sig**2 / (2.0 * scale**2))
    return _lib.wald_downsample(x, scale, mtf)


def area(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Mean of each ``s x s`` HR block (box point-spread function)."""
    return F.avg_pool2d(x, kernel_size=scale, stride=scale)


def kspace(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Central k-space truncation (:func:`sr_domains.degrade.kspace_truncate`)."""
    return _lib.kspace_truncate(x, scale)


def bicubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB-compatible antialiased bicubic (:func:`sr_domains.degrade.bicubic_downsample`)."""
    return _lib.bicubic_downsample(x, scale)


BUILTIN: dict[str, DegradeFn] = {
    "gaussian": gaussian,
    "area": area,
    "kspace": kspace,
    "bicubic": bicubic,
}

__all__ = ["BUILTIN", "FWHM_SIGMA", "DegradeFn", "area", "bicubic", "gaussian", "kspace"]
