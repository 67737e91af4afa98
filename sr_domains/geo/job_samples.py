"""The window one GeoTIFF job (:mod:`sr_domains.geo.job`) reads from the middle of the file,
once: for the class-code check, the noise gate and ``--adapt``."""

from __future__ import annotations

import numpy as np

from ..intensity import IntensityProfile
from ..nodata_fill import fill_invalid
from ..noise_gate import CENTRAL_WINDOW, central_box, gate_sample
from .reader import RasterSource

#: Largest window (LR pixels per side) read from a raster to adapt the model on.
ADAPT_WINDOW = CENTRAL_WINDOW


def central_window(rs: RasterSource) -> tuple[np.ndarray, np.ndarray]:
    """``(values, valid)`` of the raster's central :data:`ADAPT_WINDOW` square (the whole
    raster when smaller): read once per file for the class-code check, the noise gate and
    ``--adapt``."""
    top, left, th, tw = central_box(*rs.shape, ADAPT_WINDOW)
    values, valid = rs.read_window(top, left, th, tw)
    return values, np.broadcast_to(np.asarray(valid, bool), values.shape)


def noise_sample(
    rs: RasterSource, fitted: IntensityProfile, window: tuple[np.ndarray, np.ndarray] | None = None
) -> np.ndarray:
    """The central window (:func:`central_window`) normalized, invalid pixels NaN: what the
    noise gate (:mod:`sr_domains.noise_gate`) estimates the noise on."""
    values, valid = window if window is not None else central_window(rs)
    return gate_sample(values, valid, fitted)


def adaptation_sample(
    rs: RasterSource,
    fitted: IntensityProfile,
    fill: np.ndarray,
    order: list[int] | None,
    window: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """A normalized ``(C, h, w)`` window of the raster to adapt the model on: the central
    window (:func:`central_window`), invalid pixels filled as the network will see them
    (:mod:`sr_domains.nodata_fill`, far value ``fill``), bands in the order the model takes
    them."""
    values, valid = window if window is not None else central_window(rs)
    x = fitted.normalize(values).astype(np.float32)
    ok = valid & np.isfinite(x)
    x = fill_invalid(x, ~ok, fill) if not ok.all() else x
    return x[order] if order is not None else x


__all__ = ["ADAPT_WINDOW", "adaptation_sample", "central_window", "noise_sample"]
