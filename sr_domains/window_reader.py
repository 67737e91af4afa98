"""The LR windows :meth:`sr_domains.inference.Upscaler.stream` feeds the network: read in stored
units, normalized by the intensity profile, invalid pixels filled from the valid ones around
them (:mod:`sr_domains.nodata_fill`), padded up to the tile; windows with no valid pixel, or no
blend weight in the requested HR rows, skipped."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .intensity import IntensityProfile, work_dtype
from .nodata_fill import read_filled
from .tiling import TilePlan

RawReadFn = Callable[[int, int, int, int], "tuple[np.ndarray, np.ndarray | None]"]
"""``read(y0, x0, h, w) -> (values (C, h, w), valid (h, w) | (C, h, w) | None)`` inside the
image bounds, in stored units (any dtype)."""


class WindowReader:
    """The ``read`` (calling it) and ``skip`` callbacks of :func:`~sr_domains.tiling.stream_tiles`
    over an image of ``shape`` read through ``read`` (module docs).

    ``fill``: normalized units, per band, where no valid pixel is near; ``rows = (r0, r1)``:
    the HR rows wanted (windows with no blend weight there are skipped). :attr:`dtype` is the
    dtype of the output blocks, from the values read (:func:`~sr_domains.intensity.work_dtype`).
    """

    def __init__(
        self,
        read: RawReadFn,
        plan: TilePlan,
        shape: tuple[int, int],
        n_bands: int,
        profile: IntensityProfile,
        fill: float | Sequence[float] | np.ndarray,
        rows: tuple[int, int] | None = None,
    ) -> None:
        self.raw = read
        self.shape = shape
        self.n_bands = n_bands
        self.profile = profile
        self.fill = np.broadcast_to(np.asarray(fill, np.float32), (n_bands,)).reshape(-1, 1, 1)
        self.rows = rows
        self.dtype = np.dtype(np.float32)
        self._cache: dict[tuple[int, int], np.ndarray | None] = {}
        # a window row adds nothing outside the rows where its blend weight is non-zero
        self._reach = dict(zip(plan.ys, plan.row_reach())) if rows is not None else {}

    def load(self, y0: int, x0: int, th: int, tw: int) -> np.ndarray | None:
        """The normalized, filled, padded window; None when it has no valid pixel."""
        h, w = self.shape
        ry, rx = min(th, h - y0), min(tw, w - x0)
        values, valid = self.raw(y0, x0, ry, rx)
        if values.shape != (want := (self.n_bands, ry, rx)):
            raise RuntimeError(f"reader returned {values.shape}, expected {want}")
        self.dtype = work_dtype(values.dtype)
        x = self.profile.normalize(values)
        bad = ~np.isfinite(x)
        if valid is not None:
            bad |= ~np.broadcast_to(np.asarray(valid, bool), x.shape)
        if bad.all():
            return None
        if bad.any():
            x = read_filled(self.raw, self.profile, (y0, x0, ry, rx), (h, w), self.fill)
        if (ry, rx) != (th, tw):  # pad up to the size multiple
            x = np.pad(x, ((0, 0), (0, th - ry), (0, tw - rx)), mode="edge")
        return x

    def skip(self, y0: int, x0: int, th: int, tw: int) -> bool:
        """Whether the window adds nothing (loads it and keeps it for :meth:`__call__`)."""
        rows, reach = self.rows, self._reach
        if rows is not None and not (reach[y0][0] < rows[1] and rows[0] < reach[y0][1]):
            return True  # no weight in the requested rows
        x = self.load(y0, x0, th, tw)
        self._cache[(y0, x0)] = x
        return x is None

    def __call__(self, y0: int, x0: int, th: int, tw: int) -> np.ndarray:
        x = self._cache.pop((y0, x0), None)
        return x if x is not None else self.load(y0, x0, th, tw)  # type: ignore[return-value]


def valid_mean(
    array: np.ndarray, profile: IntensityProfile, valid_mask: np.ndarray | None
) -> np.ndarray:
    """Per-band mean of valid pixels in normalized units (0 for an all-invalid band)."""
    x = profile.normalize(array)
    ok = np.isfinite(x)
    if valid_mask is not None:
        ok &= np.broadcast_to(np.asarray(valid_mask, bool), x.shape)
    sums = np.where(ok, x, 0).sum(axis=(1, 2), dtype=np.float64)
    counts = ok.sum(axis=(1, 2))
    return np.where(counts > 0, sums / np.maximum(counts, 1), 0.0).astype(np.float32)


__all__ = ["RawReadFn", "WindowReader", "valid_mean"]
