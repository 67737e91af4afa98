"""``sr-domains`` adapter for NIfTI files (``.nii``, ``.nii.gz``); nibabel is imported lazily."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..options import UpscaleOptions, check_supported, output_name
from .nifti import is_nifti_path

if TYPE_CHECKING:  # no torch import just to sniff a file
    from ..models.base import SRModel


def sniff(path: Path) -> bool:
    """A ``.nii``/``.nii.gz`` name (existence is checked when reading, with a clear error)."""
    return is_nifti_path(path) and not Path(path).is_dir()


def info(path: Path) -> str:
    """Shape, dtype, spacing, orientation, affine codes and default SR axes; a file whose voxel
    data is truncated or corrupt is an error (:func:`~sr_domains.medical.nifti_io.check_data`)."""
    from .nifti import nifti_info
    from .nifti_io import check_data

    text = nifti_info(path)
    check_data(path)
    return text


def info_json(path: Path) -> dict[str, Any]:
    """:func:`info` as JSON-ready data."""
    import numpy as np

    from .geometry import axis_codes, obliquity_deg, voxel_sizes
    from .nifti import nifti_default_axes
    from .nifti_io import check_data, load_nifti

    img = load_nifti(Path(path))
    check_data(path)
    hdr = img.header
    aff = np.asarray(img.affine, np.float64)
    sp = voxel_sizes(aff)
    _, qcode = hdr.get_qform(coded=True)
    _, scode = hdr.get_sform(coded=True)
    shape = [int(v) for v in img.shape]
    return {
        "path": str(path),
        "format": type(img).__name__.replace("Image", ""),
        "shape": shape,
        "dtype": str(img.get_data_dtype()),
        "scl_slope": float(getattr(img.dataobj, "slope", 1.0)),
        "scl_inter": float(getattr(img.dataobj, "inter", 0.0)),
        "spacing": [float(v) for v in sp],
        "units": list(hdr.get_xyzt_units()),
        "axis_codes": list(axis_codes(aff)),
        "obliquity_deg": round(float(obliquity_deg(aff)), 4),
        "sform_code": int(scode),
        "qform_code": int(qcode),
        "affine": aff.tolist(),
        "default_axes": list(nifti_default_axes(path, hdr, aff, (*shape, 1, 1)[:3])),
    }


def upscale(
    src: Path, dst: Path, options: UpscaleOptions, model: SRModel | None = None
) -> list[Path]:
    """Run :func:`sr_domains.medical.upscale_nifti` (or, with ``--isotropic``,
    :func:`~sr_domains.medical.isotropic_api.isotropic_nifti`) with CLI options; ``dst`` an
    existing folder: the output goes inside it, under the input's name with ``--suffix``."""
    check_supported(options, "NIfTI", {"axes", "through_plane", "isotropic"})
    src, dst = Path(src), Path(dst)
    if dst.is_dir():  # an existing folder: the output goes inside it, as for GeoTIFF
        dst = dst / output_name(src.name, options.suffix)
    if options.isotropic is not None:
        from .isotropic_api import isotropic_nifti

        return [isotropic_nifti(src, dst, options)]
    from .nifti_upscale import run_nifti

    return [run_nifti(src, dst, options, model=model)]
