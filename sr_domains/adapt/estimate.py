"""Blind estimates of how an image was degraded: its noise level and the width of a Gaussian PSF.

Both work on one normalized image ``(C, H, W)`` (or ``(H, W)``) and feed per-input adaptation
(:mod:`sr_domains.adapt.input_adapt`), which needs the degradation that made the input from the
scene, applied once more to the input itself.

* **Noise**: Donoho's robust estimator, ``median(|HH|) / 0.6745`` of the finest diagonal Haar
  detail (``(a - b - c + d) / 2`` over 2x2 blocks) in the flattest 30% of the image (lowest
  gradient of the 2x2 means, so resampler ringing beside edges does not count), per band,
  median over bands. Blur leaves it alone (the diagonal detail of a blurred image is tiny), so
  it measures the noise added after the optics. Fine scene texture reads as noise at one scale,
  so :func:`estimate_white_noise` (what the degradation estimate and the noise gate use) keeps
  only the part that halves under 2 x 2 averaging, as white noise does.
* **PSF width**: the image is formed as ``scene * Gaussian(sigma) * box(1 px)``, sampled; its
  power spectrum is ``A f^-b · sinc²(fx) sinc²(fy) · exp(-4 π² σ² f²) + noise``. The
  estimator takes the Hann-windowed power spectrum, removes the noise floor and the pixel
  aperture, averages it over rings, and fits ``log P = a - b log f - c f²`` (``c >= 0``) by least
  squares on the rings whose signal is at least twice the noise floor, ``0.04 <= f <= 0.45``
  cycles per pixel: ``σ = sqrt(c) / (2π)`` in pixels of the image. Natural scenes are not exact
  power laws, so the estimate is coarse (tests: within 0.15 px on simulated scenes for
  ``σ`` in 0.4-1.0, and ordered right); it is recorded with every adapted output.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

#: Ring frequencies (cycles per pixel) used by the PSF fit.
FIT_BAND = (0.04, 0.45)


@dataclass(frozen=True)
class DegradationEstimate:
    """What :func:`estimate_degradation` found (normalized units, pixels of the image).

    Attributes:
        psf_sigma: Gaussian PSF standard deviation in pixels (0 = as sharp as the pixel grid).
        noise: noise standard deviation.
        rings: rings used by the PSF fit (0: no usable signal, ``psf_sigma`` is a fallback).
    """

    psf_sigma: float
    noise: float
    rings: int

    def to_dict(self) -> dict[str, float | int]:
        return {
            "psf_sigma_px": round(self.psf_sigma, 4),
            "noise": round(self.noise, 6),
            "rings": self.rings,
        }


def _bands(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image, np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or min(a.shape[1:]) < 16:
        raise ConfigError(f"need an image (C, H, W) of at least 16x16 pixels, got {a.shape}")
    return a


def estimate_noise(image: np.ndarray, flat_share: float = 0.3) -> float:
    """Noise standard deviation of ``image`` (module docs); NaN pixels are ignored.

    Only the flattest ``flat_share`` of the 2x2 blocks count (lowest local gradient of the
    block means): the ringing of a sharpening resampler (bicubic) sits next to edges and would
    otherwise read as noise."""
    a = _bands(image)
    h, w = a.shape[1] // 2 * 2, a.shape[2] // 2 * 2
    a = a[:, :h, :w]
    hh = (a[:, 0::2, 0::2] - a[:, 0::2, 1::2] - a[:, 1::2, 0::2] + a[:, 1::2, 1::2]) / 2.0
    ll = (a[:, 0::2, 0::2] + a[:, 0::2, 1::2] + a[:, 1::2, 0::2] + a[:, 1::2, 1::2]) / 4.0
    per_band = []
    for d, m in zip(hh, ll, strict=True):
        if not np.isfinite(d).any():
            continue
        gy, gx = np.gradient(np.where(np.isfinite(m), m, np.nanmean(m)))
        grad = np.abs(gy) + np.abs(gx)
        ok = np.isfinite(d)
        cut = np.quantile(grad[ok], flat_share)
        sel = np.abs(d[ok & (grad <= cut)])
        per_band.append(float(np.median(sel)) / 0.6745 if sel.size else 0.0)
    return float(np.median(per_band)) if per_band else 0.0


def estimate_white_noise(image: np.ndarray) -> float:
    """The white part of :func:`estimate_noise`: what scene texture alone cannot explain.

    The finest Haar detail reads fine texture (vegetation, fields, any pattern near the pixel
    pitch) as noise. White noise of sigma gives ``e1 = sigma`` at the finest scale and
    ``e2 = sigma / 2`` after 2 x 2 averaging, while scene detail does not halve like that (it
    grows or stays from fine to coarse in natural images), so ``sqrt(4/3 (e1^2 - e2^2))``
    (0 when negative) keeps the noise and drops most texture. Images under 64 x 64 pixels
    get :func:`estimate_noise` (at 32 x 32 and below the coarse scale is mostly anatomy or
    scene, not a statistic: a 33 x 41 EPI slice read 0 there). NaN pixels are ignored (a
    2 x 2 block with one is NaN at the coarser scale)."""
    a = _bands(image)
    if min(a.shape[1:]) < 64:
        return estimate_noise(a)
    h, w = a.shape[1] // 2 * 2, a.shape[2] // 2 * 2
    b = a[:, :h, :w]
    coarse = (b[:, 0::2, 0::2] + b[:, 0::2, 1::2] + b[:, 1::2, 0::2] + b[:, 1::2, 1::2]) / 4.0
    e1, e2 = estimate_noise(a), estimate_noise(coarse)
    return float(np.sqrt(max(0.0, 4.0 / 3.0 * (e1 * e1 - e2 * e2))))


def _ring_spectrum(band: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ring frequencies, ring powers (aperture removed, noise floor subtracted) and the noise
    floor after aperture removal, for one band."""
    h, w = band.shape
    x = np.where(np.isfinite(band), band, np.nanmean(band))
    x = x - x.mean()
    win = np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2(x * win)) ** 2 / float((win**2).sum())
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    f = np.sqrt(fx**2 + fy**2)
    aperture = (np.sinc(fx) * np.sinc(fy)) ** 2
    n_rings = max(8, min(h, w) // 2)
    edges = np.linspace(0.0, 0.5, n_rings + 1)
    idx = np.digitize(f.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < n_rings)
    count = np.bincount(idx[ok], minlength=n_rings)
    signal = np.bincount(idx[ok], weights=(power - noise**2).ravel()[ok], minlength=n_rings)
    ap = np.bincount(idx[ok], weights=aperture.ravel()[ok], minlength=n_rings)
    centre = 0.5 * (edges[:-1] + edges[1:])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_ap = ap / count
        ring = signal / count / mean_ap
        floor = noise**2 / mean_ap
    return centre, ring, floor


def estimate_psf_sigma(image: np.ndarray, noise: float | None = None) -> tuple[float, int]:
    """``(sigma, rings)``: the Gaussian PSF width in pixels (module docs) and the number of
    rings the fit used (0 when there was not enough signal; sigma is then 0)."""
    a = _bands(image)
    noise = estimate_noise(a) if noise is None else float(noise)
    (
        fs,
        ys,
    ) = [], []
    for band in a:
        if not np.isfinite(band).any() or np.nanstd(band) == 0:
            continue
        f, p, floor = _ring_spectrum(band, noise)
        use = (f >= FIT_BAND[0]) & (f <= FIT_BAND[1]) & (p > 2.0 * np.maximum(floor, 1e-20))
        fs.append(f[use])
        ys.append(np.log(p[use]))
    if not fs or sum(len(v) for v in fs) < 4:
        return 0.0, 0
    f = np.concatenate(fs)
    y = np.concatenate(ys)
    # one intercept per band, shared slope b and curvature c: y = a_k - b log f - c f^2
    cols = [
        np.concatenate([np.full(len(v), 1.0 if j == k else 0.0) for j, v in enumerate(fs)])
        for k in range(len(fs))
    ]
    design = np.stack([*cols, -np.log(f), -(f**2)], axis=1)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    c = float(coef[-1])
    if c <= 0:  # no Gaussian roll-off beyond the power law: refit without it
        return 0.0, len(f)
    return math.sqrt(c) / (2.0 * math.pi), len(f)


def estimate_degradation(image: np.ndarray) -> DegradationEstimate:
    """Noise (its white part, :func:`estimate_white_noise`) and Gaussian PSF width of one
    normalized image (module docs)."""
    noise = estimate_white_noise(image)
    sigma, rings = estimate_psf_sigma(image, noise)
    return DegradationEstimate(psf_sigma=sigma, noise=noise, rings=rings)


__all__ = [
    "DegradationEstimate",
    "estimate_degradation",
    "estimate_noise",
    "estimate_psf_sigma",
    "estimate_white_noise",
]
