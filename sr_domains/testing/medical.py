"""Generated NIfTI volumes and an interpolating "model" for exact tests; the DICOM series
(:mod:`sr_domains.testing.dicom`) and phantoms (:mod:`sr_domains.testing.phantoms`) are
re-exported. Needs nibabel/pydicom (the ``medical`` extra)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..models.base import BaseSRConfig, SRModel
from .dicom import OBLIQUE_IOP, make_dicom_series, make_enhanced_dicom
from .phantoms import ValuesFn, ellipsoid_phantom, grid_world, oblique_affine, rotation


class InterpSR(SRModel):
    """Plain interpolation posing as an SR model (``nearest``, ``bilinear`` or ``bicubic``,
    voxel-centre convention). With it the SR output equals the textbook interpolation, which
    proves that axes, orientation and intensity profiles are handled without scrambling."""

    arch = "interp"

    def __init__(self, config: BaseSRConfig, mode: str = "bilinear") -> None:
        super().__init__(config)
        self.mode = mode

    def body(self, x: torch.Tensor) -> torch.Tensor:
        kw = {} if self.mode == "nearest" else {"align_corners": False}
        return nn.functional.interpolate(x, scale_factor=self.scale, mode=self.mode, **kw)

    def receptive_radius(self) -> int:
        return {"nearest": 0, "bilinear": 1}.get(self.mode, 2)


def interp_model(scale: int = 2, mode: str = "bilinear", in_channels: int = 1) -> InterpSR:
    """An :class:`InterpSR` in eval mode."""
    return InterpSR(BaseSRConfig(in_channels=in_channels, scale=scale), mode=mode).eval()


def make_nifti(
    path: str | os.PathLike[str],
    shape: Sequence[int] = (20, 16, 8),
    spacing: Sequence[float] = (1.0, 1.25, 3.0),
    *,
    affine: np.ndarray | None = None,
    oblique: bool = True,
    dtype: str | np.dtype = "int16",
    slope: float | None = None,
    inter: float | None = None,
    n_volumes: int | None = None,
    qform_code: int = 1,
    sform_code: int = 1,
    nifti2: bool = False,
    values: ValuesFn | None = None,
) -> Path:
    """Write a NIfTI phantom and return its path.

    Args:
        shape, spacing: 3-D grid size and voxel size (mm).
        affine: explicit voxel-centre affine (overrides ``spacing``/``oblique``).
        oblique: rotate the axes (otherwise a plain RAS diagonal affine).
        dtype, slope, inter: on-disk type and ``scl_slope``/``scl_inter`` (None = unscaled).
        n_volumes: make a 4-D file with this many volumes (intensity varies per volume).
        qform_code, sform_code: header codes (0 = unset).
        nifti2: write NIfTI-2.
        values: ``values(world_mm)``; default :func:`ellipsoid_phantom`.
    """
    import nibabel as nib

    if affine is None:
        affine = oblique_affine(spacing) if oblique else np.diag([*spacing, 1.0])
    aff = np.asarray(affine, np.float64)
    world = grid_world(aff, shape)
    if values is None:
        centre = aff[:3, :3] @ ((np.asarray(shape) - 1) / 2.0) + aff[:3, 3]
        values = ellipsoid_phantom(centre, 0.35 * np.asarray(shape) * np.asarray(spacing))
    vol = values(world).astype(np.float64)
    if n_volumes:
        vol = np.stack([vol * (1.0 + 0.1 * t) for t in range(n_volumes)], axis=-1)
    cls = nib.Nifti2Image if nifti2 else nib.Nifti1Image
    dt = np.dtype(dtype)
    if dt.kind in "ui" and slope is None:
        vol = np.rint(vol)
    img = cls(vol.astype(np.float32) if dt.kind == "f" else vol, aff)
    img.set_data_dtype(dt)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(aff, code=qform_code)
    img.set_sform(aff, code=sform_code)
    if n_volumes:
        img.header.set_zooms((*img.header.get_zooms()[:3], 2.5))
    if slope is not None:
        img.header.set_slope_inter(slope, inter if inter is not None else 0.0)
    elif dt.kind in "ui":
        img.header.set_slope_inter(1.0, 0.0)
    img.header["descrip"] = b"sr_domains test phantom"
    p = Path(path)
    nib.save(img, p)
    return p


__all__ = [
    "OBLIQUE_IOP",
    "InterpSR",
    "ValuesFn",
    "ellipsoid_phantom",
    "grid_world",
    "interp_model",
    "make_dicom_series",
    "make_enhanced_dicom",
    "make_nifti",
    "oblique_affine",
    "rotation",
]
