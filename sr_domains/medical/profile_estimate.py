"""Estimate the slice profile of a volume from its own content (ESPRESO-like, no training).

Idea (as in ESPRESO): the right profile is the one that makes **in-plane content, degraded
with it, look like the through-plane content**. Here "look like" is measured on 1-D power
spectra, which needs no adversarial network:

1. Through-plane lines: segments of ``L`` samples along the slice axis (spacing ``dz``) inside
   the object; their mean windowed power spectrum ``S_z(k)``.
2. In-plane lines: segments along both in-plane axes (spacing ``h``), degraded with a candidate
   profile and sampled every ``dz`` (:func:`~sr_domains.medical.slice_profile.degradation_matrix`),
   ``L`` samples each; their mean power spectrum ``S_w(k)``.
3. Cost: the variance over ``k = 1 .. L/2`` of ``log S_w(k) - log S_z(k)`` (a gain-free
   spectral-shape distance). The FWHM is scanned on a log grid from ``h`` to ``3 dz`` for each
   profile family (Gaussian, rect), refined by a parabola through the best three points, and
   the family and FWHM with the lowest cost win.

It assumes the object's texture is statistically similar along the slice axis and in-plane
(true of brain tissue to a good approximation); noise and strong anisotropy bias it. The fitted
FWHM is reported and recorded in the output's provenance.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from .slice_profile import FWHM_PER_SIGMA, ProfileKind, SliceProfile, degradation_matrix

log = logging.getLogger(__name__)

#: Samples per through-plane segment (at most the number of slices; shorter ones are tried
#: when too few segments lie inside the object).
SEGMENT = 16
#: Fewest segments of each kind the fit needs.
MIN_SEGMENTS = 50
#: Segments used on each side (a deterministic sample when there are more).
MAX_SEGMENTS = 20000


@dataclass(frozen=True)
class ProfileEstimate:
    """The fitted profile and how well each candidate matched.

    Attributes:
        profile: the best :class:`SliceProfile` (``source="estimate"``).
        cost: its spectral distance.
        scan: per family, ``(fwhm_mm, cost)`` pairs of the scan.
    """

    profile: SliceProfile
    cost: float
    scan: dict[str, list[tuple[float, float]]] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, object]:
        return {**self.profile.to_dict(), "cost": round(self.cost, 6)}


def _segments(
    lines: np.ndarray, length: int, threshold: float, rng: np.random.Generator, margin: int = 0
):
    """Non-overlapping segments of ``length`` from ``lines`` ``(N, n)`` whose values (but the
    ``margin`` at each end) all exceed ``threshold`` (inside the object), at most
    :data:`MAX_SEGMENTS`."""
    n = lines.shape[1]
    k = n // length
    if k < 1:
        return np.zeros((0, length), np.float64)
    segs = lines[:, : k * length].reshape(-1, length)
    segs = segs[segs[:, margin : length - margin].min(axis=1) > threshold]
    if len(segs) > MAX_SEGMENTS:
        segs = segs[rng.choice(len(segs), MAX_SEGMENTS, replace=False)]
    return segs.astype(np.float64)


def _log_spectrum(segs: np.ndarray) -> np.ndarray:
    """Mean log power of the Hann-windowed, mean-removed segments at ``k = 1 .. L/2``."""
    win = np.hanning(segs.shape[1] + 2)[1:-1]
    x = (segs - segs.mean(axis=1, keepdims=True)) * win
    power = np.mean(np.abs(np.fft.rfft(x, axis=1)) ** 2, axis=0)[1:]
    return np.log(power + 1e-20)


def estimate_profile(
    volume: np.ndarray,
    slice_axis: int,
    spacing: float,
    slice_spacing: float,
    *,
    kinds: tuple[ProfileKind, ...] = ("gaussian",),
    n_grid: int = 33,
    seed: int = 0,
    source: str | os.PathLike[str] | None = None,
) -> ProfileEstimate:
    """Fit the slice profile of ``volume`` (3-D, in-plane spacing ``spacing`` on both in-plane
    axes, slice spacing ``slice_spacing``; module docs).

    Raises:
        ConfigError: too few slices or too little content inside the object; the message
            starts with ``source`` (the NIfTI file or DICOM series folder) when given.
    """
    pre = f"{source}: " if source is not None else ""
    if volume.ndim != 3:
        raise ConfigError(f"{pre}expected a 3-D volume, got shape {volume.shape}")
    v = np.moveaxis(np.asarray(volume, np.float32), slice_axis, 0)  # (n, A, B)
    n = v.shape[0]
    f = slice_spacing / spacing
    lo_w, hi_w = spacing, 3.0 * slice_spacing
    margin = math.ceil(4.0 * hi_w / FWHM_PER_SIGMA / spacing) + 1
    longest = min(SEGMENT, n, int((max(v.shape[1:]) - 2 * margin) // f))
    if longest < 6:
        raise ConfigError(
            f"{pre}profile estimation needs >= 6 slices and an in-plane size of >= "
            f"{6 * f:.0f} + {2 * margin} voxels, got {v.shape[0]} slices of {v.shape[1]} x "
            f"{v.shape[2]}; pass --slice-thickness or a profile instead"
        )
    finite = v[np.isfinite(v)]
    threshold = 0.05 * float(np.percentile(finite, 99)) if finite.size else 0.0
    for length in range(longest, 5, -2):  # shorter segments fit inside smaller objects
        rng = np.random.default_rng(seed)
        through = _segments(v.reshape(n, -1).T, length, threshold, rng)
        hr_len = math.ceil(length * f) + 2 * margin
        hr = np.concatenate(
            [
                _segments(arr.reshape(-1, arr.shape[2]), hr_len, threshold, rng, margin)
                for arr in (v, np.swapaxes(v, 1, 2))  # lines along each in-plane axis
            ]
        )
        if len(through) >= MIN_SEGMENTS and len(hr) >= MIN_SEGMENTS:
            break
    if len(through) < MIN_SEGMENTS or len(hr) < MIN_SEGMENTS:
        raise ConfigError(
            f"{pre}too little content to estimate the slice profile "
            f"({len(through)} through-plane and {len(hr)} in-plane segments inside the object); "
            "pass --slice-thickness or a profile instead"
        )
    target = _log_spectrum(through)

    def cost(kind: ProfileKind, fwhm: float) -> float:
        w = degradation_matrix(
            hr_len, spacing, slice_spacing, SliceProfile(kind, fwhm), n_lr=length, offset=margin
        )
        d = _log_spectrum(hr @ w.T) - target
        return float(np.var(d))

    best: tuple[float, ProfileKind, float] | None = None
    scan: dict[str, list[tuple[float, float]]] = {}
    grid = np.geomspace(lo_w, hi_w, n_grid)
    for kind in kinds:
        costs = np.array([cost(kind, float(w)) for w in grid])
        scan[kind] = [(float(w), float(c)) for w, c in zip(grid, costs)]
        i = int(np.argmin(costs))
        fw = float(grid[i])
        if 0 < i < len(grid) - 1:  # parabola in log-FWHM through the three best points
            x = np.log(grid[i - 1 : i + 2])
            a, b, _ = np.polyfit(x, costs[i - 1 : i + 2], 2)
            if a > 0:
                fw = float(np.exp(np.clip(-b / (2 * a), x[0], x[2])))
        c = cost(kind, fw)
        if c > costs[i]:
            fw, c = float(grid[i]), float(costs[i])
        log.info("slice profile estimate: %s FWHM %.3f mm (cost %.4g)", kind, fw, c)
        if best is None or c < best[0]:
            best = (c, kind, fw)
    assert best is not None
    c, kind, fw = best
    return ProfileEstimate(SliceProfile(kind, fw, "estimate"), c, scan)


__all__ = ["ProfileEstimate", "estimate_profile"]
