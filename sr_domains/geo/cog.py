"""The ``--cog`` output: the finished GeoTIFF copied by GDAL's COG driver (overviews, ghost
header), with its metadata (:func:`to_cog`)."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import rasterio
import rasterio.shutil

from .creation_options import cog_options
from .gdal_paths import gdal_path
from .output_spec import OutputSpec

log = logging.getLogger(__name__)


def to_cog(tmp: Path, dst: Path, spec: OutputSpec, name: Path | None = None) -> None:
    """Copy the finished ``tmp`` GeoTIFF to a Cloud-Optimized GeoTIFF ``dst`` (overviews,
    ghost header), with the user's creation options in the COG driver's names
    (:func:`~sr_domains.geo.creation_options.cog_options`) and the metadata of ``tmp``;
    warnings name the output ``name`` (default ``dst``).

    GDAL's copy keeps the default domain, RPCs, ``IMD`` and XMP by itself; other metadata
    domains need ``COPY_SRC_MDD=YES``, with which GDAL 3.10 drops the bands' default-domain
    tags. A file with both is copied with it and checked: if the band tags were lost, it is
    copied again without the other domains, with a warning naming them."""
    name = name or dst
    float_data = np.dtype(spec.profile["dtype"]).kind == "f"
    options = cog_options(spec.creation, float_data=float_data)
    if spec.profile.get("nbits"):  # (NBITS kept: GDAL's predictor needs whole bytes)
        options["predictor"] = "NO"
    if gdal_version() < (3, 10) and any(m.get("ns_tags") for m in spec.band_meta):
        log.warning(
            "%s: GDAL %s's COG driver drops band-level metadata domains (GDAL >= 3.10 keeps "
            "them; the dataset's domains are kept)",
            name,
            rasterio.__gdal_version__,
        )
    if "copy_src_mdd" in options or "src_mdd" in options:  # (the user's choice)
        rasterio.shutil.copy(gdal_path(tmp), gdal_path(dst, output=True), driver="COG", **options)
        return
    band_tags, domains = _metadata_of(tmp)
    if not domains:
        rasterio.shutil.copy(gdal_path(tmp), gdal_path(dst, output=True), driver="COG", **options)
        return
    rasterio.shutil.copy(
        gdal_path(tmp), gdal_path(dst, output=True), driver="COG", copy_src_mdd="YES", **options
    )
    if band_tags and _metadata_of(dst)[0] != band_tags:
        log.warning(
            "%s: GDAL %s cannot copy band tags and the metadata domain(s) %s into one COG; "
            "the band tags are kept and those domains dropped (the GeoTIFF output, without "
            "--cog, keeps both)",
            name,
            rasterio.__gdal_version__,
            ", ".join(domains),
        )
        rasterio.shutil.copy(gdal_path(tmp), gdal_path(dst, output=True), driver="COG", **options)


#: Metadata domains that GDAL's COG copy keeps without ``COPY_SRC_MDD`` (besides the default
#: one), and those that describe the file rather than the image.
_COPIED_ANYWAY = frozenset({"IMD", "RPC", "xml:XMP", "IMAGE_STRUCTURE", "DERIVED_SUBDATASETS"})


def _metadata_of(path: Path) -> tuple[list[dict[str, str]], list[str]]:
    """``(default-domain tags of each band, the other metadata domains)`` of a GeoTIFF."""
    with rasterio.open(gdal_path(path)) as ds:
        band_tags = [ds.tags(i) for i in ds.indexes]
        names = set(ds.tag_namespaces())
        for i in ds.indexes:
            names |= set(ds.tag_namespaces(i))
    return band_tags if any(band_tags) else [], sorted(names - _COPIED_ANYWAY)


def gdal_version() -> tuple[int, ...]:
    """``(major, minor)`` of the GDAL that rasterio runs on."""
    return tuple(int(p) for p in rasterio.__gdal_version__.split(".")[:2] if p.isdigit())


__all__ = ["gdal_version", "to_cog"]
