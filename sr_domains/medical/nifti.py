"""NIfTI-1/2 reading and writing with nibabel (imported lazily), header kept right.

Written header (see ``docs/medical.md``):

* shape and ``pixdim`` updated; ``sform`` and ``qform`` each updated by the voxel-centre rule
  (``A @ T``) when their code is > 0, codes kept; with both codes 0 the fallback affine follows
  from ``pixdim`` and keeps the field of view too. A ``pixdim`` of 0 (unknown; nibabel reads
  it as 1) stays 0, whatever the codes.
* dtype kept. Integer data keeps the source ``scl_slope``/``scl_inter`` unchanged: SR values
  are rounded and clipped to that value grid (exact zeros stay zero). Float data is written
  unscaled. Voxels are written plane by plane (:mod:`sr_domains.medical.nifti_io`).
* units, intent, ``cal_min``/``cal_max``, ``dim_info``, TR (``pixdim[4]``), ``toffset`` kept;
  slice-timing fields reset when the slice-encoding axis was resampled; DICOM and AFNI header
  extensions (which describe the old grid) dropped; ``descrip`` gets a provenance prefix (80
  characters max) and a JSON ``comment`` extension records the full provenance.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..image import scale_nifti_affine
from ..io_safety import atomic_output
from ..strict_json import provenance_json
from .geometry import (
    axis_codes,
    default_axes,
    obliquity_deg,
    plane_name,
    scale_factors,
    voxel_sizes,
)
from .nifti_intent import check_intent
from .nifti_io import load_nifti, nibabel_module, open_source
from .nifti_write import PlaneWriter

log = logging.getLogger(__name__)

NIFTI_SUFFIXES = (".nii", ".nii.gz")
_DROP_EXTENSIONS = {2, 4}  # DICOM header, AFNI header: describe the source grid


def is_nifti_path(path: str | os.PathLike[str]) -> bool:
    """True for a ``.nii`` / ``.nii.gz`` name (case-insensitive)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def check_output_name(dst: str | os.PathLike[str], domain: str) -> None:
    """Refuse an output named unlike what is written (the next tool trusts the name): a NIfTI
    output ends in ``.nii``/``.nii.gz``; a DICOM series is a folder, not named ``.dcm`` or
    like a NIfTI file. Every medical writer and ``--dry-run`` ask this."""
    if domain == "nifti" and not is_nifti_path(dst):
        raise ConfigError(f"{dst}: NIfTI output must end in .nii or .nii.gz")
    if domain == "dicom" and (is_nifti_path(dst) or Path(dst).suffix.lower() == ".dcm"):
        raise ConfigError(f"{dst}: a DICOM series is written to a folder")


@dataclass
class NiftiVolume:
    """A loaded NIfTI image.

    Attributes:
        path: the file.
        image: the nibabel image (header and class used when writing).
        data: voxel values with scaling applied, at least 3-D (``(X, Y, Z, *extra)``; a 2-D
            file gets a trailing axis of 1); float32, float64 for float64 and 32-bit integer
            files (:attr:`~sr_domains.medical.nifti_io.NiftiSource.work_dtype`).
        affine: nibabel's best affine (sform, else qform, else from pixdim), RAS+ mm.
        dtype: on-disk dtype.
        slope, inter: on-disk scaling (1, 0 when unscaled).
    """

    path: Path
    image: Any
    data: np.ndarray
    affine: np.ndarray
    dtype: np.dtype
    slope: float
    inter: float

    @property
    def header(self) -> Any:
        return self.image.header

    @property
    def spacing(self) -> np.ndarray:
        return voxel_sizes(self.affine)


def read_nifti(path: str | os.PathLike[str]) -> NiftiVolume:
    """Load a NIfTI file into a :class:`NiftiVolume` (voxels in float32 or float64, scaling
    applied).

    The header is checked against the file before anything is allocated (see
    :func:`sr_domains.medical.nifti_io.open_source`).
    """
    src = open_source(path)
    data = src.read_all()
    return NiftiVolume(src.path, src.image, data, src.affine, src.dtype, src.slope, src.inter)


def check_upscalable(vol: Any) -> None:
    """Refuse images an intensity SR model must not touch (label maps, vector/tensor and other
    non-scalar intents: :mod:`sr_domains.medical.nifti_intent`); ``vol`` is a
    :class:`NiftiVolume` or a :class:`~sr_domains.medical.nifti_io.NiftiSource`."""
    check_intent(vol.path, vol.header)


def updated_header(
    vol: Any, shape: tuple[int, ...], factors: tuple[float, ...], descrip: str
) -> Any:
    """A copy of the source header (of a :class:`NiftiVolume` or a ``NiftiSource``) for an SR
    grid of ``shape`` (see module docs)."""
    hdr = vol.header.copy()
    q, qcode = hdr.get_qform(coded=True)  # read both before pixdim changes (qform uses it)
    s, scode = hdr.get_sform(coded=True)
    hdr.set_data_shape(shape)
    zooms = list(hdr.get_zooms())
    unknown = _unknown_spacing(vol, zooms)
    for a, f in enumerate(factors[: len(zooms)]):
        zooms[a] = 0.0 if a in unknown else zooms[a] / f
    hdr.set_zooms(zooms)
    if q is not None and qcode > 0:
        hdr.set_qform(scale_nifti_affine(q, factors), code=int(qcode))
        for a in unknown:  # set_qform wrote the column norms (nibabel's 1 / s) as pixdim
            hdr["pixdim"][a + 1] = 0.0
    if s is not None and scode > 0:
        hdr.set_sform(scale_nifti_affine(s, factors), code=int(scode))
    _freq, _phase, slice_dim = hdr.get_dim_info()
    if slice_dim is not None and slice_dim < 3 and factors[slice_dim] != 1:
        for key in ("slice_code", "slice_start", "slice_end", "slice_duration"):
            hdr[key] = 0
    if hdr.get_data_dtype().kind == "f":
        hdr.set_slope_inter(1.0, 0.0)  # float voxels are written in physical units
    else:  # the source's value grid, unchanged (nibabel keeps it on the array proxy)
        hdr.set_slope_inter(float(vol.slope), float(vol.inter))
    hdr["descrip"] = _descrip(descrip, bytes(hdr["descrip"].item()).split(b"\x00")[0])
    keep = [e for e in hdr.extensions if e.get_code() not in _DROP_EXTENSIONS]
    hdr.extensions.clear()
    hdr.extensions.extend(keep)
    return hdr


def _unknown_spacing(vol: Any, zooms: list[float]) -> set[int]:
    """Spatial axes whose ``pixdim`` is 0 (unknown) in ``vol``'s file: nibabel reads such a
    spacing as 1, so the raw header is read again where a zoom is 1 (an unknown spacing stays
    0 in the output instead of becoming a concrete ``1 / s``)."""
    return unknown_spacing_axes(vol.path, vol.header, zooms)


def unknown_spacing_axes(path: str | os.PathLike[str], header: Any, zooms: Any = None) -> set[int]:
    """Spatial axes whose raw ``pixdim`` is 0 in the file at ``path`` (``header``: its nibabel
    header, which reads such a spacing as 1; ``zooms``: its zooms, read when not given)."""
    zooms = list(header.get_zooms()) if zooms is None else list(zooms)
    if not any(z == 1.0 for z in zooms[:3]):
        return set()
    from nibabel.openers import Opener

    try:
        with Opener(str(path), "rb") as f:
            raw = type(header).from_fileobj(f, check=False)
    except Exception:  # nibabel raises many types; the file was read once already
        return set()
    return {a for a in range(min(3, len(zooms))) if float(raw["pixdim"][a + 1]) == 0.0}


def unstated_spacing_axes(path: str | os.PathLike[str], header: Any) -> set[int]:
    """Spatial axes whose spacing the NIfTI file at ``path`` leaves unknown: a raw ``pixdim``
    of 0 (nibabel reads it as 1) and no sform (code > 0) stating the spacing. A qform takes
    its scale from ``pixdim``, so it states nothing there. The one rule of the NIfTI path,
    ``--isotropic`` and the MONAI transforms."""
    _, scode = header.get_sform(coded=True)
    return set() if int(scode or 0) > 0 else unknown_spacing_axes(path, header)


def nifti_default_axes(
    path: str | os.PathLike[str], header: Any, affine: Any, shape3: tuple[int, ...]
) -> tuple[int, int]:
    """:func:`~sr_domains.medical.geometry.default_axes` for a NIfTI file: by the spacing of
    its affine, unless a ``pixdim`` is 0 (unknown) and no sform states the spacing; then in
    array order (size-1 axes avoided), as for a file with no spacing information at all
    (nibabel's invented spacing of 1 for the unknown axes is not compared with the known)."""
    sp = voxel_sizes(np.asarray(affine, np.float64))
    if unstated_spacing_axes(path, header):
        sp = np.ones(3)
    return default_axes(sp, shape3)


def _descrip(prefix: str, old: bytes) -> bytes:
    """``prefix | old`` in the 80 bytes of ``descrip``: the source's own bytes kept as they
    were (UTF-8 or any other encoding; they became ``?`` when re-encoded as ASCII), cut
    without splitting a UTF-8 character."""
    head = prefix.encode("ascii", "replace")
    raw = head + b" | " + old if old else head
    if len(raw) <= 80:
        return raw
    try:
        old.decode("utf-8")
    except UnicodeDecodeError:
        return raw[:80]
    return raw[:80].decode("utf-8", "ignore").encode("utf-8")


def output_header(
    vol: Any, shape: tuple[int, ...], factors: tuple[float, ...], provenance: dict[str, Any]
) -> Any:
    """:func:`updated_header` plus the provenance (``descrip`` prefix, JSON ``comment``)."""
    nib = nibabel_module()
    prov = provenance or {}
    short = f"SR x{prov.get('scale', '?')} {prov.get('mode', '')} {prov.get('software', '')}"
    hdr = updated_header(vol, shape, factors, " ".join(short.split()))
    if prov:
        hdr.extensions.append(
            nib.nifti1.Nifti1Extension("comment", provenance_json(prov).encode("utf-8"))
        )
    return hdr


def write_nifti(
    dst: str | os.PathLike[str],
    data: np.ndarray,
    like: NiftiVolume,
    factors: tuple[float, ...],
    *,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write SR ``data`` (float, physical units) with ``like``'s header updated for ``factors``.

    Integer outputs keep the source dtype and ``scl_slope``/``scl_inter`` (values are rounded
    and clipped to that grid). Written to a temporary file next to ``dst`` and renamed when
    complete (:mod:`sr_domains.io_safety`).
    """
    dst = Path(dst)
    check_output_name(dst, "nifti")
    out = data[..., 0] if like.image.ndim == 2 and data.ndim == 3 else data
    hdr = output_header(like, tuple(out.shape), factors, provenance or {})
    with (
        atomic_output(dst, [like.path], overwrite=overwrite) as tmp,
        PlaneWriter(tmp, hdr, planes_of(data.shape)) as writer,
    ):
        for chunk in iter_planes(data):
            writer.write(chunk)
    log.info("wrote %s %s", dst, out.shape)
    return dst


def planes_of(shape: tuple[int, ...]) -> int:
    """Number of ``(X, Y)`` planes of an array of ``shape``."""
    return int(np.prod(shape[2:], dtype=np.int64)) if len(shape) > 2 else 1


def iter_planes(data: np.ndarray, chunk: int = 16) -> Iterator[np.ndarray]:
    """Stacks ``(n, X, Y)`` of the planes of ``data`` in NIfTI file order (views, no copy of
    the whole array): slices of the first volume, then of the next (extra axes in Fortran
    order)."""
    d = data if data.ndim > 2 else data[..., None]
    extra = d.shape[3:]
    for v in range(int(np.prod(extra, dtype=np.int64)) if extra else 1):
        idx = tuple(int(i) for i in np.unravel_index(v, extra, order="F")) if extra else ()
        key: tuple[slice | int, ...] = (slice(None), slice(None), slice(None), *idx)
        vol = d[key]
        for z0 in range(0, vol.shape[2], chunk):
            yield np.moveaxis(vol[:, :, z0 : z0 + chunk], 2, 0)


def nifti_info(path: str | os.PathLike[str]) -> str:
    """Human-readable summary: shape, dtype/scaling, spacing, orientation, affine codes,
    default SR axes."""
    p = Path(path)
    img = load_nifti(p)
    hdr = img.header
    shape = tuple(int(v) for v in img.shape)
    aff = np.asarray(img.affine, np.float64)
    sp = voxel_sizes(aff)
    units = hdr.get_xyzt_units()
    space_unit = units[0] if units[0] not in ("", "unknown") else "mm (unit code unset)"
    _, qcode = hdr.get_qform(coded=True)
    _, scode = hdr.get_sform(coded=True)
    slope = getattr(img.dataobj, "slope", 1.0)
    inter = getattr(img.dataobj, "inter", 0.0)
    raw = bytes(hdr["descrip"].item()).split(b"\x00")[0]
    try:
        descrip = raw.decode("utf-8")
    except UnicodeDecodeError:  # (another 8-bit encoding)
        descrip = raw.decode("latin-1")
    lines = [
        f"{p}: {type(img).__name__.replace('Image', '')}",
        f"  shape      {' x '.join(map(str, shape))}  dtype {img.get_data_dtype()}"
        f"  scl_slope {slope:g} scl_inter {inter:g}",
        f"  spacing    {' x '.join(f'{v:.4g}' for v in sp)} {space_unit}"
        + (f", TR {hdr.get_zooms()[3]:g} {units[1] or ''}".rstrip() if len(shape) > 3 else ""),
        f"  orientation voxel axes point to {','.join(axis_codes(aff))} (world RAS+), "
        f"oblique by {obliquity_deg(aff):.2f} deg",
        f"  sform code {int(scode)}, qform code {int(qcode)}, intent {hdr.get_intent()[0]}",
        "  affine     "
        + "\n             ".join(" ".join(f"{v:10.4f}" for v in row) for row in aff[:3]),
    ]
    if descrip:
        lines.append(f"  descrip    {descrip}")
    shape3 = (*shape, 1, 1)[:3]
    ax = nifti_default_axes(p, hdr, aff, shape3)
    (k,) = {0, 1, 2} - set(ax)
    f = scale_factors(ax, 2)
    new = " x ".join(str(int(n * g)) for n, g in zip(shape3, f))
    plane = plane_name(axis_codes(aff)[k]) if len(shape) >= 3 else "2-D"
    lines.append(f"  SR default in-plane axes {ax} ({plane} slices along axis {k}); x2 -> {new}")
    return "\n".join(lines)


__all__ = [
    "NiftiVolume",
    "check_upscalable",
    "is_nifti_path",
    "iter_planes",
    "load_nifti",
    "nifti_default_axes",
    "nifti_info",
    "output_header",
    "planes_of",
    "read_nifti",
    "unknown_spacing_axes",
    "unstated_spacing_axes",
    "updated_header",
    "write_nifti",
]
