"""The in-plane axes of a MONAI image whose voxel spacing is partly unknown, picked as the
NIfTI path picks them.

A NIfTI ``pixdim`` of 0 means "unknown spacing". :func:`sr_domains.medical.nifti.
nifti_default_axes` then picks the in-plane axes in the *file's* array order (size-1 axes
avoided), unless an sform (code > 0) states the spacing. MONAI's ``LoadImage`` (NibabelReader)
cannot tell: the header it copies into ``MetaTensor.meta`` is nibabel's checked one, whose
``pixdim`` 0 is already 1 (nibabel's header check, "setting 0 dims to 1"), so both ``pixdim``
and the affine show 1 mm and the finest-spacing rule would compare an invented 1 with the known
spacings.

Decided here, in this order:

* ``sform_code`` > 0 in the meta: the sform states the spacing (known), unless the NIfTI
  file ``filename_or_obj`` has a raw ``pixdim`` of 0 and an sform that differs from the
  meta's ``original_affine`` (the affine as loaded): MONAI's ``LoadImage`` (NibabelReader,
  ``correct_nifti_header_if_necessary``, no option turns it off) replaced the sform by the
  qform built from the pixdim (its 0 read as 1 mm) and kept ``sform_code``. The image's
  affine is then not the file's geometry: refused (:class:`~sr_domains.errors.InputFileError`
  naming the file) rather than planned on the invented 1 mm.
* the image is no longer on the file's voxel grid up to an axis permutation/flip
  (``original_affine`` vs the current affine; a ``Spacing`` transform chose a spacing): known,
  also where the meta still holds a raw ``pixdim`` of 0 (MONAI's spatial transforms rewrite
  ``pixdim``; a meta dict copied from the header may keep it).
* a spatial ``pixdim`` of 0 in the meta (a reader or a dict that kept the raw header): unknown.
* a spatial 0 in MONAI's ``original_pixdim`` (the pixdim as loaded, in the file's axis order),
  where every current voxel size is still the stated one of its file axis (1 where it is 0):
  unknown. MONAI's spatial transforms rewrite ``pixdim`` from the affine (in place, the
  input's meta dict too) but copy every other key unchanged, so a meta built in memory that
  states the 0 there keeps it through ``Orientation`` (with ``original_affine`` for the axis
  map); ``LoadImage`` fills ``original_pixdim`` from nibabel's checked header (1, not 0).
* else, only when the current affine has a spacing of 1 (where nibabel's 1 may hide a 0): the
  raw header of the NIfTI file ``filename_or_obj`` is read again, as the NIfTI path does
  (:func:`~sr_domains.medical.nifti.unstated_spacing_axes`). A file that cannot be read again
  (moved, deleted), or whose header no longer matches the image's meta (another file at that
  name), leaves the affine to decide, with a WARNING naming the file: once per file and
  reason in a process (a transform runs once per sample and epoch), a debug line after. A
  DataLoader worker is a process of its own, new each epoch unless ``persistent_workers``:
  processes share nothing a log line could be checked against without a server process or
  a file, so the WARNING says which worker gave it and how to make it once per worker and run.

When unknown, the file-order rule is applied to the image's current shape taken back to the
file's axis order, and the chosen file axes are mapped to the current array axes: after an
``Orientation`` the same *file* axes grow as in ``upscale_nifti``.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputFileError
from ..medical.geometry import SPACING_TIE_MM, default_axes, voxel_sizes
from ._meta import _axis_map

log = logging.getLogger(__name__)

#: Raw NIfTI header fields that neither MONAI's spatial transforms nor ours change: a file
#: read again must agree with the meta on them to be the file the image was loaded from.
_SAME_FILE_KEYS = (
    "dim",
    "datatype",
    "qform_code",
    "sform_code",
    "quatern_b",
    "quatern_c",
    "quatern_d",
    "qoffset_x",
    "qoffset_y",
    "qoffset_z",
)


def _np(v: Any) -> np.ndarray:
    return np.asarray(v.detach().cpu() if isinstance(v, torch.Tensor) else v)


def _item(meta: Mapping[str, Any], key: str, index: int | None) -> Any:
    """``meta[key]`` of one image; ``index``: its item in a collated batch (None: unbatched)."""
    v = meta.get(key)
    if v is None or index is None:
        return v
    if isinstance(v, (list, tuple)):
        return v[index] if index < len(v) else None
    a = _np(v)
    return a[index] if a.ndim > 0 and index < len(a) else None


def _number(v: Any) -> float | None:
    try:
        return float(_np(v).item())
    except (TypeError, ValueError):
        return None


def _file_axes(affine: np.ndarray, original: Any) -> list[int] | None:
    """For each current array axis, the file axis it runs along (identity without an
    ``original_affine``); None when the image left the file's grid: not an axis permutation or
    flip of it, or a voxel size changed (a ``Spacing`` chose one, whatever ``pixdim`` says)."""
    if original is None:
        return [0, 1, 2]
    o = _np(original).astype(np.float64)
    if o.shape != (4, 4):
        return None
    amap = _axis_map(o, affine)
    if amap is None:
        return None
    a_sizes, o_sizes = voxel_sizes(affine), voxel_sizes(o)
    same = all(abs(a_sizes[i] - o_sizes[j]) <= SPACING_TIE_MM for i, j in enumerate(amap))
    return amap if same else None


def _file_says_unknown(path: Path, meta: Mapping[str, Any], index: int | None) -> bool:
    """The NIfTI path's rule on the file itself (a raw ``pixdim`` of 0 and sform code 0); a
    WARNING naming the file when it cannot be asked (once per file and reason: :func:`_tell`)."""
    try:
        st = os.stat(path)
        hdr, unknown = _read_header(str(path), st.st_mtime_ns, st.st_size)
    except FileNotFoundError:
        _tell(path, "gone", "it is no longer there")
    except Exception as exc:  # nibabel raises many types
        _tell(path, "unreadable", f"it cannot be read: {exc}")
    else:
        changed = [k for k in _SAME_FILE_KEYS if not _agrees(hdr, meta, k, index)]
        if not changed:
            return unknown
        why = f"its header no longer matches the image loaded from it ({', '.join(changed)})"
        _tell(path, "changed", why)
    return False


@functools.lru_cache(maxsize=256)
def _read_header(path: str, mtime_ns: int, size: int) -> tuple[Any, bool]:
    """The nibabel header of the NIfTI file ``path`` and whether the NIfTI path's rule finds
    its spacing unknown (a raw ``pixdim`` of 0, sform code 0); cached by the file's
    modification time and size, so a transform that runs once per sample and epoch reads
    each file once, and a file rewritten since is read again."""
    import nibabel as nib

    from ..medical.nifti import unstated_spacing_axes

    hdr: Any = nib.load(path).header  # (a NIfTI-1 or -2 header)
    return hdr, bool(unstated_spacing_axes(path, hdr))


@functools.lru_cache(maxsize=256)
def _pix0_sform(path: str, mtime_ns: int, size: int) -> tuple[Any, np.ndarray | None]:
    """The nibabel header of the NIfTI file ``path`` and its sform when it has one (code > 0)
    and a raw spatial ``pixdim`` of 0 (None otherwise); cached as :func:`_read_header`."""
    from ..medical.nifti import unknown_spacing_axes

    hdr, _ = _read_header(path, mtime_ns, size)
    sform, code = hdr.get_sform(coded=True)
    if sform is None or int(code or 0) <= 0 or not unknown_spacing_axes(path, hdr):
        return hdr, None
    return hdr, np.asarray(sform, np.float64)


def _check_sform_kept(meta: Mapping[str, Any], index: int | None) -> None:
    """Refuse an image whose NIfTI file has a raw ``pixdim`` of 0 and an sform that
    ``LoadImage`` replaced (module docs): its ``original_affine`` differs from the file's sform.
    A file that cannot be read again, or is not the one loaded, leaves the meta to decide."""
    name, orig = _item(meta, "filename_or_obj", index), _item(meta, "original_affine", index)
    from ..medical.nifti import is_nifti_path

    if orig is None or not isinstance(name, (str, Path)) or not is_nifti_path(name):
        return
    o = _np(orig).astype(np.float64)
    if o.shape != (4, 4) or not np.isclose(voxel_sizes(o), 1.0, rtol=0, atol=1e-6).any():
        return  # (nibabel reads a pixdim of 0 as 1)
    try:
        st = os.stat(name)
        hdr, sform = _pix0_sform(str(name), st.st_mtime_ns, st.st_size)
    except Exception:  # (gone, unreadable: nibabel raises many types)
        return
    if sform is None or not all(_agrees(hdr, meta, k, index) for k in _SAME_FILE_KEYS):
        return
    if np.allclose(sform, o, rtol=1e-5, atol=1e-3):
        return
    sizes = " x ".join(f"{v:.6g}" for v in voxel_sizes(sform))
    raise InputFileError(
        name,
        f"its pixdim has a 0 (unknown) and its sform (code {int(hdr['sform_code'])}) states "
        f"{sizes} mm voxels, but MONAI's LoadImage replaced the sform by the qform built from "
        "the pixdim (the 0 read as 1 mm; NibabelReader has no option to keep it), so the "
        "image's affine is not the file's geometry; write the sform's voxel sizes into the "
        "header's pixdim, or upscale the file itself (upscale_nifti, make_isotropic: they "
        "read the sform)",
    )


#: The (file, reason) pairs already warned of in this process (a transform runs once per
#: sample and epoch: the WARNING comes once, later ones are debug lines).
_told: set[tuple[str, str]] = set()
_told_lock = threading.Lock()


def _tell(path: Path, kind: str, why: str) -> None:
    """Log that ``path`` cannot be asked (``why``): a WARNING the first time for this file and
    ``kind`` of reason in this process, a debug line after."""
    with _told_lock:
        first = (str(path), kind) not in _told
        _told.add((str(path), kind))
    log.log(
        logging.WARNING if first else logging.DEBUG,
        "%s: the image's spacing of 1 may be a NIfTI pixdim of 0 (unknown), but the file "
        "cannot be read again to tell (%s); the affine's spacing picks the in-plane axes "
        "(pass axes= to choose them)%s",
        path,
        why,
        _once_where() if first else "",
    )


def _once_where() -> str:
    """Where the WARNING is said once: this process, or this DataLoader worker (a process
    that non-persistent workers start again each epoch)."""
    from torch.utils.data import get_worker_info

    w = get_worker_info()
    if w is None:
        return "; said once per file"
    return (
        f"; said once per file in each DataLoader worker process (this is worker {w.id} of "
        f"{w.num_workers}; they start again each epoch unless persistent_workers=True)"
    )


def _agrees(hdr: Any, meta: Mapping[str, Any], key: str, index: int | None) -> bool:
    v = _item(meta, key, index)
    if v is None:
        return True  # (not in this meta: nothing to compare)
    try:
        a, b = _np(v).astype(np.float64).ravel(), np.asarray(hdr[key], np.float64).ravel()
    except (TypeError, ValueError, KeyError):
        return True
    return a.shape == b.shape and bool(np.allclose(a, b, equal_nan=True))


def _original_says_unknown(
    meta: Mapping[str, Any],
    a: np.ndarray,
    amap: list[int],
    index: int | None,
    key: str = "original_pixdim",
) -> bool:
    """A spatial 0 in MONAI's ``original_pixdim`` (the pixdim as loaded, in the file's axis
    order, which MONAI's transforms copy unchanged; or ``pixdim``, which MONAI < 1.5 left as
    it was) that still describes this grid: each current voxel size is the stated one of its
    file axis, or 1 where that is 0 (the 1 nibabel and ``LoadImage`` read). A grid resampled
    since (no ``original_affine`` to tell) fails the check: the affine decides."""
    v = _item(meta, key, index)
    p = None if v is None else _np(v).astype(np.float64)
    if p is None or p.ndim != 1 or len(p) < 4 or not (p[1:4] == 0).any():
        return False
    sizes = voxel_sizes(a)
    want = [p[j + 1] if p[j + 1] > 0 else 1.0 for j in amap]
    return all(abs(sizes[i] - w) <= SPACING_TIE_MM for i, w in enumerate(want))


def _unknown_file_axes(
    meta: Mapping[str, Any] | None,
    affine: np.ndarray | None,
    spatial_shape: Sequence[int],
    index: int | None,
) -> list[int] | None:
    """For each current array axis, the file axis it runs along, when the 3-D image's header
    leaves a spatial spacing unknown (module docs); None when the spacing is known."""
    if not meta or affine is None or len(spatial_shape) != 3:
        return None
    a = np.asarray(affine, np.float64)
    if a.shape != (4, 4):
        return None
    scode = _number(_item(meta, "sform_code", index))
    if scode is not None and scode > 0:
        _check_sform_kept(meta, index)
        return None
    amap = _file_axes(a, _item(meta, "original_affine", index))
    if amap is None:
        return None
    if _original_says_unknown(meta, a, amap, index, "pixdim"):
        return amap
    if _original_says_unknown(meta, a, amap, index):
        return amap
    if not np.isclose(voxel_sizes(a), 1.0, rtol=0, atol=1e-6).any():
        return None
    name = _item(meta, "filename_or_obj", index)
    from ..medical.nifti import is_nifti_path

    if not isinstance(name, (str, Path)) or not is_nifti_path(name):
        return None
    return amap if _file_says_unknown(Path(name), meta, index) else None


def spacing_unknown(
    meta: Mapping[str, Any] | None,
    affine: np.ndarray | None,
    spatial_shape: Sequence[int],
    index: int | None = None,
) -> bool:
    """Whether the header of the 3-D image of ``meta`` (item ``index`` of a collated batch)
    leaves a spatial voxel spacing unknown (module docs): its affine then shows an invented
    1 mm there."""
    return _unknown_file_axes(meta, affine, spatial_shape, index) is not None


def unknown_spacing_plane(
    meta: Mapping[str, Any] | None,
    affine: np.ndarray | None,
    spatial_shape: Sequence[int],
    index: int | None = None,
) -> tuple[int, int] | None:
    """The in-plane axes (current array axes) of the 3-D image of ``meta`` (item ``index`` of
    a collated batch) when its header leaves a spatial spacing unknown (module docs): those
    :func:`~sr_domains.medical.nifti.nifti_default_axes` picks in the file's axis order. None
    when the spacing is known (the affine decides)."""
    amap = _unknown_file_axes(meta, affine, spatial_shape, index)
    if amap is None:
        return None
    file_shape = [1, 1, 1]
    for i, j in enumerate(amap):
        file_shape[j] = int(spatial_shape[i])
    picked = default_axes(np.ones(3), file_shape)
    x, y = sorted(i for i, j in enumerate(amap) if j in picked)
    return (x, y)


__all__ = ["spacing_unknown", "unknown_spacing_plane"]
