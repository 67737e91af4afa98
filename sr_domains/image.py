"""Images with their geometry beside them, and the one geometry rule all writers follow.

:class:`SpatialRef` is a homogeneous affine that maps **array indices of pixel/voxel centres**
(in the array's own axis order, e.g. ``(row, col)`` or ``(i, j, k)``) to world coordinates.
Every domain converts to and from it:

* GeoTIFF transforms are corner based (pixel-is-area): ``centre_affine = T * translate(0.5, 0.5)``.
* NIfTI affines already map voxel centres.
* DICOM ``ImagePositionPatient`` is the centre of the first pixel.

Upscaling an axis by ``s`` keeps the field of view: the new centre affine is
``A @ T`` where ``T`` scales that axis by ``1/s`` and shifts it by ``(1/s - 1)/2`` (voxel-centre
rule). For a GeoTIFF this is exactly ``transform * Affine.scale(1/s)``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import GeometryError


def upscale_matrix(factors: Sequence[float]) -> np.ndarray:
    """Homogeneous ``(n+1, n+1)`` matrix mapping new (fine) centre indices to old ones.

    ``old = new / s + (1/s - 1) / 2`` per axis (``s = 1`` leaves an axis alone).
    """
    n = len(factors)
    t = np.eye(n + 1)
    for axis, s in enumerate(factors):
        if not s > 0:
            raise GeometryError(f"scale factors must be > 0, got {list(factors)}")
        t[axis, axis] = 1.0 / s
        t[axis, n] = (1.0 / s - 1.0) / 2.0
    return t


def resampled_size(n: int, factor: float) -> int:
    """Samples along an axis of ``n`` samples resampled by a real ``factor`` (``floor(n*f + 1/2)``,
    exact products within 1e-6 taken as they are).

    With :func:`upscale_matrix` the first edge of the field of view stays put, so when ``n * f``
    is not an integer the far edge moves by ``(m - n*f) / f`` old samples (at most half a new
    sample, outward when ``n*f`` was rounded up, inward when rounded down).
    """
    exact = float(n) * float(factor)
    if abs(exact - round(exact)) < 1e-6:
        return round(exact)
    return int(np.floor(exact + 0.5))


@dataclass(frozen=True)
class SpatialRef:
    """Index -> world mapping of an n-D grid (pixel/voxel centres), plus its shape and CRS.

    Attributes:
        affine: ``(n+1, n+1)`` homogeneous matrix; ``world = affine @ [i0, i1, ..., 1]``.
        shape: the grid shape in the same axis order.
        crs: coordinate reference system (WKT / "EPSG:xxxx" for rasters; "RAS" or "LPS" for
            medical data) or None when unknown.
    """

    affine: np.ndarray
    shape: tuple[int, ...]
    crs: str | None = None

    def __post_init__(self) -> None:
        a = np.asarray(self.affine, dtype=np.float64)
        n = len(self.shape)
        if a.shape != (n + 1, n + 1):
            raise GeometryError(f"affine must be {(n + 1, n + 1)} for a {n}-D grid, got {a.shape}")
        if not np.all(np.isfinite(a)):
            raise GeometryError("affine has non-finite entries")
        object.__setattr__(self, "affine", a)
        object.__setattr__(self, "shape", tuple(int(v) for v in self.shape))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def spacing(self) -> np.ndarray:
        """Length of one step along each index axis in world units."""
        return np.linalg.norm(self.affine[:-1, :-1], axis=0)

    def index_to_world(self, index: np.ndarray) -> np.ndarray:
        """Map ``(..., n)`` index coordinates (centres at integers) to world coordinates."""
        idx = np.asarray(index, dtype=np.float64)
        return idx @ self.affine[:-1, :-1].T + self.affine[:-1, -1]

    def corners(self) -> np.ndarray:
        """World coordinates of the ``2**n`` outer corners of the field of view (pixel edges,
        i.e. index ``-0.5`` and ``size - 0.5`` on each axis)."""
        grids = np.meshgrid(*[(-0.5, s - 0.5) for s in self.shape], indexing="ij")
        pts = np.stack([g.ravel() for g in grids], axis=-1)
        return self.index_to_world(pts)

    def scaled(self, factors: Sequence[float] | float) -> SpatialRef:
        """The grid upscaled by ``factors`` per axis with the same field of view."""
        f = _factors(factors, self.ndim)
        shape = tuple(round(n * s) for n, s in zip(self.shape, f))
        for n, s, m in zip(self.shape, f, shape):
            if abs(n * s - m) > 1e-6:
                raise GeometryError(f"axis of size {n} cannot be scaled by {s} to an integer size")
        return SpatialRef(self.affine @ upscale_matrix(f), shape, self.crs)

    # -- GeoTIFF ---------------------------------------------------------------------------
    @classmethod
    def from_geotransform(
        cls, transform: Sequence[float], shape: tuple[int, int], crs: str | None = None
    ) -> SpatialRef:
        """From a rasterio/affine ``(a, b, c, d, e, f)`` corner transform and ``(rows, cols)``.

        ``x = a*col + b*row + c``, ``y = d*col + e*row + f`` with (0, 0) the outer corner.
        """
        a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
        # array axes are (row, col); centre of (row, col) is corner coords (col+0.5, row+0.5)
        m = np.array(
            [
                [b, a, c + 0.5 * a + 0.5 * b],
                [e, d, f + 0.5 * d + 0.5 * e],
                [0.0, 0.0, 1.0],
            ]
        )
        return cls(m, (int(shape[0]), int(shape[1])), crs)

    def to_geotransform(self) -> tuple[float, float, float, float, float, float]:
        """Back to the corner-based ``(a, b, c, d, e, f)`` of rasterio (2-D grids only)."""
        if self.ndim != 2:
            raise GeometryError("a geotransform needs a 2-D grid")
        m = self.affine
        b, a = m[0, 0], m[0, 1]
        e, d = m[1, 0], m[1, 1]
        c = m[0, 2] - 0.5 * a - 0.5 * b
        f = m[1, 2] - 0.5 * d - 0.5 * e
        return (float(a), float(b), float(c), float(d), float(e), float(f))


def _factors(factors: Sequence[float] | float, n: int) -> tuple[float, ...]:
    if isinstance(factors, (int, float)):
        return (float(factors),) * n
    f = tuple(float(v) for v in factors)
    if len(f) != n:
        raise GeometryError(f"need {n} scale factors, got {len(f)}")
    return f


def scale_geotransform(
    transform: Iterable[float], scale: float
) -> tuple[float, float, float, float, float, float]:
    """``transform * Affine.scale(1/scale)`` for a corner-based GeoTIFF transform."""
    a, b, c, d, e, f = (float(v) for v in tuple(transform)[:6])
    return (a / scale, b / scale, c, d / scale, e / scale, f)


def scale_nifti_affine(affine: np.ndarray, factors: Sequence[float]) -> np.ndarray:
    """NIfTI voxel-centre rule: ``affine @ T`` for per-axis ``factors`` (1 = unchanged axis).

    Not ``nibabel.affines.rescale_affine``, which is off by a quarter voxel for this purpose.
    """
    a = np.asarray(affine, dtype=np.float64)
    n = a.shape[0] - 1
    f = _factors(factors, n)
    return a @ upscale_matrix(f)


def scale_dicom_plane(
    image_position: Sequence[float],
    image_orientation: Sequence[float],
    pixel_spacing: Sequence[float],
    scale: float,
) -> tuple[list[float], list[float]]:
    """New ``(ImagePositionPatient, PixelSpacing)`` of a slice upscaled in-plane by ``scale``.

    DICOM conventions: ``ImageOrientationPatient[:3]`` is the direction of increasing column
    index (along a row), ``[3:]`` of increasing row index; ``PixelSpacing = (between rows,
    between columns)``; IPP is the centre of the first transmitted pixel.
    """
    ipp = np.asarray(image_position, dtype=np.float64)
    iop = np.asarray(image_orientation, dtype=np.float64)
    row_spacing, col_spacing = (float(v) for v in pixel_spacing)
    row_dir, col_dir = iop[:3], iop[3:]
    shift = (1.0 / scale - 1.0) / 2.0
    new_ipp = ipp + shift * (col_spacing * row_dir + row_spacing * col_dir)
    return [float(v) for v in new_ipp], [row_spacing / scale, col_spacing / scale]


@dataclass
class Image:
    """Pixels plus everything needed to write them back.

    Attributes:
        data: ``(C, *spatial)`` array (bands / channels first).
        spatial: geometry of the spatial axes, or None.
        meta: domain metadata to carry to the writer (tags, header fields, ...).
        valid_mask: boolean ``(*spatial)`` or ``(C, *spatial)`` array, True = valid, or None.
    """

    data: np.ndarray
    spatial: SpatialRef | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    valid_mask: np.ndarray | None = None


__all__ = [
    "Image",
    "SpatialRef",
    "resampled_size",
    "scale_dicom_plane",
    "scale_geotransform",
    "scale_nifti_affine",
    "upscale_matrix",
]
