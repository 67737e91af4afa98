"""Write the upscaled raster: creation profile, metadata, invalid pixels, temp file, COG.

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
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError
from ..intensity import cast_to_dtype
from .georef import Georef, apply_georef
from .reader import Block, RasterSource

try:
    import rasterio
    import rasterio.shutil
    from rasterio.enums import ColorInterp
    from rasterio.windows import Window
except ImportError as _exc:  # pragma: no cover
    from ..errors import MissingDependencyError

    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc

log = logging.getLogger(__name__)

TAG_PREFIX = "SR_DOMAINS_"
#: Tag namespaces that describe the file layout or are rewritten by GDAL, never copied.
SKIP_NAMESPACES = {"IMAGE_STRUCTURE", "DERIVED_SUBDATASETS", "SUBDATASETS", "RPC", "GEOLOCATION"}


@dataclass
class OutputSpec:
    """Everything needed to create the output file and write its blocks."""

    profile: dict[str, Any]
    georef: Georef
    n_out: int
    block: int
    invalid_value: float
    nodata: float | None
    write_mask: bool
    alpha_band: int | None
    band_meta: list[dict[str, Any]] = field(default_factory=list)
    tags: dict[str | None, dict[str, str]] = field(default_factory=dict)
    creation: dict[str, str] = field(default_factory=dict)  # the user's --co, upper-case keys


#: Creation options sr_domains sets from the input and the scale; ``--co`` cannot change them.
FIXED_OPTIONS = {"DRIVER", "WIDTH", "HEIGHT", "COUNT", "DTYPE", "CRS", "TRANSFORM", "NODATA"}
#: GeoTIFF output data types accepted by ``--dtype``.
OUTPUT_DTYPES = ("uint8", "uint16", "int16", "uint32", "int32", "float32", "float64")


def customize_spec(
    spec: OutputSpec, dtype: str | None = None, creation: dict[str, str] | None = None
) -> None:
    """Apply the user's output data type and GDAL creation options (``--dtype``, ``--co``) to
    ``spec``; the defaults stay for every option not given."""
    if dtype is not None:
        if dtype not in OUTPUT_DTYPES:
            raise ConfigError(f"--dtype must be one of {', '.join(OUTPUT_DTYPES)}, got {dtype!r}")
        dt = np.dtype(dtype)
        for v in (spec.nodata, None if np.isnan(spec.invalid_value) else spec.invalid_value):
            if v is not None and not _representable(v, dt):
                raise ConfigError(f"nodata {v:g} cannot be stored as {dtype}")
        if dt.kind != "f" and np.isnan(spec.invalid_value):
            spec.invalid_value = 0.0
        spec.profile["dtype"] = dt.name
        spec.profile["predictor"] = 3 if dt.kind == "f" else 2
    for key, value in (creation or {}).items():
        k = key.strip().upper()
        if k in FIXED_OPTIONS:
            raise ConfigError(f"--co {k} is set from the input and the scale; it cannot be given")
        if k in ("BLOCKXSIZE", "BLOCKYSIZE", "BLOCKSIZE"):
            try:
                size = int(value)
            except ValueError:
                raise ConfigError(f"--co {k} must be an integer, got {value!r}") from None
            if size < 16 or size % 16:
                raise ConfigError(f"--co {k} must be a multiple of 16, got {size}")
            spec.block = size
            spec.profile["blockxsize"] = spec.profile["blockysize"] = size
        else:
            spec.profile[k.lower()] = value
        spec.creation[k] = value


def _representable(v: float, dt: np.dtype) -> bool:
    if dt.kind == "f":
        return True
    info = np.iinfo(dt)
    return float(v).is_integer() and info.min <= v <= info.max


#: TIFF tags that describe the source's pixel grid or layout, never copied.
LAYOUT_TAGS = {"TIFFTAG_XRESOLUTION", "TIFFTAG_YRESOLUTION", "TIFFTAG_RESOLUTIONUNIT"}


def describes_layout(text: str) -> bool:
    """An image description written by an array library about the old pixel layout (tifffile's
    ``{"shape": [...]}``, ImageJ's ``ImageJ=...``)."""
    t = text.strip()
    if t.startswith("ImageJ=") or "\nimages=" in t:
        return True
    if t.startswith("{"):
        try:
            return isinstance(json.loads(t), dict) and "shape" in json.loads(t)
        except ValueError:
            return False
    return False


def _clean(tags: dict[str, str], band: bool) -> dict[str, str]:
    out = {}
    for k, v in tags.items():
        key = k.upper()
        if key.startswith(TAG_PREFIX) or (band and key.startswith("STATISTICS_")):
            continue
        if key in LAYOUT_TAGS or (key == "TIFFTAG_IMAGEDESCRIPTION" and describes_layout(v)):
            continue
        out[k] = v
    return out


def _namespaces(ds: Any, bidx: int = 0) -> list[str]:
    try:
        names = ds.tag_namespaces(bidx) if bidx else ds.tag_namespaces()
    except Exception:  # pragma: no cover - some drivers refuse
        return []
    return [n for n in names if n and n not in SKIP_NAMESPACES and not n.startswith("xml:")]


def build_spec(
    src: RasterSource, georef: Georef, scale: int, n_out: int, provenance: dict[str, str]
) -> OutputSpec:
    """The output creation profile and metadata for ``src`` upscaled by ``scale``."""
    ds = src.ds
    h, w = src.shape
    big_h, big_w = h * scale, w * scale
    block = 512 if min(big_h, big_w) >= 1024 else 256
    dt = src.dtype
    count = n_out + (1 if src.has_alpha else 0)
    profile: dict[str, Any] = {
        "driver": "GTiff",
        "width": big_w,
        "height": big_h,
        "count": count,
        "dtype": dt.name,
        "nodata": src.nodata,
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "compress": "deflate",
        "predictor": 3 if dt.kind == "f" else 2,
        "interleave": "pixel",
        "bigtiff": "IF_SAFER",
    }
    if georef.crs is not None and georef.kind != "gcps":
        profile["crs"] = georef.crs
    if georef.transform is not None:
        profile["transform"] = georef.transform
    if src.nodata is not None:
        invalid = src.nodata
    else:
        invalid = float("nan") if dt.kind == "f" else 0.0
    same_bands = n_out == src.n_bands
    if not same_bands:
        log.warning(
            "the model maps %d band(s) to %d: band descriptions and tags are not copied",
            src.n_bands,
            n_out,
        )
    band_meta = []
    for k in range(n_out):
        if not same_bands:
            band_meta.append({"colorinterp": ColorInterp.undefined, "tags": {}, "ns_tags": {}})
            continue
        i = src.indexes[k]
        band_meta.append(
            {
                "description": ds.descriptions[i - 1],
                "colorinterp": ds.colorinterp[i - 1],
                "unit": ds.units[i - 1],
                "scale": ds.scales[i - 1],
                "offset": ds.offsets[i - 1],
                "tags": _clean(ds.tags(i), band=True),
                "ns_tags": {ns: ds.tags(i, ns=ns) for ns in _namespaces(ds, i)},
            }
        )
    tags: dict[str | None, dict[str, str]] = {None: {**_clean(ds.tags(), band=False)}}
    for ns in _namespaces(ds):
        tags[ns] = ds.tags(ns=ns)
    tags[None].update(provenance)
    return OutputSpec(
        profile=profile,
        georef=georef,
        n_out=n_out,
        block=block,
        invalid_value=invalid,
        nodata=src.nodata,
        write_mask=src.has_dataset_mask,
        alpha_band=count if src.has_alpha else None,
        band_meta=band_meta,
        tags=tags,
    )


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


def nudge_from_nodata(out: np.ndarray, valid: np.ndarray, nodata: float) -> None:
    """In place: valid pixels equal to ``nodata`` move one unit away from it."""
    if np.isnan(nodata):
        return
    dt = out.dtype
    nd = np.array(nodata).astype(dt)
    hit = valid & (out == nd)
    if not hit.any():
        return
    if dt.kind in "ui":
        step = 1 if nd < np.iinfo(dt).max else -1
        out[hit] = int(nd) + step
    else:
        direction = np.inf if nd < np.finfo(dt).max else -np.inf
        out[hit] = np.nextafter(nd, np.array(direction, dt))


def cast_inplace(data: np.ndarray, dtype: np.dtype | str) -> np.ndarray:
    """:func:`~sr_domains.intensity.cast_to_dtype` (round, clip, NaN -> 0 for integers) that
    reuses the float32 ``data`` buffer instead of making three temporary copies."""
    dt = np.dtype(dtype)
    if dt.kind in "ui" and dt.itemsize >= 4:
        return cast_to_dtype(data, dt)  # float32 cannot hold the bounds of 32-bit integers
    if dt.kind in "ui":
        info = np.iinfo(dt)
        np.rint(data, out=data)
        np.clip(data, info.min, info.max, out=data)
        np.nan_to_num(data, copy=False, nan=0.0)
        return data.astype(dt)
    if dt == data.dtype:
        f32 = np.finfo(dt)
        return np.clip(data, f32.min, f32.max, out=data)
    return data.astype(dt)  # float64 holds every float32 value


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
    """Write HR ``data`` (float32, stored units; consumed) at ``(row0, col0)`` with invalid
    pixels set. ``lr`` is the LR block covering rows ``row0 // scale ..`` and the same columns; its
    validity, mask and alpha are nearest-upscaled and cropped to ``data``. ``out_row0``: the
    row of ``dst`` to write at, when ``dst`` holds only a band of rows starting elsewhere.
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
    }
    for k, v in spec.creation.items():  # the user's --co, in the COG driver's names
        if k in ("TILED", "INTERLEAVE", "PHOTOMETRIC"):
            continue  # a COG is always tiled, pixel-interleaved
        options["blocksize" if k in ("BLOCKXSIZE", "BLOCKYSIZE") else k.lower()] = v
    rasterio.shutil.copy(tmp, dst, driver="COG", **options)


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


def provenance_tags(
    *,
    version: str,
    model: Any,
    model_name: str,
    weights_sha256: str,
    weights_hash_of: str,
    scale: int,
    profile_json: str,
    tile: int,
    overlap: int,
    source: Path,
    bands: tuple[int, ...],
    fill_json: str,
) -> dict[str, str]:
    """``SR_DOMAINS_*`` dataset tags that say how the output was made."""
    return {
        f"{TAG_PREFIX}SYNTHETIC": "super-resolved",
        f"{TAG_PREFIX}VERSION": version,
        f"{TAG_PREFIX}MODEL_ARCH": str(getattr(model, "arch", type(model).__name__)),
        f"{TAG_PREFIX}MODEL": model_name,
        f"{TAG_PREFIX}WEIGHTS_SHA256": weights_sha256,
        f"{TAG_PREFIX}WEIGHTS_HASH_OF": weights_hash_of,
        f"{TAG_PREFIX}SCALE": str(scale),
        f"{TAG_PREFIX}PROFILE": profile_json,
        f"{TAG_PREFIX}FILL": fill_json,
        f"{TAG_PREFIX}TILE": str(tile),
        f"{TAG_PREFIX}OVERLAP": str(overlap),
        f"{TAG_PREFIX}SOURCE": source.name,
        f"{TAG_PREFIX}SOURCE_BANDS": ",".join(str(b) for b in bands),
    }


__all__ = [
    "LAYOUT_TAGS",
    "OutputSpec",
    "adopt_sidecars",
    "build_spec",
    "create",
    "describes_layout",
    "nudge_from_nodata",
    "provenance_tags",
    "remove_sidecars",
    "to_cog",
    "write_block",
    "write_error",
]
