"""Built-in HR -> LR degradations of :class:`~sr_domains.monai.MakeLowResolutiond`.

Kept apart on purpose: each is a plain ``degrade(x, scale) -> y`` on ``(N, C, H, W)`` tensors
(``y`` is ``(N, C, H/s, W/s)``), the same signature a user may pass, so they can later be
replaced by the library-wide degradation module without touching the transform.

Every one of them puts LR pixel ``k`` at the centre of HR block ``[k*s, (k+1)*s)``, i.e. at HR
index ``k*s + (s-1)/2`` -- the position the LR affine (inverse voxel-centre rule) assigns to
it. Without that alignment (plain ``x[::s]`` decimation) the LR image is shifted by
``(s-1)/2`` HR voxels against its own affine.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

DegradeFn = Callable[[torch.Tensor, int], torch.Tensor]

#: Default Gaussian sigma, in HR pixels per unit of scale: FWHM = one LR pixel.
FWHM_SIGMA = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def _along_last(x: torch.Tensor, weights: torch.Tensor, scale: int) -> torch.Tensor:
    """Strided correlation along the last axis with a kernel centred on the HR block centres."""
    n_taps = weights.numel()
    pad = (n_taps - scale) // 2
    lead = x.shape[:-1]
    flat = x.reshape(-1, 1, x.shape[-1])
    flat = F.pad(flat, (pad, pad), mode="replicate") if pad else flat
    y = F.conv1d(flat, weights.view(1, 1, -1).to(flat), stride=scale)
    return y.reshape(*lead, y.shape[-1])


def gaussian_kernel(scale: int, sigma: float) -> torch.Tensor:
    """Normalized 1-D Gaussian taps at offsets ``t - (L-1)/2`` from the block centre; ``L`` has
    the parity of ``scale`` (so the kernel centre falls on the block centre) and ``L >= s``."""
    n_taps = max(scale, 2 * math.ceil(3.0 * sigma) + 1)
    if (n_taps - scale) % 2:
        n_taps += 1
    offsets = torch.arange(n_taps, dtype=torch.float64) - (n_taps - 1) / 2.0
    if sigma <= 0:
        w = (offsets.abs() <= (scale - 1) / 2.0 + 1e-9).double()
    else:
        w = torch.exp(-0.5 * (offsets / sigma) ** 2)
    return (w / w.sum()).float()


def gaussian(x: torch.Tensor, scale: int, sigma: float | None = None) -> torch.Tensor:
    """Gaussian blur (default FWHM = one LR pixel) sampled at the LR pixel centres; edges
    replicated. ``sigma`` is in HR pixels."""
    sig = FWHM_SIGMA * scale if sigma is None else float(sigma)
    w = gaussian_kernel(scale, sig)
    y = _along_last(x, w, scale)
    return _along_last(y.transpose(-1, -2), w, scale).transpose(-1, -2)


def area(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Mean of each ``s x s`` HR block (box point-spread function)."""
    return F.avg_pool2d(x, kernel_size=scale, stride=scale)


def _kspace_1d(x: torch.Tensor, scale: int, dim: int) -> torch.Tensor:
    n = x.shape[dim]
    m = n // scale
    spec = torch.fft.fft(x, dim=dim)
    k = torch.fft.fftfreq(m, d=1.0 / m, dtype=torch.float64)  # kept frequencies, fft order
    idx = torch.remainder(k.long(), n).to(x.device)
    shape = [1] * x.ndim
    shape[dim] = m
    # Sample at HR index j*s + (s-1)/2: a linear phase moves the signal by (s-1)/2.
    phase = torch.exp(2j * math.pi * k * ((scale - 1) / 2.0) / n).to(spec.dtype).to(x.device)
    kept = spec.index_select(dim, idx) * phase.view(shape)
    return torch.fft.ifft(kept, dim=dim) * (m / n)


def kspace(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Central k-space truncation (what a lower-resolution MR acquisition measures): keep the
    lowest ``1/s`` of the frequencies on both axes, transform back on the LR grid."""
    y = _kspace_1d(x.to(torch.complex64), scale, -1)
    return _kspace_1d(y, scale, -2).real.to(x.dtype)


BUILTIN: dict[str, DegradeFn] = {"gaussian": gaussian, "area": area, "kspace": kspace}

__all__ = ["BUILTIN", "FWHM_SIGMA", "DegradeFn", "area", "gaussian", "gaussian_kernel", "kspace"]
