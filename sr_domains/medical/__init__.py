"""Medical imaging: NIfTI volumes and DICOM series in, geometry-correct SR outputs out.

>>> from sr_domains.medical import upscale_nifti, upscale_dicom_series
>>> upscale_nifti("brain.nii.gz", "brain_x2.nii.gz", scale=2)            # doctest: +SKIP
>>> upscale_dicom_series("dicom_dir/", "dicom_x2/", scale=2)             # doctest: +SKIP
>>> make_isotropic("t2.nii.gz", "t2_iso.nii.gz")                           # doctest: +SKIP

nibabel and pydicom are imported only when a file is read or written, so this package imports
without the ``medical`` extra. The array-level helpers (:func:`upscale_image`,
:func:`upscale_volume`, :mod:`~sr_domains.medical.geometry`) need neither. Names are imported
from their submodules on first use: reading a file's header (``sr-domains info``) loads no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_exports

if TYPE_CHECKING:  # pragma: no cover
    from .api import run_dicom_series, run_nifti, upscale_dicom_series, upscale_nifti
    from .dicom_read import (
        DicomSeries,
        SeriesSummary,
        list_dicom_series,
        load_dicom_series,
        read_dicom_volume,
    )
    from .dicom_write import write_derived_series
    from .geometry import default_axes, dicom_affine, upscaled_affine
    from .isotropic import IsotropicPlan, plan_isotropic
    from .isotropic_api import make_isotropic
    from .nifti import NiftiVolume, nifti_info, read_nifti, write_nifti
    from .volume import upscale_image, upscale_planes, upscale_volume

# name -> submodule; imported on first use, so ``info`` and sniffing a file need no torch
_EXPORTS = {
    "upscale_dicom_series": "api",
    "upscale_nifti": "api",
    "run_dicom_series": "api",
    "run_nifti": "api",
    "DicomSeries": "dicom_read",
    "SeriesSummary": "dicom_read",
    "list_dicom_series": "dicom_read",
    "load_dicom_series": "dicom_read",
    "read_dicom_volume": "dicom_read",
    "write_derived_series": "dicom_write",
    "default_axes": "geometry",
    "dicom_affine": "geometry",
    "upscaled_affine": "geometry",
    "IsotropicPlan": "isotropic",
    "plan_isotropic": "isotropic",
    "make_isotropic": "isotropic_api",
    "NiftiVolume": "nifti",
    "nifti_info": "nifti",
    "read_nifti": "nifti",
    "write_nifti": "nifti",
    "upscale_image": "volume",
    "upscale_planes": "volume",
    "upscale_volume": "volume",
}


__getattr__ = lazy_exports(__name__, _EXPORTS)


__all__ = [
    "DicomSeries",
    "IsotropicPlan",
    "NiftiVolume",
    "SeriesSummary",
    "default_axes",
    "dicom_affine",
    "list_dicom_series",
    "load_dicom_series",
    "make_isotropic",
    "nifti_info",
    "plan_isotropic",
    "read_dicom_volume",
    "read_nifti",
    "run_dicom_series",
    "run_nifti",
    "upscale_dicom_series",
    "upscale_image",
    "upscale_nifti",
    "upscale_planes",
    "upscale_volume",
    "upscaled_affine",
    "write_derived_series",
    "write_nifti",
]
