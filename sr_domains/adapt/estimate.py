"""Blind estimates of how an image was degraded: its noise level and the width of a Gaussian PSF.

Both work on one normalized image ``(C, H, W)`` (or ``(H, W)``) and feed per-input adaptation
(:mod:`sr_domains.adapt.input_adapt`), which needs the degradation that made the input from the
scene, applied once more to the input itself.

* **Noise**: Donoho's robust estimator, ``median(|HH|) / 0.6745`` of the finest diagonal Haar
  detail (``(a - b - c + d) / 2`` over 2x2 blocks) in the flattest 30% of the image (lowest
  gradient of the 2x2 means, so resampler ringing beside edges does not count), per band,
  median over bands. Blur leaves it alone (the diagonal detail of a blurred image is tiny), so
  it measures the noise added after the optics. Blocks touching the band's minimum or maximum
  (masked background, padding, saturation) are left out: their detail is 0 however noisy the
  image. Fine scene texture reads as noise at one scale, so :func:`estimate_white_noise` (what
  the degradation estimate and the noise gate use) keeps only the part that halves under 2 x 2
  averaging, as white noise does; where blur leaves the finest scale to the noise alone (the
  split then reads 0), the flat top of the power spectrum (:func:`spectral_floor`) gives it.
* **PSF width**: the image is formed as ``scene * Gaussian(sigma) * box(1 px)``, sampled; its
  power spectrum is ``A f^-b · sinc²(fx) sinc²(fy) · exp(-4 π² σ² f²) + noise``. The
  estimator takes the Hann-windowed power spectrum, removes the noise floor and the pixel
  aperture, averages it over rings, and fits ``log P = a - b log f - c f²`` (``c >= 0``) by least
  squares on the rings whose signal is at least twice the noise floor (or the spectrum's flat
  top, where higher), ``0.04 <= f <= 0.45`` cycles per pixel: ``σ = sqrt(c) / (2π)`` in pixels
  of the image. Natural scenes are not exact power laws, so the estimate is coarse (tests:
  within 0.15 px on simulated scenes for ``σ`` in 0.4-1.0, and ordered right); it is recorded
  with every adapted output. A fit too loose to tell (:data:`PSF_TOLERANCE`), or one whose
  power law falls steeper than any scene's (:data:`MAX_SLOPE`: the window's leakage under a
  blur of several pixels), reports ``rings = 0``: its ``σ``, 0 included, is then no finding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError

#: Blocks touching a band's extreme value are left out of the noise estimate when at least
#: this share of the blocks does not touch one (:func:`estimate_noise`).
MIN_UNCLIPPED = 0.05
#: Ring frequencies (cycles per pixel) used by the PSF fit.
FIT_BAND = (0.04, 0.45)
#: The PSF fit is trusted when the upper end of its 2-standard-error interval for sigma is at
#: most this many pixels above the reading (:func:`estimate_psf_sigma`).
PSF_TOLERANCE = 0.35
#: A PSF fit whose power law falls faster than ``f^-MAX_SLOPE`` is not trusted: natural scenes
#: fall as ``f^-2``..``f^-4``. Steeper is a blur too wide for :data:`FIT_BAND`, whose rings
#: then hold the Hann window's leakage (a noise-free photo blurred by 3 px read 0.32 px, with
#: a slope of 16, trusted).
MAX_SLOPE = 8.0
#: The top of the spectrum, in two halves (cycles per pixel): where it is flat (mean power of
#: the lower half at most :data:`PLATEAU_FLATNESS` times the upper's) it is a white floor, noise
#: added after the optics, and the upper half's mean power is its variance.
PLATEAU_BANDS = ((0.30, 0.40), (0.40, 0.50))
PLATEAU_FLATNESS = 1.25
#: The spectral floor stands for the noise only where it is at most this factor above the
#: spatial estimate (:func:`estimate_noise`, which scene texture only raises).
PLATEAU_AGREEMENT = 1.5


@dataclass(frozen=True)
class DegradationEstimate:
    """What :func:`estimate_degradation` found (normalized units, pixels of the image).

    Attributes:
        psf_sigma: Gaussian PSF standard deviation in pixels (0 = as sharp as the pixel grid,
            when ``rings`` > 0).
        noise: noise standard deviation.
        rings: rings used by the PSF fit; 0 when the fit is not trustworthy (too little signal
            above the noise, or too loose a fit): ``psf_sigma`` is then only a fallback, and
            a 0 there does not mean sharp.
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
    """``image`` as float64 ``(C, H, W)``, every non-finite pixel (NaN, +-inf) NaN: an invalid
    pixel, never a value (an inf in a sum or a mean would spread over its neighbours)."""
    a = np.asarray(image, np.float64)
    if a.ndim == 2:
        a = a[None]
    if a.ndim != 3 or min(a.shape[1:]) < 16:
        raise ConfigError(f"need an image (C, H, W) of at least 16x16 pixels, got {a.shape}")
    return np.where(np.isfinite(a), a, np.nan)


def _fill(x: np.ndarray) -> np.ndarray:
    """``x`` with its non-finite values replaced by the mean of its finite ones (0 without)."""
    ok = np.isfinite(x)
    if ok.all():
        return x
    return np.where(ok, x, float(x[ok].mean()) if ok.any() else 0.0)


def _live_blocks(a: np.ndarray) -> np.ndarray:
    """``(C, H/2, W/2)``: the 2x2 blocks of ``a`` (even size) that can show its noise: finite,
    and not touching their band's minimum or maximum (masked background, padding, saturation,
    and the border of those). A clipped block's detail is the clip, not the noise: 0 inside
    however noisy the image, the clip's edge on its border. A constant block anywhere else (a
    smooth region quantised finer than the noise) still counts. Where fewer than
    :data:`MIN_UNCLIPPED` of a band's finite blocks are unclipped (a binary or label image),
    the extremes are the scene, and all its finite blocks count."""
    finite = np.isfinite(a)
    lo = np.where(finite, a, np.inf).min(axis=(1, 2))[:, None, None]
    hi = np.where(finite, a, -np.inf).max(axis=(1, 2))[:, None, None]
    at = (a == lo) | (a == hi)
    clipped = at[:, 0::2, 0::2] | at[:, 0::2, 1::2] | at[:, 1::2, 0::2] | at[:, 1::2, 1::2]
    ok = finite[:, 0::2, 0::2] & finite[:, 0::2, 1::2] & finite[:, 1::2, 0::2]
    ok &= finite[:, 1::2, 1::2]
    live = ok & ~clipped
    few = live.sum(axis=(1, 2)) < MIN_UNCLIPPED * ok.sum(axis=(1, 2))
    return np.where(few[:, None, None], ok, live)


def _flat_details(a: np.ndarray) -> list[tuple[np.ndarray, np.ndarray] | None]:
    """Per band of ``a`` (``(C, H, W)``): the finest diagonal Haar details ``|HH|`` of its live
    2x2 blocks (:func:`_live_blocks`) and the local gradient of those blocks' means; None for a
    band without a finite detail."""
    h, w = a.shape[1] // 2 * 2, a.shape[2] // 2 * 2
    a = a[:, :h, :w]
    hh = (a[:, 0::2, 0::2] - a[:, 0::2, 1::2] - a[:, 1::2, 0::2] + a[:, 1::2, 1::2]) / 2.0
    ll = (a[:, 0::2, 0::2] + a[:, 0::2, 1::2] + a[:, 1::2, 0::2] + a[:, 1::2, 1::2]) / 4.0
    out: list[tuple[np.ndarray, np.ndarray] | None] = []
    for d, m, ok in zip(hh, ll, _live_blocks(a), strict=True):
        if not np.isfinite(d).any():
            out.append(None)
            continue
        gy, gx = np.gradient(_fill(m))
        out.append((np.abs(d[ok]), (np.abs(gy) + np.abs(gx))[ok]))
    return out


def _pooled_noise(
    parts: list[list[tuple[np.ndarray, np.ndarray] | None]], flat_share: float = 0.3
) -> float:
    """Donoho's estimate from the :func:`_flat_details` of one or more grids of the same image
    (pooled per band): the flattest ``flat_share`` of the blocks, median over bands."""
    per_band = []
    for band in zip(*parts, strict=True):
        got = [p for p in band if p is not None]
        if not got:
            continue
        d = np.concatenate([p[0] for p in got])
        grad = np.concatenate([p[1] for p in got])
        if not d.size:
            per_band.append(0.0)
            continue
        sel = d[grad <= np.quantile(grad, flat_share)]
        per_band.append(float(np.median(sel)) / 0.6745 if sel.size else 0.0)
    return float(np.median(per_band)) if per_band else 0.0


def estimate_noise(image: np.ndarray, flat_share: float = 0.3) -> float:
    """Noise standard deviation of ``image`` (module docs); non-finite pixels (NaN, +-inf)
    are ignored.

    Only the flattest ``flat_share`` of the 2x2 blocks count (lowest local gradient of the
    block means): the ringing of a sharpening resampler (bicubic) sits next to edges and would
    otherwise read as noise. Blocks touching the band's minimum or maximum (masked background,
    padding, saturation) do not count at all (:func:`_live_blocks`): a skull-stripped MR slice
    read 0 however noisy, its flattest blocks being the exactly constant background."""
    return _pooled_noise([_flat_details(_bands(image))], flat_share)


def _half(a: np.ndarray) -> np.ndarray:
    """``a`` averaged over 2x2 blocks (odd last row and column dropped)."""
    h, w = a.shape[1] // 2 * 2, a.shape[2] // 2 * 2
    b = a[:, :h, :w]
    return (b[:, 0::2, 0::2] + b[:, 0::2, 1::2] + b[:, 1::2, 0::2] + b[:, 1::2, 1::2]) / 4.0


#: Under this side (pixels) :func:`estimate_white_noise` reads both scales on every grid
#: offset (cycle spinning) instead of one grid.
CYCLE_SPIN_BELOW = 64


def _shifts(a: np.ndarray) -> list[np.ndarray]:
    """The four 2x2 grid offsets of ``a``."""
    return [a[:, p:, q:] for p in (0, 1) for q in (0, 1)]


def estimate_white_noise(image: np.ndarray) -> float:
    """The white part of :func:`estimate_noise`: what scene texture alone cannot explain.

    The finest Haar detail reads fine texture (vegetation, fields, any pattern near the pixel
    pitch) as noise. White noise of sigma gives ``e1 = sigma`` at the finest scale and
    ``e2 = sigma / 2`` after 2 x 2 averaging, while scene detail does not halve like that (it
    grows or stays from fine to coarse in natural images), so ``sqrt(4/3 (e1^2 - e2^2))``
    (0 when negative) keeps the noise and drops most texture. A blurred scene breaks that
    split the other way: its finest scale is noise alone but its coarse scale is mostly scene,
    so ``e2 >= e1`` and the split reads 0 however noisy the image is. The top of its power
    spectrum is then a flat, white floor (:func:`spectral_floor`); where it is flat and agrees
    with ``e1`` (within :data:`PLATEAU_AGREEMENT`), the noise is at least the smaller of the
    two. Fine texture does not pass that test: its spectrum falls towards the pixel pitch (the
    pixel's own aperture alone takes a third off).

    Under :data:`CYCLE_SPIN_BELOW` pixels one grid of 2 x 2 blocks leaves too few coarse
    blocks to be a statistic (a 44 x 40 image has 110 coarse blocks, 33 of them in the
    flattest 30%): both scales are then pooled over every offset of the block grids (4 at the
    finest scale, 16 at the coarse one: cycle spinning, the undecimated transform), which keeps
    each detail's noise statistics and multiplies the flat blocks. The spectrum of so small an
    image is the window's leakage of its edges, so its floor is not used there. Non-finite pixels
    (NaN, +-inf) are ignored (a 2 x 2 block with one is NaN at the coarser scale)."""
    a = _bands(image)
    if min(a.shape[1:]) < CYCLE_SPIN_BELOW:
        e1 = _pooled_noise([_flat_details(s) for s in _shifts(a)])
        e2 = _pooled_noise([_flat_details(c) for s in _shifts(a) for c in _shifts(_half(s))])
        return math.sqrt(max(0.0, 4.0 / 3.0 * (e1 * e1 - e2 * e2)))
    e1, e2 = estimate_noise(a), estimate_noise(_half(a))
    white = math.sqrt(max(0.0, 4.0 / 3.0 * (e1 * e1 - e2 * e2)))
    floor = spectral_floor(a)
    if floor is not None and floor <= e1 * PLATEAU_AGREEMENT:
        white = max(white, min(e1, floor))
    return float(white)


def _power(band: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(fy, fx, f, power)``: the Hann-windowed power spectrum of one band (non-finite pixels
    filled with the mean), scaled so that white noise of variance ``v`` has power ``v`` at
    every frequency."""
    h, w = band.shape
    x = _fill(np.asarray(band, np.float64))
    x = x - x.mean()
    win = np.outer(np.hanning(h), np.hanning(w))
    power = np.abs(np.fft.fft2(x * win)) ** 2 / float((win**2).sum())
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    return fy, fx, np.sqrt(fx**2 + fy**2), power


def _band_floor(f: np.ndarray, power: np.ndarray) -> float | None:
    """The power of one band's flat spectral top (:data:`PLATEAU_BANDS`; ``f`` and ``power``
    from :func:`_power`), or None when the top is not flat."""
    (l0, l1), (u0, u1) = PLATEAU_BANDS
    lower = float(power[(f >= l0) & (f < l1)].mean())
    upper = float(power[(f >= u0) & (f < u1)].mean())
    return upper if upper > 0 and lower <= PLATEAU_FLATNESS * upper else None


def spectral_floor(image: np.ndarray) -> float | None:
    """Noise standard deviation read from the flat top of the power spectrum (median over the
    bands where it is flat), or None when it is flat in fewer than half of them: the top is
    then scene, as in any image sharper than its noise (module docs). Non-finite pixels and
    blocks exactly constant at a band's extreme (:func:`estimate_noise`) carry no noise and are
    accounted for."""
    a = _bands(image)
    h, w = a.shape[1] // 2 * 2, a.shape[2] // 2 * 2
    a = a[:, :h, :w]
    live = np.repeat(np.repeat(_live_blocks(a), 2, axis=1), 2, axis=2)
    win2 = np.outer(np.hanning(h), np.hanning(w)) ** 2
    floors = []
    for band, ok in zip(a, live, strict=True):
        if not ok.any() or not np.nanstd(band) > 0:
            continue
        _, _, f, power = _power(band)
        v = _band_floor(f, power)
        if v is not None:  # noise on half the pixels has half the power
            floors.append(v * float(win2.sum() / (win2 * ok).sum()))
    if not floors or 2 * len(floors) < len(a):
        return None
    return math.sqrt(float(np.median(floors)))


def _ring_spectrum(band: np.ndarray, noise: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ring frequencies, ring powers (aperture removed, noise floor subtracted) and the noise
    floor after aperture removal, for one band. The floor is ``noise ** 2``, or the band's flat
    spectral top (:func:`_band_floor`) where that is higher: white power carries no roll-off,
    whether the noise estimate missed it or not."""
    fy, fx, f, power = _power(band)
    var = max(noise**2, _band_floor(f, power) or 0.0)
    aperture = (np.sinc(fx) * np.sinc(fy)) ** 2
    n_rings = max(8, min(band.shape) // 2)
    edges = np.linspace(0.0, 0.5, n_rings + 1)
    idx = np.digitize(f.ravel(), edges) - 1
    ok = (idx >= 0) & (idx < n_rings)
    count = np.bincount(idx[ok], minlength=n_rings)
    signal = np.bincount(idx[ok], weights=(power - var).ravel()[ok], minlength=n_rings)
    ap = np.bincount(idx[ok], weights=aperture.ravel()[ok], minlength=n_rings)
    centre = 0.5 * (edges[:-1] + edges[1:])
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_ap = ap / count
        ring = signal / count / mean_ap
        floor = var / mean_ap
    return centre, ring, floor


def estimate_psf_sigma(image: np.ndarray, noise: float | None = None) -> tuple[float, int]:
    """``(sigma, rings)``: the Gaussian PSF width in pixels (module docs) and the number of
    rings the fit used. ``rings`` is 0 when the fit is not trustworthy, and ``sigma`` then only
    a fallback (the fit's value, or 0 without one): fewer than 4 rings above the noise floor,
    or a fit so loose that the upper end of its 2-standard-error interval for sigma lies more
    than :data:`PSF_TOLERANCE` px above the reading (too narrow a band of rings to see a
    roll-off, or a spectrum that is not a blurred power law), or a power law steeper than
    ``f^-MAX_SLOPE`` (:data:`MAX_SLOPE`: window leakage below a blur too wide to see). An
    untrusted 0 is not "sharp"."""
    a = _bands(image)
    noise = estimate_noise(a) if noise is None else float(noise)
    fs: list[np.ndarray] = []
    ys: list[np.ndarray] = []
    for band in a:
        if not np.isfinite(band).any() or not np.nanstd(band) > 0:
            continue
        f, p, floor = _ring_spectrum(band, noise)
        use = (f >= FIT_BAND[0]) & (f <= FIT_BAND[1]) & (p > 2.0 * np.maximum(floor, 1e-20))
        fs.append(f[use])
        ys.append(np.log(p[use]))
    n = sum(len(v) for v in fs)
    if n < 4:
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
    # c <= 0: no Gaussian roll-off beyond the power law; c = 0 is then the constrained fit
    c = max(0.0, float(coef[-1]))
    sigma = math.sqrt(c) / (2.0 * math.pi)
    dof = n - design.shape[1]
    if dof < 1:
        return sigma, 0
    resid = y - design @ coef
    cov = np.linalg.pinv(design.T @ design) * float(resid @ resid) / dof
    se = math.sqrt(max(0.0, float(cov[-1, -1])))
    upper = math.sqrt(c + 2.0 * se) / (2.0 * math.pi)
    trusted = upper - sigma <= PSF_TOLERANCE and float(coef[-2]) <= MAX_SLOPE
    return sigma, (n if trusted else 0)


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
    "spectral_floor",
]
