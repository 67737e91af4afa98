"""Where a square patch may start in a source, and uniform draws among those places.

For every plane the *acceptable* top-left positions are those whose patch has at most
``max_invalid_fraction`` invalid pixels, found exactly with a summed-area table over the
validity map. Rasters read in windows only have a subsampled validity grid (every f-th pixel);
their positions are found on that grid with a one-cell safety margin and each read is checked
exactly by the caller (bounded re-draws), so the rule never depends on the approximation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .sources import ArrayCache, Source


def window_sums(invalid: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """Sum of ``invalid`` over every ``ph x pw`` window: ``(h - ph + 1, w - pw + 1)``."""
    h, w = invalid.shape
    dt = np.int32 if h * w < 2**31 else np.int64
    s = np.zeros((h + 1, w + 1), dt)
    np.cumsum(np.cumsum(invalid, axis=0, dtype=dt), axis=1, out=s[1:, 1:])
    return s[ph:, pw:] - s[:-ph, pw:] - s[ph:, :-pw] + s[:-ph, :-pw]


@dataclass
class PositionTable:
    """Acceptable patch positions of one source (see module docs).

    Attributes:
        patch: patch size P. limit: ``(H - P, W - P)``, the largest top-left.
        counts: acceptable positions per plane. ok: flat indices into the grid of top-lefts for
            planes where only some are acceptable. grid_w: that grid's width.
        step: full-resolution pixels per grid cell ``(fy, fx)``; ``(1, 1)`` is exact.
    """

    patch: int
    limit: tuple[int, int]
    counts: np.ndarray
    grid_w: int
    step: tuple[float, float] = (1.0, 1.0)
    ok: dict[int, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._cum = np.cumsum(self.counts)

    @property
    def total(self) -> int:
        return int(self._cum[-1]) if self._cum.size else 0

    @property
    def exact(self) -> bool:
        return self.step == (1.0, 1.0)

    def draw(self, rng: np.random.Generator) -> tuple[int, int, int]:
        """``(plane, y, x)`` uniformly among the acceptable positions."""
        r = int(rng.integers(self.total))
        plane = int(np.searchsorted(self._cum, r, side="right"))
        local = r - (int(self._cum[plane - 1]) if plane else 0)
        pos = int(self.ok[plane][local]) if plane in self.ok else local
        i, j = divmod(pos, self.grid_w)
        if self.exact:
            return plane, i, j
        fy, fx = self.step
        y = math.floor(i * fy) + int(rng.integers(max(1, math.floor(fy))))
        x = math.floor(j * fx) + int(rng.integers(max(1, math.floor(fx))))
        return plane, min(y, self.limit[0]), min(x, self.limit[1])


def build_table(
    source: Source, patch: int, max_invalid_fraction: float, cache: ArrayCache
) -> PositionTable | str:
    """The source's :class:`PositionTable`, or the reason it has no acceptable position."""
    h, w = source.shape
    if h < patch or w < patch:
        return f"smaller ({w}x{h}) than the {patch}x{patch} patch"
    full_h, full_w = h - patch + 1, w - patch + 1
    counts = np.zeros(source.n_planes, np.int64)
    ok: dict[int, np.ndarray] = {}
    grid_w, step = full_w, (1.0, 1.0)
    for plane in range(source.n_planes):
        grid, fy, fx = source.grid(plane, cache)
        if grid is None:
            counts[plane] = full_h * full_w
            continue
        if (fy, fx) == (1.0, 1.0):
            ph, pw = patch, patch
        else:  # subsampled grid: one extra cell of margin on each axis
            ph, pw = math.ceil(patch / fy) + 1, math.ceil(patch / fx) + 1
            step = (fy, fx)
        if grid.shape[0] < ph or grid.shape[1] < pw:
            continue
        sums = window_sums(~grid, ph, pw)
        grid_w = sums.shape[1]
        good = np.flatnonzero(sums <= math.floor(max_invalid_fraction * ph * pw + 1e-9))
        counts[plane] = good.size
        if 0 < good.size < sums.size:
            ok[plane] = good.astype(np.int32 if sums.size < 2**31 else np.int64)
    if counts.sum() == 0:
        return (
            f"no {patch}x{patch} patch with at most {max_invalid_fraction:.0%} invalid pixels "
            f"({100 * (1 - source.valid_fraction):.0f}% of the file is invalid)"
        )
    return PositionTable(patch, (h - patch, w - patch), counts, grid_w, step, ok)


__all__ = ["PositionTable", "build_table", "window_sums"]
