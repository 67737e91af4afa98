"""One pass of statistics over a NIfTI volume, plane by plane (bounded memory).

:meth:`~sr_domains.medical.nifti_io.NiftiSource.scan` feeds every plane to a :class:`ScanPass`:
exact min/max and counts of the finite values, and a deterministic strided sample of at most
:data:`SAMPLE_VALUES` values for percentile profiles and value checks. The result is a
:class:`Scan`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..value_facts import ZeroFacts, robust_magnitude

#: Values kept for fitting percentile profiles (a deterministic strided sample beyond it).
SAMPLE_VALUES = 8 * 2**20


@dataclass
class Scan:
    """One pass over a volume: exact statistics of the finite voxels and a bounded sample."""

    sample: np.ndarray  # float32, finite and non-finite values as read (<= SAMPLE_VALUES)
    vmin: float
    vmax: float
    n_finite: int
    n_nonfinite: int
    n_zero: int
    min_abs: float = float("inf")  # smallest magnitude of the finite values
    #: :func:`~sr_domains.value_facts.robust_magnitude` of the sample, when it was taken during
    #: the pass and the sample dropped (per-volume scans: :meth:`.NiftiSource.scan_volumes`)
    magnitude: float | None = None

    def zero_facts(self, floating: bool) -> ZeroFacts:
        """Zero background and tolerance (:class:`~sr_domains.value_facts.ZeroFacts`);
        ``floating``: float storage (integer storage is exact)."""
        top = max(abs(self.vmin), abs(self.vmax)) if np.isfinite(self.vmin) else None
        mag = self.magnitude
        if floating and mag is None:
            mag = robust_magnitude(self.sample, top)
        return ZeroFacts.from_stats(self.vmin, self.vmax, self.min_abs, floating, mag)


class ScanPass:
    """Running statistics of one pass over ``total`` voxels, plane by plane: exact min/max and
    counts of the finite values, and a deterministic strided sample of at most ``max_sample``
    values (every voxel when there are that few). Planes are counted from this pass's own
    first one, so a volume's statistics are those of the volume saved alone."""

    def __init__(self, total: int, max_sample: int) -> None:
        self.total, self.step, self.k = total, max(1, -(-total // max_sample)), 0
        self.parts: list[np.ndarray] = []
        self.vmin, self.vmax, self.min_abs = np.inf, -np.inf, np.inf
        self.n_fin = self.n_zero = 0

    def add(self, flat: np.ndarray, stats: tuple[int, float, float, int, float] | None) -> None:
        """One plane (``flat``, in file order) and its :func:`plane_stats`."""
        step = self.step
        self.parts.append(flat[(self.k * 7) % step :: step] if step > 1 else flat.copy())
        self.k += 1
        if stats is not None:
            nf, lo, hi, nz, ma = stats
            self.n_fin += nf
            self.vmin, self.vmax = min(self.vmin, lo), max(self.vmax, hi)
            self.n_zero += nz
            self.min_abs = min(self.min_abs, ma)

    def scan(self, keep_sample: bool = True, floating: bool = True) -> Scan:
        """The :class:`Scan`; without ``keep_sample`` the sample's magnitude is taken now
        (``floating`` storage only: integer storage has exact zeros and never asks) and the
        sample dropped (memory stays bounded over many volumes)."""
        sample = np.concatenate(self.parts) if self.parts else np.zeros(0, np.float32)
        lo, hi, nf = float(self.vmin), float(self.vmax), self.n_fin
        done = Scan(sample, lo, hi, nf, self.total - nf, self.n_zero, float(self.min_abs))
        if not keep_sample:
            if floating:
                done.magnitude = robust_magnitude(sample, max(-lo, hi) if nf else None)
            done.sample = np.zeros(0, np.float32)
        return done


def plane_stats(flat: np.ndarray) -> tuple[int, float, float, int, float] | None:
    """``(finite count, min, max, zero count, smallest magnitude)`` of the finite values of a
    plane, or None when it has none."""
    fin = np.isfinite(flat)
    nf = int(fin.sum())
    if not nf:
        return None
    vals = flat[fin] if nf < flat.size else flat
    lo, hi = float(vals.min()), float(vals.max())
    return nf, lo, hi, int(np.count_nonzero(vals == 0)), float(np.abs(vals).min())


__all__ = ["SAMPLE_VALUES", "Scan", "ScanPass", "plane_stats"]
