"""Whether a MONAI image's voxel spacing is partly unknown, decided as the NIfTI path decides.

A NIfTI ``pixdim`` of 0 means "unknown spacing". :func:`sr_domains.medical.nifti.
nifti_default_axes` then picks the in-plane axes in array order (size-1 axes avoided), unless
an sform (code > 0) states the spacing. MONAI's ``LoadImage`` (NibabelReader) cannot tell: the
header it copies into ``MetaTensor.meta`` is nibabel's checked one, whose ``pixdim`` 0 is
already 1 (nibabel's header check, "setting 0 dims to 1"), so both ``pixdim`` and the affine
show 1 mm and the finest-spacing rule would compare an invented 1 with the known spacings.

Decided here, in this order:

* ``sform_code`` > 0 in the meta: the sform states the spacing (known).
* a spatial ``pixdim`` of 0 in the meta (a reader or a dict that kept the raw header): unknown.
* else, only when the current affine has a spacing of 1 (where nibabel's 1 may hide a 0) and
  the image still has the voxel sizes it was loaded with (``original_affine``; a ``Spacing``
  transform chose a spacing, an ``Orientation`` only permutes them): the raw header of the
  NIfTI file ``filename_or_obj`` is read again, as the NIfTI path does
  (:func:`~sr_domains.medical.nifti.unknown_spacing_axes`). A file that cannot be read
  leaves the affine to decide.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..medical.geometry import SPACING_TIE_MM, voxel_sizes

log = logging.getLogger(__name__)


def _item(meta: Mapping[str, Any], key: str, index: int | None) -> Any:
    """``meta[key]`` of one image; ``index``: its item in a collated batch (None: unbatched)."""
    v = meta.get(key)
    if v is None or index is None:
        return v
    if isinstance(v, (list, tuple)):
        return v[index] if index < len(v) else None
    a = v.detach().cpu().numpy() if isinstance(v, torch.Tensor) else np.asarray(v)
    return a[index] if a.ndim > 0 and index < len(a) else None


def _number(v: Any) -> float | None:
    try:
        return float(np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v).item())
    except (TypeError, ValueError):
        return None


def _same_sizes(affine: np.ndarray, original: Any) -> bool:
    if original is None:
        return True
    o = np.asarray(original.detach().cpu() if isinstance(original, torch.Tensor) else original)
    if o.shape != (4, 4):
        return False
    a, b = np.sort(voxel_sizes(affine)), np.sort(voxel_sizes(o.astype(np.float64)))
    return bool(np.allclose(a, b, atol=SPACING_TIE_MM))


def _file_unknown(path: Path) -> bool:
    """The NIfTI path's rule on the file itself: a raw ``pixdim`` of 0 and sform code 0."""
    from ..medical.nifti import is_nifti_path, unknown_spacing_axes

    if not is_nifti_path(path) or not path.is_file():
        return False
    try:
        import nibabel as nib

        hdr: Any = nib.load(str(path)).header  # (a NIfTI-1 or -2 header)
        _, scode = hdr.get_sform(coded=True)
    except Exception as exc:  # nibabel raises many types; the affine decides then
        log.debug("%s: header not read again (%s)", path, exc)
        return False
    return int(scode or 0) == 0 and bool(unknown_spacing_axes(path, hdr))


def spacing_unknown(
    meta: Mapping[str, Any] | None, affine: np.ndarray | None, index: int | None = None
) -> bool:
    """Whether the 3-D image of ``meta`` (item ``index`` of a collated batch) has a spatial
    spacing its header leaves unknown (module docs): its in-plane axes are then picked in
    array order, as :func:`~sr_domains.medical.nifti.nifti_default_axes` picks them."""
    if not meta or affine is None:
        return False
    a = np.asarray(affine, np.float64)
    if a.shape != (4, 4):
        return False
    scode = _number(_item(meta, "sform_code", index))
    if scode is not None and scode > 0:
        return False
    pix = _item(meta, "pixdim", index)
    if pix is not None:
        p = np.asarray(pix.detach().cpu() if isinstance(pix, torch.Tensor) else pix, np.float64)
        if p.ndim == 1 and len(p) >= 4 and (p[1:4] == 0).any():
            return True
    if not np.isclose(voxel_sizes(a), 1.0, rtol=0, atol=1e-6).any():
        return False
    if not _same_sizes(a, _item(meta, "original_affine", index)):
        return False
    name = _item(meta, "filename_or_obj", index)
    return isinstance(name, (str, Path)) and bool(str(name)) and _file_unknown(Path(name))


__all__ = ["spacing_unknown"]
