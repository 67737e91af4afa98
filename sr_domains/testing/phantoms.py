"""Smooth phantoms and oblique geometry shared by the generated NIfTI volumes and DICOM series
(:mod:`sr_domains.testing.medical`, :mod:`sr_domains.testing.dicom`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

ValuesFn = Callable[[np.ndarray], np.ndarray]
"""``values(world)``: world coordinates ``(..., 3)`` (mm) -> voxel values ``(...)``."""


def rotation(degrees: Sequence[float] = (20.0, -15.0, 10.0)) -> np.ndarray:
    """Rotation matrix ``Rz @ Ry @ Rx`` for angles in degrees (x, y, z)."""
    ax, ay, az = np.radians(np.asarray(degrees, np.float64))
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


def ellipsoid_phantom(centre: np.ndarray, radii: np.ndarray, peak: float = 1000.0) -> ValuesFn:
    """Smooth head-like phantom: a bright soft ellipsoid with a darker inner one and a ramp."""
    c = np.asarray(centre, np.float64)
    r = np.asarray(radii, np.float64)

    def values(world: np.ndarray) -> np.ndarray:
        d = (world - c) / r
        r2 = np.sum(d * d, axis=-1)
        outer = 1.0 / (1.0 + np.exp((np.sqrt(r2) - 1.0) * 12.0))
        inner = np.exp(-np.sum(((world - c - 0.2 * r) / (0.35 * r)) ** 2, axis=-1))
        ramp = 0.1 * (1.0 + d[..., 0])
        return peak * (outer * (0.7 + ramp) - 0.3 * inner * outer)

    return values


def grid_world(affine: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    idx = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    return idx @ affine[:3, :3].T + affine[:3, 3]


def oblique_affine(
    spacing: Sequence[float] = (1.0, 1.25, 3.0),
    degrees: Sequence[float] = (20.0, -15.0, 10.0),
    origin: Sequence[float] = (-12.5, 30.0, -7.0),
) -> np.ndarray:
    """A 4x4 voxel-centre affine with rotated, anisotropic axes."""
    a = np.eye(4)
    a[:3, :3] = rotation(degrees) * np.asarray(spacing, np.float64)
    a[:3, 3] = origin
    return a


__all__ = ["ValuesFn", "ellipsoid_phantom", "grid_world", "oblique_affine", "rotation"]
