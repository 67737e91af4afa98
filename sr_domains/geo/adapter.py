"""CLI adapter of the GeoTIFF domain: ``sniff``, ``info`` and ``upscale``.

Importing this module needs no rasterio (only ``info``/``upscale`` do, and they raise
:class:`~sr_domains.errors.MissingDependencyError` naming the ``geo`` extra when it is missing).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputFileError, require
from ..options import UpscaleOptions, check_supported
from .names import (
    BATCH_SUFFIXES,
    JP2_MAGIC,
    RASTER_SUFFIXES,
    SUFFIXES,
    TIFF_MAGIC,
    geotiff_output_name,
)

if TYPE_CHECKING:  # no torch import just to sniff a file
    from ..folder_listing import FolderListing
    from ..models.base import SRModel

_GLOB = "*?["


def _is_glob(text: str) -> bool:
    return any(ch in text for ch in _GLOB)


def sniff(path: Path) -> bool:
    """True for a ``.tif``/``.tiff`` path (even missing: the error then names it), a file with
    TIFF magic bytes, a single JPEG 2000 or VRT raster (:data:`RASTER_SUFFIXES`, or by its
    first bytes), a folder holding GeoTIFFs, or a glob pattern matching some. A DICOM Part-10
    file (``DICM`` at byte 128) is never a GeoTIFF, whatever its preamble holds."""
    path = Path(path)
    text = str(path)
    if _is_glob(text) and not path.exists():
        import glob

        return any(Path(p).suffix.lower() in BATCH_SUFFIXES for p in glob.glob(text))
    if path.is_dir():
        return any(p.suffix.lower() in BATCH_SUFFIXES for p in path.iterdir() if p.is_file())
    if path.is_file():
        try:
            with open(path, "rb") as f:
                head = f.read(132)
        except OSError:
            return False
        if head[128:132] == b"DICM":  # a DICOM preamble may legally start with TIFF magic
            return False
        return (
            path.suffix.lower() in SUFFIXES + RASTER_SUFFIXES
            or head[:4] in TIFF_MAGIC
            or head.startswith(JP2_MAGIC)
            or head.lstrip().startswith(b"<VRTDataset")
        )
    return path.suffix.lower() in SUFFIXES + RASTER_SUFFIXES


def _crs_text(crs: object) -> str:
    if crs is None:
        return "none"
    epsg = crs.to_epsg()  # type: ignore[attr-defined]
    wkt = crs.to_wkt()  # type: ignore[attr-defined]
    title = wkt.split('"')[1] if '"' in wkt else ""
    code = f"EPSG:{epsg}" if epsg else crs.to_string()[:60]  # type: ignore[attr-defined]
    return f"{code} ({title})" if title else code


def _info_file(path: Path) -> str:
    require("rasterio", "geo", "GeoTIFF info")
    from .gdal_paths import open_dataset
    from .georef import describe_georef, read_georef

    with open_dataset(path) as ds:
        g = read_georef(ds, path, warn=False)  # the summary says what is missing
        prof = ds.profile
        lines = [f"{path}  ({ds.driver})"]
        layout = "tiled" if prof.get("tiled") else "striped"
        bx, by = ds.block_shapes[0][1], ds.block_shapes[0][0]
        comp = prof.get("compress", "none")
        dtypes = sorted(set(ds.dtypes))
        lines.append(
            f"  size        {ds.width} x {ds.height} px, {ds.count} band(s), {', '.join(dtypes)}, "
            f"{layout} {bx}x{by} blocks, compression {comp}"
        )
        for i in ds.indexes:
            flags = "+".join(f.name for f in ds.mask_flag_enums[i - 1])
            desc = ds.descriptions[i - 1]
            unit = ds.units[i - 1]
            extra = (f' "{desc}"' if desc else "") + (f" [{unit}]" if unit else "")
            ntags = len(ds.tags(i))
            sc, off = ds.scales[i - 1], ds.offsets[i - 1]
            coded = f", value = {sc:g} x stored + {off:g}" if (sc, off) != (1.0, 0.0) else ""
            lines.append(
                f"  band {i:<6} {ds.dtypes[i - 1]:<8} {ds.colorinterp[i - 1].name:<10} "
                f"mask={flags}{extra}{coded}" + (f", {ntags} tag(s)" if ntags else "")
            )
        gcp_crs = ds.gcps[1] if ds.gcps[0] else None
        crs_text = _crs_text(ds.crs if ds.crs is not None else gcp_crs)
        lines.append(
            f"  crs         {crs_text}" + (" (of the GCPs)" if ds.crs is None and gcp_crs else "")
        )
        lines.append(f"  georef      {describe_georef(g)}")
        if g.transform is not None:
            t = g.transform
            lines.append(
                f"  transform   ({t.a:.12g}, {t.b:.12g}, {t.c:.12g}, "
                f"{t.d:.12g}, {t.e:.12g}, {t.f:.12g})"
            )
            lines.append(f"  resolution  {ds.res[0]:.12g} x {ds.res[1]:.12g} (CRS units)")
            b = ds.bounds
            lines.append(
                f"  bounds      left {b.left:.12g}, bottom {b.bottom:.12g}, "
                f"right {b.right:.12g}, top {b.top:.12g}"
            )
        nds = ["none" if v is None else f"{v:g}" for v in ds.nodatavals]
        per_band = len(set(nds)) > 1
        text = ", ".join(f"band {i} {v}" for i, v in enumerate(nds, 1)) if per_band else nds[0]
        lines.append(f"  nodata      {text}")
        ovr = ds.overviews(1)
        lines.append(f"  overviews   {', '.join(map(str, ovr)) if ovr else 'none'}")
        tags = ds.tags()
        ours = {k: v for k, v in tags.items() if k.startswith("SR_DOMAINS_")}
        other = {k: v for k, v in tags.items() if k not in ours}
        shown = ", ".join(f"{k}={v[:40]}" for k, v in list(other.items())[:6])
        more = f", ... ({len(other)} in all)" if len(other) > 6 else ""
        lines.append(f"  tags        {shown + more if other else 'none'}")
        if ours:
            keys = ("SYNTHETIC", "MODEL", "MODEL_ARCH", "SCALE", "SOURCE", "VERSION")
            prov = ", ".join(
                f"{k.lower()}={ours['SR_DOMAINS_' + k]}" for k in keys if "SR_DOMAINS_" + k in ours
            )
            lines.append(f"  sr_domains  {prov}")
    return "\n".join(lines)


def info(path: Path) -> str:
    """Summary of a GeoTIFF (or of each file of a folder/glob)."""
    path = Path(path)
    if path.is_dir() or (_is_glob(str(path)) and not path.exists()):
        require("rasterio", "geo", "GeoTIFF info")
        from .batch import expand_inputs

        return "\n\n".join(_info_file(p) for p in _folder_files(path, expand_inputs))
    return _info_file(path)


def _folder_files(path: Path, expand: Any) -> list[Path]:
    """The GeoTIFFs of a folder or glob; none is an error, as for the other domains."""
    files = list(expand(path))
    if not files:
        raise InputFileError(path, "no GeoTIFF files found (*.tif, *.tiff, *.jp2, *.j2k, *.vrt)")
    return files


def info_json(path: Path) -> dict[str, Any] | list[dict[str, Any]]:
    """:func:`info` as JSON-ready data (a list for a folder or glob)."""
    path = Path(path)
    require("rasterio", "geo", "GeoTIFF info")
    if path.is_dir() or (_is_glob(str(path)) and not path.exists()):
        from .batch import expand_inputs

        return [_info_dict(p) for p in _folder_files(path, expand_inputs)]
    return _info_dict(path)


def _info_dict(path: Path) -> dict[str, Any]:
    from .gdal_paths import open_dataset

    with open_dataset(path) as ds:
        crs = ds.crs
        t = ds.transform
        return {
            "path": str(path),
            "driver": ds.driver,
            "width": ds.width,
            "height": ds.height,
            "count": ds.count,
            "crs": None if crs is None else crs.to_string(),
            "epsg": None if crs is None else crs.to_epsg(),
            "transform": [t.a, t.b, t.c, t.d, t.e, t.f],
            "res": list(ds.res),
            "bounds": list(ds.bounds),
            "nodata": ds.nodata,
            "gcps": len(ds.gcps[0]),
            "gcp_crs": ds.gcps[1].to_string() if ds.gcps[0] and ds.gcps[1] else None,
            "rpcs": ds.rpcs is not None,
            "compress": ds.profile.get("compress"),
            "tiled": bool(ds.profile.get("tiled")),
            "overviews": ds.overviews(1),
            "tags": ds.tags(),
            "bands": [
                {
                    "index": i,
                    "dtype": ds.dtypes[i - 1],
                    "colorinterp": ds.colorinterp[i - 1].name,
                    "description": ds.descriptions[i - 1],
                    "unit": ds.units[i - 1],
                    "mask_flags": [f.name for f in ds.mask_flag_enums[i - 1]],
                    "nodata": ds.nodatavals[i - 1],
                    "scale": ds.scales[i - 1],
                    "offset": ds.offsets[i - 1],
                }
                for i in ds.indexes
            ],
        }


def upscale(
    src: Path,
    dst: Path,
    options: UpscaleOptions,
    model: SRModel | None = None,
    listing: FolderListing | None = None,
) -> list[Path]:
    """Run ``sr-domains upscale`` for a GeoTIFF, folder or glob; returns the written files.
    ``model``: an already built model to use instead of ``options.model``; ``listing``: of a
    file output's folder, a batch's (:func:`~sr_domains.geo.upscale.write_geotiff`)."""
    check_supported(options, "GeoTIFF", {"bands", "nodata", "cog", "dtype", "creation_options"})
    require("rasterio", "geo", "GeoTIFF upscaling")
    from .batch import write_many
    from .upscale import write_geotiff

    src, dst = Path(src), Path(dst)
    if src.is_dir() or (_is_glob(str(src)) and not src.exists()):
        return write_many(src, dst, options, model=model)
    if dst.is_dir():
        dst = dst / geotiff_output_name(src, options.suffix)
    return [write_geotiff(src, dst, options, model=model, listing=listing)]
