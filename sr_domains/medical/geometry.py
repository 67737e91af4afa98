"""Pure geometry helpers for volumes (numpy only; reused by the NIfTI, DICOM and MONAI code).

Conventions: a volume's affine maps array indices of **voxel centres** to world millimetres
(NIfTI: RAS+, DICOM: LPS). Upscaling axes by ``s`` follows the voxel-centre rule of
:func:`sr_domains.image.scale_nifti_affine`, so the outer corners of the field of view stay put.

Real (non-integer) factors follow the same rule: an axis of ``n`` voxels resampled by ``f``
gets ``m = floor(n*f + 1/2)`` voxels (:func:`~sr_domains.image.resampled_size`), the first edge
of the field of view stays put and the far edge moves by ``(m - n*f) / f`` old voxels (never
more than half a new voxel); :func:`sr_domains.medical.plan_isotropic` builds such grids.

A DICOM series is held as a ``(slice, row, column)`` array; :func:`dicom_affine` maps those
indices to LPS, built from ImagePositionPatient (centre of the first pixel of the first slice),
ImageOrientationPatient (row direction ``iop[:3]`` = increasing column index, column direction
``iop[3:]`` = increasing row index), PixelSpacing ``(between rows, between columns)`` and the
step between consecutive slices.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError, GeometryError
from ..image import resampled_size, scale_nifti_affine

#: Spacings closer than this (mm) count as equal when choosing the in-plane axes.
SPACING_TIE_MM = 1e-4


def default_axes(
    spacing: Sequence[float] | np.ndarray, shape: Sequence[int] | None = None
) -> tuple[int, int]:
    """The in-plane axes for slice-wise SR: the two spatial axes with the finest spacing.

    Ties go to array order. Axes with a single voxel are only chosen when unavoidable.

    Args:
        spacing: voxel size of the three spatial axes.
        shape: their sizes (optional; used to avoid singleton axes).
    """
    sp = [float(v) for v in spacing[:3]]
    if len(sp) != 3:
        raise GeometryError(f"need the spacing of 3 spatial axes, got {list(spacing)}")

    def key(a: int) -> tuple[bool, float, int]:
        single = shape is not None and int(shape[a]) <= 1
        return (single, round(sp[a] / SPACING_TIE_MM), a)

    a, b = sorted(sorted(range(3), key=key)[:2])
    return (a, b)


def check_axes(axes: Sequence[int]) -> tuple[int, int]:
    """Validate an in-plane axis pair of a 3-D volume; returns it sorted."""
    try:
        a, b = (int(v) for v in axes)
    except (TypeError, ValueError):
        raise ConfigError(f"axes must be two spatial axes like (0, 1), got {axes!r}") from None
    if a == b or not (0 <= a <= 2 and 0 <= b <= 2):
        raise ConfigError(f"axes must be two different spatial axes in 0..2, got {axes!r}")
    return (min(a, b), max(a, b))


def slice_axis(axes: Sequence[int]) -> int:
    """The spatial axis orthogonal to the in-plane pair."""
    (k,) = {0, 1, 2} - set(check_axes(axes))
    return k


def scale_factors(
    axes: Sequence[int], scale: float, through_plane: bool = False
) -> tuple[float, ...]:
    """Per-axis factors of the three spatial axes (1 = unchanged)."""
    ax = check_axes(axes)
    return tuple(float(scale) if (a in ax or through_plane) else 1.0 for a in range(3))


def upscaled_affine(
    affine: np.ndarray, axes: Sequence[int], scale: float, through_plane: bool = False
) -> np.ndarray:
    """``affine @ T`` (voxel-centre rule) for a 3-D volume upscaled on ``axes`` (and the slice
    axis when ``through_plane``)."""
    a = np.asarray(affine, dtype=np.float64)
    if a.shape != (4, 4):
        raise GeometryError(f"expected a 4x4 affine, got {a.shape}")
    return scale_nifti_affine(a, scale_factors(axes, scale, through_plane))


def voxel_sizes(affine: np.ndarray) -> np.ndarray:
    """Length of one index step along each axis (world units)."""
    a = np.asarray(affine, dtype=np.float64)
    return np.linalg.norm(a[:-1, :-1], axis=0)


def corners(affine: np.ndarray, shape: Sequence[int]) -> np.ndarray:
    """World coordinates of the ``2**n`` outer corners (voxel edges) of a grid."""
    from ..image import SpatialRef

    return SpatialRef(np.asarray(affine, np.float64), tuple(shape)).corners()


def axis_codes(affine: np.ndarray, space: str = "RAS") -> str:
    """Nearest world direction of each voxel axis, e.g. ``"LPS"`` (letters of ``space`` for the
    positive directions, the opposite letters for negative ones)."""
    pos = space.upper()
    neg = {"R": "L", "L": "R", "A": "P", "P": "A", "S": "I", "I": "S"}
    m = np.asarray(affine, np.float64)[:3, :3]
    out = []
    for col in m.T:
        w = int(np.argmax(np.abs(col)))
        out.append(pos[w] if col[w] >= 0 else neg[pos[w]])
    return "".join(out)


def plane_name(slice_code: str) -> str:
    """``"axial"``, ``"coronal"`` or ``"sagittal"`` for the axis code of the slice axis."""
    return {"L": "sagittal", "R": "sagittal", "A": "coronal", "P": "coronal"}.get(
        slice_code.upper(), "axial"
    )


def obliquity_deg(affine: np.ndarray) -> float:
    """Largest angle (degrees) between a voxel axis and its nearest world axis (0 = not
    oblique)."""
    m = np.asarray(affine, np.float64)[:3, :3]
    norms = np.linalg.norm(m, axis=0)
    norms[norms == 0] = 1.0
    cos = np.max(np.abs(m / norms), axis=0)
    return float(np.degrees(np.arccos(np.clip(cos.min(), -1.0, 1.0))))


def slice_normal(iop: Sequence[float] | np.ndarray) -> np.ndarray:
    """Unit normal ``cross(row_dir, col_dir)`` of an ImageOrientationPatient."""
    v = np.asarray(iop, dtype=np.float64)
    n = np.cross(v[:3], v[3:])
    norm = np.linalg.norm(n)
    if v.shape != (6,) or norm < 1e-6:
        raise GeometryError(f"invalid ImageOrientationPatient {[float(x) for x in v.ravel()]}")
    return n / norm


def dicom_affine(
    first_position: Sequence[float] | np.ndarray,
    iop: Sequence[float] | np.ndarray,
    pixel_spacing: Sequence[float] | np.ndarray,
    slice_step: Sequence[float] | np.ndarray | float,
) -> np.ndarray:
    """LPS affine of a ``(slice, row, column)`` DICOM volume.

    Args:
        first_position: ImagePositionPatient of the first slice (centre of its first pixel).
        iop: ImageOrientationPatient (6 direction cosines).
        pixel_spacing: PixelSpacing ``(between rows, between columns)``.
        slice_step: vector from one slice's IPP to the next (handles gantry tilt), or a signed
            distance along the slice normal.
    """
    v = np.asarray(iop, dtype=np.float64)
    row_dir, col_dir = v[:3], v[3:]
    dr, dc = (float(x) for x in pixel_spacing)
    step = np.asarray(slice_step, dtype=np.float64)
    if step.ndim == 0:
        step = float(step) * slice_normal(v)
    a = np.eye(4)
    a[:3, 0] = step
    a[:3, 1] = dr * col_dir
    a[:3, 2] = dc * row_dir
    a[:3, 3] = np.asarray(first_position, dtype=np.float64)
    return a


def dicom_plane(affine: np.ndarray) -> tuple[list[float], list[float]]:
    """``(ImageOrientationPatient, PixelSpacing)`` of a ``(slice, row, column)`` LPS affine."""
    a = np.asarray(affine, np.float64)
    dr, dc = np.linalg.norm(a[:3, 1]), np.linalg.norm(a[:3, 2])
    iop = [*(a[:3, 2] / dc), *(a[:3, 1] / dr)]
    return [float(x) for x in iop], [float(dr), float(dc)]


def lps_to_ras(affine: np.ndarray) -> np.ndarray:
    """Flip the first two world axes (LPS <-> RAS); the same matrix converts both ways."""
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ np.asarray(affine, np.float64)


__all__ = [
    "axis_codes",
    "check_axes",
    "corners",
    "default_axes",
    "dicom_affine",
    "dicom_plane",
    "lps_to_ras",
    "obliquity_deg",
    "plane_name",
    "resampled_size",
    "scale_factors",
    "slice_axis",
    "slice_normal",
    "upscaled_affine",
    "voxel_sizes",
]
