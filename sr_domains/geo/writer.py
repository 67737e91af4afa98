"""Write the upscaled raster: metadata, invalid pixels, temp file, COG (what the file holds is
decided by :mod:`sr_domains.geo.output_spec`).

Output rules:

* GeoTIFF, same dtype as the source (rounded and clipped), tiled (512 px blocks, 256 for
  small outputs), DEFLATE with a predictor, ``BIGTIFF=IF_SAFER``, pixel interleaved.
* Invalid output pixels (nearest-upscaled validity) get the nodata value when the source has one
  (or ``nodata`` was given); else NaN for float data, else 0. A per-dataset mask is written back
  as an internal mask, and an alpha band is carried (nearest-upscaled) as the last band.
* A *valid* pixel that comes out equal to the nodata value is nudged by one unit (integers: +1,
  or -1 when nodata is the dtype maximum; floats: the next representable value) so it is not
  mistaken for nodata.
* Dataset tags, band tags, descriptions, colour interpretation, units, scales and offsets are
  copied; stale ``STATISTICS_*`` band tags, old ``SR_DOMAINS_*`` tags and TIFF tags that
  describe the old pixel grid (resolution/DPI, an image description holding a shape) are
  dropped; provenance ``SR_DOMAINS_*`` tags are added (see :func:`provenance_tags`), and
  ``SR_DOMAINS_VALUES`` (the value rules and clamp counts) is written last.
* No sidecar is left behind: metadata is embedded in the file; only with ``--cog`` does GDAL
  keep an ``IMD`` domain in ``NAME.IMD`` beside the output (the COG driver cannot embed it).
* Everything is written to a hidden temp file next to the target and renamed into place only
  when complete (for ``--cog``, after the GDAL COG driver has copied it with overviews); see
  :mod:`sr_domains.io_safety` for the path, lock and replacement rules.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from ..intensity import cast_to_dtype
from ..value_ops import nudge_from_nodata
from .georef import apply_georef
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
        dst = rasterio.open(path, "w", **spec.profile)
    try:
        apply_georef(dst, spec.georef)
        ci = [m["colorinterp"] for m in spec.band_meta]
        if spec.alpha_band is not None:
            ci.append(ColorInterp.alpha)
        dst.colorinterp = ci
        for k, meta in enumerate(spec.band_meta, start=1):
            if meta.get("description"):
                dst.set_band_description(k, meta["description"])
            if meta.get("unit"):
                dst.set_band_unit(k, meta["unit"])
            if meta.get("tags"):
                dst.update_tags(k, **meta["tags"])
            for ns, t in meta.get("ns_tags", {}).items():
                if t:
                    dst.update_tags(k, ns=ns, **t)
        if spec.band_meta and "scale" in spec.band_meta[0]:
            scales = [m["scale"] for m in spec.band_meta]
            offsets = [m["offset"] for m in spec.band_meta]
            if spec.alpha_band is not None:
                scales, offsets = [*scales, 1.0], [*offsets, 0.0]
            if any(s != 1.0 for s in scales) or any(o != 0.0 for o in offsets):
                dst.scales, dst.offsets = scales, offsets
        for ns, t in spec.tags.items():
            if t:
                dst.update_tags(ns=ns, **t) if ns else dst.update_tags(**t)
    except BaseException:
        dst.close()
        raise
    return dst


def cast_inplace(data: np.ndarray, dtype: np.dtype | str) -> np.ndarray:
    """:func:`~sr_domains.intensity.cast_to_dtype` (round, clip, NaN -> 0 for integers) that
    reuses the ``data`` buffer (float32 or float64) instead of making three temporary copies."""
    dt = np.dtype(dtype)
    if dt.kind in "ui" and dt.itemsize >= 4:
        return cast_to_dtype(data, dt)  # float32 cannot hold the bounds of 32-bit integers
    if dt.kind in "ui":
        info = np.iinfo(dt)
        np.rint(data, out=data)
        np.clip(data, info.min, info.max, out=data)
        np.nan_to_num(data, copy=False, nan=0.0)
        return data.astype(dt)
    info = np.finfo(dt)
    if dt == data.dtype:
        return np.clip(data, info.min, info.max, out=data)
    if dt.itemsize < data.dtype.itemsize:  # float64 blocks written as float32
        np.clip(data, info.min, info.max, out=data)
    return data.astype(dt)  # (float64 holds every float32 value)


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
    window = Window(col0, row0 if out_row0 is None else out_row0, cols, rows)
    dst.write(out, indexes=list(range(1, c + 1)), window=window)
    if spec.write_mask and lr.mask is not None:
        dst.write_mask(up(lr.mask), window=window)
    elif spec.mask_invalid:  # (a pixel is valid where every band is)
        dst.write_mask(np.where(valid.all(axis=0), 255, 0).astype(np.uint8), window=window)
    if spec.alpha_band is not None and lr.alpha is not None:
        dst.write(up(lr.alpha), spec.alpha_band, window=window)


# -- COG, sidecars -----------------------------------------------------------------------------
def to_cog(tmp: Path, dst: Path, spec: OutputSpec) -> None:
    """Copy the finished ``tmp`` GeoTIFF to a Cloud-Optimized GeoTIFF ``dst`` (overviews,
    ghost header)."""
    float_data = np.dtype(spec.profile["dtype"]).kind == "f"
    options: dict[str, Any] = {
        "compress": "DEFLATE",
        "predictor": "FLOATING_POINT" if float_data else "STANDARD",
        "blocksize": 512,
        "overviews": "AUTO",
        "overview_resampling": "AVERAGE",
        "bigtiff": "IF_SAFER",
        "copy_src_mdd": "YES",  # metadata domains besides the default one, as the GTiff output
    }
    for k, v in spec.creation.items():  # the user's --co, in the COG driver's names
        if k in ("TILED", "INTERLEAVE", "PHOTOMETRIC"):
            continue  # a COG is always tiled, pixel-interleaved
        options["blocksize" if k in ("BLOCKXSIZE", "BLOCKYSIZE") else k.lower()] = v
    if gdal_version() < (3, 10) and any(m.get("ns_tags") for m in spec.band_meta):
        log.warning(
            "%s: GDAL %s's COG driver drops band-level metadata domains (GDAL >= 3.10 keeps "
            "them; the dataset's domains are kept)",
            dst,
            rasterio.__gdal_version__,
        )
    rasterio.shutil.copy(tmp, dst, driver="COG", **options)


def gdal_version() -> tuple[int, ...]:
    """``(major, minor)`` of the GDAL that rasterio runs on."""
    return tuple(int(p) for p in rasterio.__gdal_version__.split(".")[:2] if p.isdigit())


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
    return OSError(errno.EIO, f"GDAL could not write it ({'; '.join(msgs)})", str(dst))


def adopt_sidecars(tmp: Path, dst: Path) -> list[Path]:
    """Give GDAL's sidecars of the finished temp file ``tmp`` (``STEM.IMD``, ``STEM_RPC.TXT``,
    ...: metadata the COG driver cannot embed) the name of ``dst``; returns them."""
    stem = tmp.name[: -len(tmp.suffix)]
    moved = []
    for p in sorted(tmp.parent.iterdir()):
        if p == tmp or not p.name.startswith((stem + ".", stem + "_")):
            continue
        if p.name.startswith(tmp.name + "."):  # .tif.aux.xml: PAM of the temp, not kept
            continue
        target = dst.with_name(dst.stem + p.name[len(stem) :])
        os.replace(p, target)
        moved.append(target)
    return moved


def remove_sidecars(dst: Path) -> None:
    """Remove GDAL sidecars of a replaced output (a stale ``.aux.xml`` would override the new
    file's metadata)."""
    for p in (Path(f"{dst}.aux.xml"), Path(f"{dst}.msk"), dst.with_suffix(".IMD")):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


__all__ = [
    "adopt_sidecars",
    "cast_inplace",
    "create",
    "gdal_version",
    "nudge_from_nodata",
    "remove_sidecars",
    "to_cog",
    "write_block",
    "write_error",
]
