"""Synthetic scenes shared by the adaptation tests."""

from __future__ import annotations

import numpy as np


def fractal(n: int, seed: int, dtype: type = np.float64) -> np.ndarray:
    """A 1/f^2 random ``(n, n)`` scene in [0, 1] (natural-image-like spectrum)."""
    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(n)[:, None], np.fft.fftfreq(n)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    f[0, 0] = 1.0
    spec = (rng.standard_normal((n, n)) + 1j * rng.standard_normal((n, n))) / f
    img = np.real(np.fft.ifft2(spec))
    return ((img - img.min()) / (img.max() - img.min())).astype(dtype)
