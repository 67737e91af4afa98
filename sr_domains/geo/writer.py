"""Write the upscaled raster: metadata, invalid pixels, temp file, COG (what the file holds is
decided by :mod:`sr_domains.geo.output_spec`).

Output rules:

* GeoTIFF, same dtype as the source (rounded and clipped), tiled (512 px blocks, 256 for
  small outputs), DEFLATE with a predictor, ``BIGTIFF=IF_SAFER``, pixel interleaved.
* Invalid output pixels (nearest-upscaled validity) get the nodata value when the source has one
  (or ``nodata`` was given); else NaN for float data, else 0. A per-dataset mask is written back
  as an internal mask, and an alpha band is carried (nearest-upscaled) as the last band, in
  the output type's scale (opaque = its maximum; :func:`alpha_as`). When the output's band
  count is not 2 or 4 (the layouts where GDAL reads alpha as the mask), the validity is also
  written as an internal mask.
* Source +-inf pixels come back unchanged over their footprint in float output, as in NIfTI
  (unless a mask or alpha hides them: then as invalid pixels).
* A *valid* pixel that comes out equal to the nodata value is nudged by one unit (integers: +1,
  or -1 when nodata is the dtype maximum; floats: the next representable value) so it is not
  mistaken for nodata.
* Dataset tags (with the ``xml:XMP`` domain), band tags, descriptions, colour interpretation,
  units, scales and offsets are copied (the alpha band's description, unit and tags too);
  stale ``STATISTICS_*`` band tags, old ``SR_DOMAINS_*`` tags, TIFF tags that describe the
  old pixel grid (resolution/DPI, an image description holding a shape) and the source's
  program, time and computer are dropped;
  ``TIFFTAG_SOFTWARE`` names sr_domains, provenance ``SR_DOMAINS_*`` tags are added (see
  :func:`provenance_tags`), and ``SR_DOMAINS_VALUES`` (the value rules and clamp counts) is
  written last.
* Metadata is embedded in the file. GDAL also keeps an ``IMD`` domain in ``STEM.IMD``: the
  plain GeoTIFF's copy is dropped with its temp file, ``--cog`` keeps the COG's beside the
  output. Sidecars are removed or replaced only when they belong to the output being replaced,
  never when GDAL would pair them with an input (same folder and stem:
  :mod:`sr_domains.geo.sidecars`); a COG whose ``STEM.IMD`` would be an input's is refused
  before any work.
* Everything is written to a hidden temp file next to the target and renamed into place only
  when complete (for ``--cog``, after the GDAL COG driver has copied it with overviews,
  :mod:`sr_domains.geo.cog`); see
  :mod:`sr_domains.io_safety` for the path, lock and replacement rules.
"""

from __future__ import annotations

import errno
import logging
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..intensity import cast_to_dtype
from ..value_ops import nudge_from_nodata, safe_cast
from .gdal_paths import gdal_path
from .georef import apply_georef
from .job_values import infinite_kept
from .reader import Block

try:
    import rasterio
    import rasterio.shutil
    from rasterio.enums import ColorInterp
    from rasterio.windows import Window
except ImportError as _exc:  # pragma: no cover
    from ..errors import MissingDependencyError

    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc

from .output_spec import OutputSpec

log = logging.getLogger(__name__)


def create(path: Path, spec: OutputSpec) -> Any:
    """Create the output dataset and write its metadata (pixels come later)."""
    import warnings

    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        dst = rasterio.open(gdal_path(path, output=True), "w", **spec.profile)
    try:
        apply_georef(dst, spec.georef)
        ci = [m["colorinterp"] for m in spec.band_meta]
        if spec.alpha_band is not None:
            ci.append(ColorInterp.alpha)
        dst.colorinterp = ci
        for k, meta in enumerate(spec.band_meta, start=1):
            _band_metadata(dst, k, meta)
        if spec.alpha_band is not None:
            _band_metadata(dst, spec.alpha_band, spec.alpha_meta)
        if spec.band_meta and "scale" in spec.band_meta[0]:
            scales = [m["scale"] for m in spec.band_meta]
            offsets = [m["offset"] for m in spec.band_meta]
            if spec.alpha_band is not None:
                scales, offsets = [*scales, 1.0], [*offsets, 0.0]
            if any(s != 1.0 for s in scales) or any(o != 0.0 for o in offsets):
                dst.scales, dst.offsets = scales, offsets
        for ns, t in spec.tags.items():
            set_tags(dst, t, ns)
    except BaseException:
        dst.close()
        raise
    return dst


def _band_metadata(dst: Any, k: int, meta: dict[str, Any]) -> None:
    """Band ``k``'s description, unit and tags (every domain) from ``meta``."""
    if meta.get("description"):
        dst.set_band_description(k, meta["description"])
    if meta.get("unit"):
        dst.set_band_unit(k, meta["unit"])
    set_tags(dst, meta.get("tags") or {}, bidx=k)
    for ns, t in meta.get("ns_tags", {}).items():
        set_tags(dst, t, ns, bidx=k)


def set_tags(dst: Any, tags: dict[str, str], ns: str | None = None, bidx: int = 0) -> None:
    """``dst.update_tags`` for namespace ``ns``; an XML domain (``xml:XMP``), which rasterio
    reads as ``{ns: document}``, is stored as that one document."""
    if not tags:
        return
    if ns is None or not ns.startswith("xml:"):
        dst.update_tags(bidx, ns=ns, **tags)
        return
    text = tags.get(ns) or next(iter(tags.values()))
    # rasterio stores KEY=VALUE items and GDAL keeps an XML domain as one item: split at the
    # first "=" (an XML document with an attribute or a namespace has one)
    key, sep, value = text.partition("=")
    if sep and key:
        dst.update_tags(bidx, ns=ns, **{key: value})
    if dst.tags(bidx, ns=ns).get(ns) != text:
        log.warning("%s: the %s metadata could not be copied", dst.name, ns)


def cast_inplace(data: np.ndarray, dtype: np.dtype | str) -> np.ndarray:
    """:func:`~sr_domains.intensity.cast_to_dtype` (round, clip, NaN -> 0 for integers) that
    reuses the ``data`` buffer (float32 or float64; consumed) instead of making temporary
    copies: integers are rounded and clipped a slab of rows at a time (an eighth of a band's;
    the bounds a float type rounds up, e.g. float32's 2**31 for int32, are handled by
    :func:`~sr_domains.value_ops.safe_cast`) straight into the output array, so the only
    full-size array made is the output."""
    dt = np.dtype(dtype)
    if dt.kind in "ui":
        return _cast_int(data, dt)
    info = np.finfo(dt)
    if dt == data.dtype:
        return np.clip(data, info.min, info.max, out=data)
    if dt.itemsize < data.dtype.itemsize:  # float64 blocks written as float32
        np.clip(data, info.min, info.max, out=data)
    return data.astype(dt)  # (float64 holds every float32 value)


def _cast_int(data: np.ndarray, dt: np.dtype) -> np.ndarray:
    """:func:`cast_inplace` to the integer type ``dt``, slab by slab (the values
    :func:`~sr_domains.intensity.cast_to_dtype` gives, bit for bit:
    :func:`~sr_domains.value_ops.safe_cast`, in ``data``'s own float type)."""
    out = np.empty(data.shape, dt)
    src = data.reshape(-1, *data.shape[-2:]) if data.ndim >= 2 else data.reshape(1, 1, -1)
    dst = out.reshape(src.shape)
    step = max(1, -(-src.shape[1] // 8))
    for k in range(src.shape[0]):
        for r in range(0, src.shape[1], step):
            safe_cast(src[k, r : r + step], dt, out=dst[k, r : r + step])
    return out


def write_block(
    dst: Any,
    spec: OutputSpec,
    row0: int,
    col0: int,
    data: np.ndarray,
    lr: Block,
    scale: int,
    out_row0: int | None = None,
) -> None:
    """Write HR ``data`` (float32 or float64, stored units; consumed) at ``(row0, col0)`` with
    invalid pixels set. ``lr`` is the LR block covering rows ``row0 // scale ..`` and the same
    columns; its validity, mask and alpha are nearest-upscaled and cropped to ``data``.
    ``out_row0``: the row of ``dst`` to write at, when ``dst`` holds only a band of rows
    starting elsewhere.
    """
    c, rows, cols = data.shape
    off = row0 - (row0 // scale) * scale

    def up(a: np.ndarray) -> np.ndarray:
        a = np.repeat(np.repeat(a, scale, axis=-2), scale, axis=-1)
        return a[..., off : off + rows, :cols]

    valid = up(lr.valid)
    if valid.shape[0] != c:
        valid = np.broadcast_to(valid.all(axis=0, keepdims=True), (c, rows, cols))
    out = cast_inplace(data, spec.profile["dtype"])
    if spec.nodata is not None:
        nudge_from_nodata(out, valid, spec.nodata)
    out[~valid] = spec.invalid_value
    kept = infinite_kept(lr, spec.nodata, spec.own_nodata) if out.dtype.kind == "f" else None
    if kept is not None and kept.shape[0] == c:  # +-inf come back unchanged (as in NIfTI)
        valid = valid if valid.flags.writeable else valid.copy()
        for sign in (1, -1):  # (a mask a sign, not the source's values upscaled)
            at = up(kept & (lr.values == sign * np.inf))
            out[at] = sign * np.inf
            valid |= at
        del at
    window = Window(col0, row0 if out_row0 is None else out_row0, cols, rows)
    dst.write(out, indexes=list(range(1, c + 1)), window=window)
    mask = up(lr.mask) if spec.write_mask and lr.mask is not None else None
    if spec.mask_invalid:  # (a pixel is valid where every band is; and the source mask says)
        ok = valid.all(axis=0)
        if mask is None:
            ok8 = np.asarray(ok).view(np.uint8)  # (0 / 1, made 0 / 255 in place)
            ok8 *= 255
            mask = ok8
        else:
            mask = mask.astype(np.uint8, copy=False)
            mask *= ok
    if mask is not None:
        dst.write_mask(mask, window=window)
    if spec.alpha_band is not None and lr.alpha is not None:
        alpha = alpha_as(up(lr.alpha), np.dtype(spec.profile["dtype"]))
        dst.write(alpha, spec.alpha_band, window=window)


def write_bytes(spec: OutputSpec, source: np.dtype, work: np.dtype, scale: int) -> float:
    """Upper bound of the bytes :func:`write_block` allocates per HR value of ``data`` (in the
    ``work`` dtype; ``source``: the input's), ``data`` aside, for the strip budget
    (:class:`sr_domains.panels.StripSpec`): the LR block and the upscaled validity, the cast's
    own array (integers: rounded a slab at a time, :func:`cast_inplace`), then the largest of
    one step's temporaries: the nodata nudge, the +-inf footprint (a sign's mask, the
    validity's copy), the per-pixel mask and alpha, or the contiguous copy GDAL's write makes
    of a panel's columns. Measured with ``tracemalloc``: ``benchmarks/geotiff_memory.py
    --trace``."""
    out, c = np.dtype(spec.profile["dtype"]), max(1, len(spec.band_meta))
    new = out.itemsize if out.kind in "iu" or out != work else 0
    slab = (9 if out.itemsize >= 4 else 1) / 8 / c if out.kind in "iu" else 0
    after = max(2.0, 1 + (0 if new else 2 * out.itemsize))  # nudge or ~valid; GDAL's copy
    if out.kind == "f" and source.kind == "f":
        after = max(after, 2 + 2 / scale)
    if spec.mask_invalid or spec.write_mask:  # (made in place in the validity of all bands)
        after = max(after, 1 + 4 / c)
    if spec.alpha_band is not None:  # upscaled, and rescaled in float64 to another dtype
        alpha = source.itemsize * (1 + 1 / scale) + (0 if out == source else 24 + out.itemsize)
        after = max(after, 1 + alpha / c)
    valid = 1 + 1 / scale  # (and the first axis' repeat, or the crop's slack)
    return valid + (source.itemsize + 2) / scale**2 + new + max(slab, after)


def alpha_as(alpha: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``alpha`` in the output data type. Between integer types it is rescaled so opaque
    stays the type's maximum (GDAL reads uint8 alpha 255 and uint16 alpha 65535 as opaque;
    uint8's 255 copied into uint16 would read as 0.4 % opacity) and 0 stays transparent;
    otherwise the values are kept, clipped to the output type."""
    if alpha.dtype == dtype:
        return alpha
    if alpha.dtype.kind in "iu" and dtype.kind in "iu":
        ratio = np.iinfo(dtype).max / np.iinfo(alpha.dtype).max
        return np.rint(np.clip(alpha, 0, None) * ratio).astype(dtype)
    return cast_to_dtype(alpha.astype(np.float64), dtype)


def write_error(exc: BaseException, dst: Path) -> OSError:
    """An :class:`OSError` naming ``dst`` for a GDAL write failure. GDAL reports a full disk
    only on its own stderr, so free space is checked to tell that case apart."""
    msgs = []
    e: BaseException | None = exc
    while e is not None:
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if text and "previous exception" not in text and text not in msgs:
            msgs.append(text)
        e = e.__cause__ or e.__context__
    folder = dst.parent
    while not folder.exists() and folder.parent != folder:
        folder = folder.parent
    try:
        full = shutil.disk_usage(folder).free < 2**20
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, "No space left on device", str(dst))
    limit = _file_size_limit()
    if limit is not None and any("write error" in m.lower() for m in msgs):
        return OSError(
            errno.EFBIG,
            f"File too large (this process may write files of {limit:,} bytes at most: ulimit -f)",
            str(dst),
        )
    return OSError(errno.EIO, f"GDAL could not write it ({'; '.join(msgs)})", str(dst))


def _file_size_limit() -> int | None:
    """The process's file size limit (``ulimit -f``, bytes), or None when there is none."""
    try:
        import resource
    except ImportError:  # pragma: no cover (Windows)
        return None
    soft = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


__all__ = [
    "cast_inplace",
    "create",
    "nudge_from_nodata",
    "write_block",
    "write_bytes",
    "write_error",
]
