"""What the output GeoTIFF will hold: creation profile, georeferencing, band metadata and tags.

:func:`build_spec` derives an :class:`OutputSpec` from the source (same dtype, tiled DEFLATE,
``BIGTIFF=IF_SAFER``; nodata, mask and alpha carried; dataset and band tags, descriptions,
colour interpretation, units, scales and offsets copied, the alpha band's description, unit
and tags too, with stale statistics, old ``SR_DOMAINS_*`` tags, TIFF tags of the old pixel
grid and of the program that made the source dropped, ``TIFFTAG_SOFTWARE`` naming
sr_domains); :func:`customize_spec`
applies the user's ``--dtype``/``--nodata``/creation options; :func:`provenance_tags` says how
the output was made. :mod:`sr_domains.geo.writer` creates and writes the file. Which source
tags are carried: :mod:`sr_domains.geo.source_tags`; how the output may be named:
:mod:`sr_domains.geo.output_suffix`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..errors import ConfigError
from ..recorded_names import recorded_name
from .creation_options import (
    FIXED_OPTIONS,
    apply,
    check_nbits,
    check_options,
    cog_options,
    normalize,
    trial,
)
from .georef import Georef
from .output_suffix import OTHER_FORMATS, TIFF_SUFFIXES, check_output_name
from .reader import RasterSource
from .source_tags import (
    LAYOUT_TAGS,
    MAKER_TAGS,
    SKIP_NAMESPACES,
    TAG_PREFIX,
    XML_NAMESPACES,
    clean_tags,
    describes_layout,
    tag_namespaces,
)
from .xmp import rescale_xmp

try:
    from rasterio.enums import ColorInterp
except ImportError as _exc:  # pragma: no cover
    from ..errors import MissingDependencyError

    raise MissingDependencyError("rasterio", "geo", "GeoTIFF support") from _exc

log = logging.getLogger(__name__)


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
    #: the alpha band's description, unit and tags (``band_meta`` holds the processed bands)
    alpha_meta: dict[str, Any] = field(default_factory=dict)
    tags: dict[str | None, dict[str, str]] = field(default_factory=dict)
    creation: dict[str, str] = field(default_factory=dict)  # the user's --co, upper-case keys
    # (block: the writer's block period, rows per flush and the column multiple of panel cuts:
    # the least common multiple of the block width and height)
    #: write a per-dataset mask of the invalid pixels (float data without nodata, written as
    #: integers: NaN has no integer value)
    mask_invalid: bool = False
    #: each input band's own nodata (None: none): it stays invalid under a --nodata override,
    #: and a float file's +-inf nodata is written as the output's, never kept as +-inf
    own_nodata: tuple[float | None, ...] = ()


#: GeoTIFF output data types accepted by ``--dtype``.
OUTPUT_DTYPES = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "float32", "float64")


def a_dtype(dtype: object) -> str:
    """``"an int8"``, ``"a uint8"``, ``"a float32"``: the type's name with its article."""
    return f"{'an' if str(dtype).startswith('i') else 'a'} {dtype}"


def check_dtype(dtype: str | None, *, api: bool = False) -> None:
    """Refuse an output data type that is not one of :data:`OUTPUT_DTYPES`."""
    if dtype is not None and dtype not in OUTPUT_DTYPES:
        name = "dtype" if api else "--dtype"
        raise ConfigError(f"{name} must be one of {', '.join(OUTPUT_DTYPES)}, got {dtype!r}")


def customize_spec(
    spec: OutputSpec,
    dtype: str | None = None,
    creation: dict[str, str] | None = None,
    source: Path | None = None,
    *,
    cog: bool | None = None,
) -> None:
    """Apply the user's output data type and GDAL creation options (``--dtype``, ``--co``) to
    ``spec``; the defaults stay for every option not given. Bad options are refused
    (:mod:`sr_domains.geo.creation_options`; ``cog``: a COG is written, None: not known).
    ``source`` names the input in errors."""
    check_dtype(dtype)
    if dtype is not None:
        dt = np.dtype(dtype)
        for v in (spec.nodata, None if np.isnan(spec.invalid_value) else spec.invalid_value):
            if v is not None and not _representable(v, dt):
                named = f"{source}: " if source is not None else ""
                raise ConfigError(
                    f"{named}nodata {v:g} cannot be stored as {dtype}; pass --nodata V for "
                    f"the output, {a_dtype(dtype)} value that no valid pixel holds"
                    + (" (pixels that are NaN stay invalid)" if np.isnan(v) else "")
                )
        if dt.kind != "f" and np.isnan(spec.invalid_value):
            # float data without a nodata value: its NaN pixels are invalid, and an integer
            # type has no NaN. Written as 0 under a per-dataset mask that marks them invalid
            # (a 0 alone would read as valid data).
            spec.invalid_value = 0.0
            spec.mask_invalid = True
        spec.profile["dtype"] = dt.name
        spec.profile["predictor"] = 3 if dt.kind == "f" else 2
    co = normalize(creation)
    if not co:
        return
    check_options(co, cog=cog)
    out = np.dtype(spec.profile["dtype"])
    check_nbits(co, out)
    spec.block = apply(spec.profile, co)
    spec.creation.update(co)
    trial(spec.profile, co, cog_options(co, float_data=out.kind == "f") if cog else None)


def check_creation(
    src: RasterSource,
    scale: int,
    dtype: str | None,
    creation: Any,
    *,
    cog: bool,
) -> None:
    """Refuse a bad ``--dtype`` or ``--co`` for the output of ``src`` before any work: the
    checks of :func:`customize_spec` on the output profile (as many bands as are selected)."""
    check_dtype(dtype)
    if not creation:
        return
    dt = np.dtype(dtype) if dtype is not None else src.dtype
    h, w = src.shape
    count = src.n_bands + (1 if src.has_alpha else 0)
    spec = OutputSpec(
        profile=output_profile(dt, count, h * scale, w * scale, None),
        georef=Georef(),
        n_out=src.n_bands,
        block=0,
        invalid_value=0.0,
        nodata=None,
        write_mask=False,
        alpha_band=None,
    )
    customize_spec(spec, None, creation, src.path, cog=cog)


def _representable(v: float, dt: np.dtype) -> bool:
    if dt.kind == "f":
        return True
    info = np.iinfo(dt)
    return float(v).is_integer() and info.min <= v <= info.max


def output_profile(
    dt: np.dtype, count: int, height: int, width: int, nodata: float | None
) -> dict[str, Any]:
    """The default creation profile: tiled (512 px blocks, 256 below 1024 px), DEFLATE with a
    predictor, pixel interleaved, ``BIGTIFF=IF_SAFER``."""
    block = 512 if min(height, width) >= 1024 else 256
    return {
        "driver": "GTiff",
        "width": width,
        "height": height,
        "count": count,
        "dtype": dt.name,
        "nodata": nodata,
        "tiled": True,
        "blockxsize": block,
        "blockysize": block,
        "compress": "deflate",
        "predictor": 3 if dt.kind == "f" else 2,
        "interleave": "pixel",
        "bigtiff": "IF_SAFER",
    }


def build_spec(
    src: RasterSource, georef: Georef, scale: int, n_out: int, provenance: dict[str, str]
) -> OutputSpec:
    """The output creation profile and metadata for ``src`` upscaled by ``scale``."""
    ds = src.ds
    h, w = src.shape
    dt = src.dtype
    count = n_out + (1 if src.has_alpha else 0)
    profile = output_profile(dt, count, h * scale, w * scale, src.nodata)
    block = profile["blockxsize"]
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
                "tags": clean_tags(ds.tags(i), band=True),
                "ns_tags": {ns: ds.tags(i, ns=ns) for ns in tag_namespaces(ds, i)},
            }
        )
    alpha_meta: dict[str, Any] = {}
    if src.alpha_index is not None:  # (carried whatever the model does to the other bands)
        i = src.alpha_index
        alpha_meta = {
            "description": ds.descriptions[i - 1],
            "unit": ds.units[i - 1],
            "tags": clean_tags(ds.tags(i), band=True),
            "ns_tags": {ns: ds.tags(i, ns=ns) for ns in tag_namespaces(ds, i)},
        }
    tags: dict[str | None, dict[str, str]] = {None: {**clean_tags(ds.tags(), band=False)}}
    for ns in tag_namespaces(ds):
        tags[ns] = ds.tags(ns=ns)
    if "xml:XMP" in tags:  # its image size in the output's pixels (sr_domains.geo.xmp)
        tags["xml:XMP"] = {k: rescale_xmp(v, scale, src.path) for k, v in tags["xml:XMP"].items()}
    tags[None].update(provenance)
    version = provenance.get(f"{TAG_PREFIX}VERSION") or __version__
    tags[None]["TIFFTAG_SOFTWARE"] = f"sr_domains {version}"
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
        alpha_meta=alpha_meta,
        tags=tags,
        # GDAL reads alpha as the mask only in 2- and 4-band files: in any other layout (a
        # 5-band R,G,B,NIR,alpha orthophoto, --bands 1,2 of RGBA) the validity is also written
        # as an internal mask, so GDAL readers see it
        mask_invalid=src.has_alpha and count not in (2, 4),
        own_nodata=src.own_nodata,
    )


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
    source_stamp_json: str = "",
) -> dict[str, str]:
    """``SR_DOMAINS_*`` dataset tags that say how the output was made; ``source_stamp_json``:
    the input's stamp (:func:`sr_domains.source_stamp.stamp_of`), which a resume compares."""
    tags = {
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
        f"{TAG_PREFIX}SOURCE": recorded_name(source),
        f"{TAG_PREFIX}SOURCE_BANDS": ",".join(str(b) for b in bands),
    }
    if source_stamp_json:
        tags[f"{TAG_PREFIX}SOURCE_STAMP"] = source_stamp_json
    return tags


__all__ = [
    "FIXED_OPTIONS",
    "LAYOUT_TAGS",
    "MAKER_TAGS",
    "OTHER_FORMATS",
    "OUTPUT_DTYPES",
    "SKIP_NAMESPACES",
    "TAG_PREFIX",
    "TIFF_SUFFIXES",
    "XML_NAMESPACES",
    "OutputSpec",
    "a_dtype",
    "build_spec",
    "check_creation",
    "check_dtype",
    "check_output_name",
    "customize_spec",
    "describes_layout",
    "output_profile",
    "provenance_tags",
]
