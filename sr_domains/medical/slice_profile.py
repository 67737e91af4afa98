"""Slice profiles and the thick-slice degradation they define (numpy/torch only).

A 2-D multi-slice acquisition measures, for slice ``j`` centred at ``z_j``, the object weighted by
the slice profile ``p`` (the slice sensitivity along the normal, integral 1):
``LR_j = ∫ p(z - z_j) x(z) dz``. On a fine grid of spacing ``h`` whose samples are themselves
averages over ``[z_i - h/2, z_i + h/2]`` this is, with ``P`` the cumulative profile
(``P(z) = ∫_{-∞}^{z} p``):

.. code-block:: text

    LR_j = Σ_i w_ji HR_i / Σ_i w_ji,   w_ji = P((i - c_j + 1/2) h) - P((i - c_j - 1/2) h)
    c_j  = offset + (j + 1/2) f - 1/2          (centre of LR sample j in fine-grid indices)
    f    = spacing / h                          (LR samples are ``spacing`` apart: any real f)

``c_j`` is the voxel-centre rule of :mod:`sr_domains.medical.geometry` run backwards: the first
edge of LR sample 0 coincides with the first edge of fine sample 0 (plus ``offset``). The sum
runs over the fine samples that exist, so near the ends the weights are renormalized.

Profiles (FWHM = the slice thickness ``T``):

* ``gaussian``: ``P(z) = Φ(z / σ)``, ``σ = T / (2 sqrt(2 ln 2))``.
* ``rect``: ``P(z) = clip(z / T + 1/2, 0, 1)`` (an ideal slab of thickness ``T``).
* ``table``: a user profile sampled at offsets (mm) with relative weights, linear between
  samples and 0 outside; normalized to integral 1 (:func:`load_profile`).

Slice gaps (``T < spacing``) and overlaps (``T > spacing``) are both just ``T != spacing``.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from ..errors import ConfigError, InputFileError

log = logging.getLogger(__name__)

ProfileKind = Literal["gaussian", "rect", "table"]
#: FWHM of a Gaussian in units of its sigma.
FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class SliceProfile:
    """A slice sensitivity profile along the slice normal.

    Attributes:
        kind: ``"gaussian"``, ``"rect"`` or ``"table"``.
        fwhm: full width at half maximum in mm (the slice thickness for gaussian/rect).
        source: where it came from (``"header"``, ``"user"``, ``"estimate"``, ``"file"``...).
        offsets, weights: the sampled profile of a ``table`` (mm, relative weights).
    """

    kind: ProfileKind
    fwhm: float
    source: str = "user"
    offsets: tuple[float, ...] = field(default=(), repr=False)
    weights: tuple[float, ...] = field(default=(), repr=False)

    def __post_init__(self) -> None:
        if self.kind not in ("gaussian", "rect", "table"):
            raise ConfigError(f"slice profile must be gaussian, rect or a file, got {self.kind!r}")
        if not (math.isfinite(self.fwhm) and self.fwhm > 0):
            raise ConfigError(f"slice profile FWHM must be > 0 mm, got {self.fwhm}")
        if self.kind == "table" and len(self.offsets) < 2:
            raise ConfigError("a tabulated slice profile needs at least two samples")

    @property
    def support(self) -> float:
        """Half-width (mm) beyond which the profile is negligible (zero for rect/table)."""
        if self.kind == "gaussian":
            return 4.0 * self.fwhm / FWHM_PER_SIGMA
        if self.kind == "rect":
            return self.fwhm / 2.0
        return float(max(abs(self.offsets[0]), abs(self.offsets[-1])))

    def cdf(self, z: np.ndarray) -> np.ndarray:
        """``P(z)``: the integral of the (unit-area) profile up to ``z`` mm."""
        z = np.asarray(z, np.float64)
        if self.kind == "gaussian":
            sigma = self.fwhm / FWHM_PER_SIGMA
            t = torch.from_numpy(z / (sigma * math.sqrt(2.0)))
            return 0.5 * (1.0 + torch.special.erf(t).numpy())
        if self.kind == "rect":
            return np.clip(z / self.fwhm + 0.5, 0.0, 1.0)
        grid, cum = _table_cdf(self.offsets, self.weights)
        return np.interp(z, grid, cum, left=0.0, right=1.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly description (provenance)."""
        out: dict[str, Any] = {"kind": self.kind, "fwhm_mm": round(self.fwhm, 6)}
        out["source"] = self.source
        if self.kind == "table":
            out["samples"] = len(self.offsets)
        return out

    def describe(self) -> str:
        """``gaussian FWHM 4.5 mm (header)``."""
        return f"{self.kind} FWHM {self.fwhm:.4g} mm ({self.source})"


def _table_cdf(offsets: tuple[float, ...], weights: tuple[float, ...]) -> tuple[np.ndarray, ...]:
    """CDF of the piecewise-linear table on a fine grid (normalized to end at 1)."""
    o, w = np.asarray(offsets, np.float64), np.asarray(weights, np.float64)
    # the CDF is piecewise quadratic; a fine trapezoid grid makes its linear interpolation
    # exact to well below 1e-6 for any sensible table
    fine = np.linspace(o[0], o[-1], max(4097, 64 * len(o)))
    pdf = np.interp(fine, o, w)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (pdf[1:] + pdf[:-1]) * np.diff(fine))])
    return fine, cum / cum[-1]


def table_profile(offsets: Any, weights: Any, source: str = "file") -> SliceProfile:
    """A ``table`` profile from sampled offsets (mm, increasing) and weights (>= 0)."""
    o = np.asarray(offsets, np.float64).ravel()
    w = np.asarray(weights, np.float64).ravel()
    if o.size != w.size or o.size < 2:
        raise ConfigError("a slice profile table needs >= 2 (offset, weight) pairs")
    if not (np.all(np.isfinite(o)) and np.all(np.isfinite(w))):
        raise ConfigError("slice profile table has non-finite values")
    if np.any(np.diff(o) <= 0):
        raise ConfigError("slice profile offsets must be strictly increasing (mm)")
    if np.any(w < 0) or not w.max() > 0:
        raise ConfigError("slice profile weights must be >= 0 and not all zero")
    return SliceProfile("table", table_fwhm(o, w), source, tuple(o.tolist()), tuple(w.tolist()))


def table_fwhm(offsets: np.ndarray, weights: np.ndarray) -> float:
    """FWHM of a sampled profile (linear interpolation of the half-maximum crossings)."""
    o, w = np.asarray(offsets, np.float64), np.asarray(weights, np.float64)
    half = w.max() / 2.0
    above = np.nonzero(w >= half)[0]
    i, k = int(above[0]), int(above[-1])

    def cross(a: int, b: int) -> float:  # between sample a (below) and b (above)
        if w[b] == w[a]:
            return float(o[b])
        return float(o[a] + (half - w[a]) * (o[b] - o[a]) / (w[b] - w[a]))

    left = cross(i - 1, i) if i > 0 else float(o[0])
    right = cross(k + 1, k) if k + 1 < len(o) else float(o[-1])
    return max(right - left, 1e-6)


def load_profile(path: str | os.PathLike[str]) -> SliceProfile:
    """Read a slice profile file: ``.npy`` of shape ``(N, 2)`` or a text file of two columns
    (offset from the slice centre in mm, relative weight), whitespace or comma separated,
    ``#`` comments allowed."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "slice profile file not found")
    try:
        if p.suffix.lower() == ".npy":
            arr = np.load(p, allow_pickle=False)
        else:
            text = p.read_text(encoding="utf-8").replace(",", " ")
            rows = [ln.split("#")[0].split() for ln in text.splitlines()]
            arr = np.array([[float(v) for v in r] for r in rows if r], np.float64)
    except (OSError, ValueError) as exc:
        raise InputFileError(p, f"not a readable slice profile ({exc})") from exc
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputFileError(
            p, f"a slice profile has two columns (offset mm, weight), got shape {arr.shape}"
        )
    try:
        return table_profile(arr[:, 0], arr[:, 1], source=f"file {p.name}")
    except ConfigError as exc:
        raise InputFileError(p, str(exc)) from exc


def lr_centres(n_lr: int, factor: float, offset: float = 0.0) -> np.ndarray:
    """Centres ``c_j = offset + (j + 1/2) f - 1/2`` of LR samples in fine-grid indices."""
    return offset + (np.arange(n_lr, dtype=np.float64) + 0.5) * float(factor) - 0.5


def degradation_matrix(
    n_hr: int,
    hr_spacing: float,
    lr_spacing: float,
    profile: SliceProfile,
    *,
    n_lr: int | None = None,
    offset: float = 0.0,
) -> np.ndarray:
    """The ``(n_lr, n_hr)`` matrix ``W`` of the module formula (rows sum to 1).

    Args:
        n_hr: fine samples along the axis.
        hr_spacing, lr_spacing: fine spacing ``h`` and slice spacing (mm).
        profile: the slice profile.
        n_lr: LR samples (default: those whose centre lies on the fine grid,
            ``floor((n_hr - offset) / f)``).
        offset: shift of LR sample 0's first edge, in fine samples.
    """
    f = float(lr_spacing) / float(hr_spacing)
    if not f > 0:
        raise ConfigError(f"spacings must be > 0, got {hr_spacing} and {lr_spacing}")
    if n_lr is None:
        n_lr = math.floor((n_hr - offset) / f + 1e-9)
    c = lr_centres(n_lr, f, offset)
    i = np.arange(n_hr, dtype=np.float64)
    d = (i[None, :] - c[:, None]) * float(hr_spacing)
    h = float(hr_spacing)
    w = profile.cdf(d + h / 2.0) - profile.cdf(d - h / 2.0)
    w[w < 1e-12] = 0.0
    s = w.sum(axis=1, keepdims=True)
    if np.any(s <= 0):
        raise ConfigError("an LR sample falls outside the fine grid (no weight)")
    return w / s


def apply_along(x: torch.Tensor, matrix: torch.Tensor, dim: int) -> torch.Tensor:
    """``y[..., j, ...] = Σ_i matrix[j, i] x[..., i, ...]`` along ``dim`` (a 1-D linear map)."""
    moved = x.movedim(dim, -1)
    return (moved @ matrix.T.to(moved.dtype)).movedim(-1, dim)


#: Profile names whose width is the slice thickness (FWHM): the header's is read for them.
WIDTH_KINDS = ("gaussian", "rect", "box")


def profile_from_spec(
    spec: str | SliceProfile | None,
    *,
    spacing: float,
    thickness: float | None,
    thickness_source: str = "header",
) -> SliceProfile | None:
    """The profile a user asked for; None for ``"estimate"`` (fitted later from the data).

    ``spec``: ``"gaussian"`` (default) or ``"rect"`` with FWHM = ``thickness`` (from the user,
    the header, or the slice spacing when neither is known); ``"estimate"``; a file path
    (:func:`load_profile`); or a :class:`SliceProfile`.
    """
    if isinstance(spec, SliceProfile):
        return spec
    name = (spec or "gaussian").strip()
    if name.lower() == "estimate":
        return None
    if name.lower() in WIDTH_KINDS:
        kind: ProfileKind = "rect" if name.lower() in ("rect", "box") else "gaussian"
        if thickness is None:
            return SliceProfile(kind, float(spacing), "slice spacing (no thickness known)")
        return SliceProfile(kind, float(thickness), thickness_source)
    if Path(name).suffix.lower() in (".txt", ".csv", ".tsv", ".npy", ".dat", ".prof"):
        return load_profile(name)
    if Path(name).exists():
        return load_profile(name)
    raise ConfigError(
        f"slice profile must be gaussian, rect, estimate or a profile file, got {spec!r}"
    )


__all__ = [
    "FWHM_PER_SIGMA",
    "SliceProfile",
    "apply_along",
    "degradation_matrix",
    "load_profile",
    "lr_centres",
    "profile_from_spec",
    "table_fwhm",
    "table_profile",
]
